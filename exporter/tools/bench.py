"""`make bench`: export each size (seeded random weights at the real shapes) with each recipe, and measure.

Every export runs in its own process so its peak RSS is its own (os.wait4). Figures go to a JSON
file (one record per run, merged with earlier runs) and BENCHMARKS.md is rewritten from it.
Run one size/recipe at a time with --sizes/--recipes; never part of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from exporter.tools.bench_adapters import section as adapters_section
from exporter.tools.bench_coreai import coreai_fields, coreai_section
from exporter.tools.bench_cross_check import section as cross_check_section
from exporter.tools.bench_speculative import section as speculative_section
from exporter.tools.bench_speed import kmeans_section, plot, speed_section
from exporter.tools.bench_targets import graph_targets_section
from exporter.tools.measure import RSS_LIMIT, last_line, machine, run_measured

RESULTS = Path("benchmarks.json")
QUALITY = Path("benchmarks_quality.json")  # written by `python -m exporter.tools.quality`
CROSS_CHECK = Path("benchmarks_cross_check.json")  # written by `python -m exporter.tools.bench_cross_check`
REPORT = Path("BENCHMARKS.md")
STAGE_KINDS = ("trace + convert", "fill weights + quantize", "fill weights", "quantize", "save",
               "activation-range preflight")  # first prefix that matches names the stage's kind
SIZE_ORDER = {"270m": 0, "450m": 1, "1_1b": 2, "3b": 3}


def reverify_run(record: dict, workdir: Path) -> dict:
    """Run elm-verify again on an export `make bench` already made, keeping the export's figures."""
    return {**record, **measure_verify(workdir / f"{record['size']}-{record['recipe']}")}


def measure_verify(out: Path) -> dict:
    code, wall, rss, output = run_measured([sys.executable, "-m", "exporter.verify", str(out)], rss_limit=RSS_LIMIT)
    (out.parent / f"{out.name}.verify.txt").write_text(output)  # the report itself, for a FAIL to be read
    result = {"verify_s": round(wall, 1), "verify_peak_rss_bytes": rss, "verify_exit_code": code, "verify_error": None}
    if code not in (0, 1):  # 1: ran, outside thresholds (reported as such)
        result["verify_error"] = last_line(output)
    return result


def bench_export(size: str, recipe: str, workdir: Path, context_length: int, verify: bool,
                 export_format: str = "coreml") -> dict:
    """One export (without its built-in verification), then elm-verify on it as a separate measured process."""
    out = workdir / (f"{size}-{recipe}" if export_format == "coreml" else f"{size}-{recipe}-{export_format}")
    # The gpu graph, as every run of this table before --target existed (bench_targets compares the two).
    command = [sys.executable, "-m", "exporter", "--size", size, "--random-weights", "0", "--quant", recipe,
               "--target", "gpu", "--no-tokenizer", "--context-length", str(context_length), "--output", str(out), "--force",
               "--no-verify", "--format", export_format]
    load = os.getloadavg()[0]
    code, wall, rss, output = run_measured(command, rss_limit=RSS_LIMIT)
    record = {"kind": "export", "size": size, "recipe": recipe, "context_length": context_length,
              "exit_code": code, "wall_s": round(wall, 1), "peak_rss_bytes": rss, "load_before": round(load, 2),
              "format": export_format}
    manifest_path = out / "export.json"
    if code or not manifest_path.is_file():
        record["error"] = last_line(output)
        return record
    manifest = json.loads(manifest_path.read_text())
    if export_format == "coreai":
        record.update(coreai_fields(manifest))
        if verify:
            record.update(measure_verify(out))
        return record
    record.update(
        stage_s={k: round(v, 1) for k, v in manifest.get("timings", {}).items()},
        chunks=len(manifest["chunks"]),
        package_bytes=manifest["size"]["package_bytes"],
        theoretical_bytes=manifest["size"]["theoretical_bytes"],
        weights_to_theory=manifest["size"]["weights_to_theory"],
        ceiling=manifest["ceiling"]["max_decode_tokens_per_s"],
    )
    if verify:
        record.update(measure_verify(out))
    return record


def bench_baseline(size: str, workdir: Path) -> dict:
    """The plain script: torch.jit.trace + ct.convert + int4 linear_quantize_weights, no states, one function."""
    load = os.getloadavg()[0]
    code, wall, rss, output = run_measured([sys.executable, "-m", "exporter.tools.bench_baseline", size,
                                            str(workdir / f"{size}-baseline.mlpackage")], rss_limit=RSS_LIMIT)
    record = {"kind": "baseline", "size": size, "recipe": "int4", "exit_code": code, "wall_s": round(wall, 1),
              "peak_rss_bytes": rss, "load_before": round(load, 2)}
    if code:
        record["error"] = last_line(output)
    return record


def merge(records: list[dict]) -> list[dict]:
    old = json.loads(RESULTS.read_text())["runs"] if RESULTS.is_file() else []
    keys = {run_key(r) for r in records}
    return [r for r in old if run_key(r) not in keys] + records


def run_key(run: dict) -> tuple:
    return run["kind"], run["size"], run["recipe"], run.get("format", "coreml")


def write_report(runs: list[dict], machine_text: str) -> None:
    baseline = {r["size"]: r for r in runs if r["kind"] == "baseline"}
    coreai = [r for r in runs if r["kind"] == "export" and r.get("format") == "coreai"]
    exports = sorted((r for r in runs if r["kind"] == "export" and r.get("format", "coreml") == "coreml"),
                     key=lambda r: (SIZE_ORDER.get(r["size"], 9), r["recipe"]))
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on: {machine_text}. Seeded random weights at the real shapes "
        "(`--random-weights 0`), no tokenizer, default `--max-chunk-bytes 1GB`. Peak RSS is each process's own "
        "(wait4); the export runs with `--no-verify` and `elm-verify` runs after it as its own process. "
        "Load = the machine's 1-minute load average when the run started (2 cores: above ~2 means another "
        "job shared the CPU and times are inflated). The decode ceiling is an upper bound (bandwidth / bytes "
        "read per token), not a measurement.",
        "",
        "| size | recipe | packages | export s | peak RSS GB | vs plain script (time, RSS) | package MB | theory MB "
        "| weights/theory | verify s | verify peak RSS GB | iPhone 15 Pro ceiling tok/s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in exports:
        base = baseline.get(r["size"])
        if r.get("error"):
            lines.append(f"| {r['size']} | {r['recipe']} | | {r['wall_s']} | {r['peak_rss_bytes'] / 1e9:.1f} | "
                         f"failed: {r['error']} | | | | | | | {r.get('load_before', '')} |")
            continue
        ratio = ""
        if base and r["recipe"] == "int4" and base.get("run") == r.get("run"):  # ratios within one run only
            ratio = (f"{r['wall_s'] / base['wall_s']:.2f}×, {r['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}×"
                     if not base.get("error") else f"plain script failed: {base['error']}")
        ceiling = next(iter(r.get("ceiling", {}).values()), "")
        verify = r.get("verify_s", "-")
        if r.get("verify_exit_code") == 1:
            verify = f"{verify} (FAIL: outside thresholds)"
        if r.get("verify_error"):
            verify = f"failed: {r['verify_error']}"
        verify_rss = f"{r['verify_peak_rss_bytes'] / 1e9:.1f}" if r.get("verify_peak_rss_bytes") else "-"
        lines.append(
            f"| {r['size']} | {r['recipe']} | {r.get('chunks', 1)} | {r['wall_s']} | {r['peak_rss_bytes'] / 1e9:.1f} "
            f"| {ratio} | {r['package_bytes'] / 1e6:.1f} | {r['theoretical_bytes'] / 1e6:.1f} | "
            f"{r['weights_to_theory']} | {verify} | {verify_rss} | {ceiling} | {r.get('load_before', '')} |"
        )
    lines += plot(exports) + speed_section(exports)
    lines += targets_section(exports, baseline) + baseline_section(baseline)
    lines += ["", "Peak RSS, int4 export vs plain script (each # = 0.5 GB):", "", "```"]
    for r in (r for r in exports if r["recipe"] == "int4"):
        lines.append(f"{r['size']:>5} elm-export   {bar(r['peak_rss_bytes'])}")
        if r["size"] in baseline:
            lines.append(f"{'':>5} plain script {bar(baseline[r['size']]['peak_rss_bytes'])}"
                         + (" (stopped)" if baseline[r["size"]].get("error") else ""))
    lines += ["```", "", "Stage times (seconds) per export:", ""]
    for r in (r for r in exports if r.get("stage_s")):
        stages = ", ".join(f"{k} {v}" for k, v in r["stage_s"].items())
        lines.append(f"- {r['size']} {r['recipe']}: {stages}")
    lines += coreai_section(exports, coreai, SIZE_ORDER) + cross_check_section(CROSS_CHECK)
    lines += quality_section() + kmeans_section() + speculative_section() + adapters_section()
    lines += graph_targets_section()
    REPORT.write_text("\n".join(lines) + "\n")


def baseline_section(baseline: dict) -> list[str]:
    lines = ["", "Plain script (`exporter/bench_baseline.py`: trace + convert + int4, one stateless function, "
             f"stopped past {RSS_LIMIT / 1e9:.0f} GB):", "",
             "| size | wall s | peak RSS GB | result | load |", "|---|---|---|---|---|"]
    for size, r in sorted(baseline.items(), key=lambda kv: SIZE_ORDER.get(kv[0], 9)):
        lines.append(f"| {size} | {r['wall_s']} | {r['peak_rss_bytes'] / 1e9:.1f} | {r.get('error', 'ok')} | "
                     f"{r.get('load_before', '')} |")
    return lines


def targets_section(exports: list[dict], baseline: dict) -> list[str]:
    """The issue's targets against the measured runs, worked out here so the verdict cannot drift from the data."""
    found = {(r["size"], r["recipe"]): r for r in exports if not r.get("error")}
    lines = ["", "Targets:", ""]
    small, base = found.get(("450m", "int4")), baseline.get("450m")
    if small and base and not base.get("error"):
        time_ratio = small["wall_s"] / base["wall_s"]
        rss_ratio = small["peak_rss_bytes"] / base["peak_rss_bytes"]
        lines.append(f"- 450M int4, two functions, vs the plain script in the same run: time {time_ratio:.2f}× "
                     f"(target ≤ 1.2×: {'met' if time_ratio <= 1.2 else 'not met'}), peak RSS {rss_ratio:.2f}× "
                     f"(target ≤ 0.5×: {'met' if rss_ratio <= 0.5 else 'not met'}).")
        spent = {}
        for stage, seconds in small.get("stage_s", {}).items():
            kind = next((k for k in STAGE_KINDS if stage.startswith(k)), "other")
            spent[kind] = spent.get(kind, 0.0) + seconds
        lines.append("  Where its time goes: " + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
                     + f" (the plain script converts one function and quantizes once in {base['wall_s']} s).")
    big = found.get(("3b", "int4"))
    if big:
        peak = big["peak_rss_bytes"] / 1e9
        lines.append(f"- 3B int4 on this 24 GB machine: completed, peak RSS {peak:.1f} GB (target ≤ 12 GB: "
                     f"{'met' if peak <= 12 else 'not met'}), {big.get('chunks', 1)} packages.")
    return lines if len(lines) > 3 else []


def bar(nbytes: int) -> str:
    return "#" * max(1, round(nbytes / 0.5e9)) + f" {nbytes / 1e9:.1f} GB"


def quality_section() -> list[str]:
    if not QUALITY.is_file():
        return []
    recipes = json.loads(QUALITY.read_text())["recipes"]
    lines = [
        "",
        "## Recipe quality on the embedded model",
        "",
        "`python -m exporter.tools.quality` (part of `make bench`): each recipe exports the embedded OpenELM-tiny; the "
        "package, run by the float16 executor with chunked prefill, and the float32 reference read the "
        "held-out text (every token scored). Graph error = package vs a reference holding the package's own "
        "de-quantized weights.",
        "",
        "| recipe | KL(ref ‖ pkg) | top-1 agreement | perplexity (reference) | graph KL | graph top-1 | package MB "
        "| weights / theory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in recipes.items():
        lines.append(
            f"| {name} | {r['kl']:.2e} | {100 * r['top1']:.1f}% | {r['perplexity']:.2f} ({r['reference_perplexity']:.2f}) "
            f"| {r['graph_kl']:.1e} | {100 * r['graph_top1']:.1f}% | {r['package_bytes'] / 1e6:.2f} "
            f"| {r['weights_to_theory']} |"
        )
    return lines


def save(runs: list[dict], machine_text: str) -> None:
    RESULTS.write_text(json.dumps({"machine": machine_text, "runs": runs}, indent=2) + "\n")
    write_report(runs, machine_text)


@click.command()
@click.option("--sizes", default="270m,450m,1_1b,3b", show_default=True)
@click.option("--recipes", default="none,int4,lut4,mixed", show_default=True)
@click.option("--context-length", type=int, default=2048, show_default=True)
@click.option("--baseline/--no-baseline", default=True, help="Also time the plain conversion script.")
@click.option("--verify/--no-verify", default=True, help="Verify each export (time recorded).")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("out/bench"), show_default=True)
@click.option("--quality/--no-quality", default=True, help="Also measure every recipe on the embedded model.")
@click.option("--verify-recipes", default="none,int4,lut4,mixed", show_default=True,
              help="With --verify: the recipes whose exports are verified.")
@click.option("--reverify", is_flag=True, help="Only run elm-verify again on the exports already recorded.")
@click.option("--formats", default="coreml,coreai", show_default=True,
              help="Export formats to measure (Core AI: int4 only, beside Core ML's int4).")
def main(sizes, recipes, context_length, baseline, verify, verify_recipes, workdir, quality, reverify, formats):
    workdir.mkdir(parents=True, exist_ok=True)
    if reverify:
        runs = json.loads(RESULTS.read_text())["runs"]
        wanted = set(filter(None, sizes.split(","))), set(filter(None, recipes.split(",")))
        runs = [reverify_run(r, workdir) if r["kind"] == "export" and r["size"] in wanted[0]
                and r["recipe"] in wanted[1] and not r.get("error") else r for r in runs]
        save(runs, machine())
        click.echo(f"wrote {RESULTS} and {REPORT}")
        return
    if quality:
        subprocess.run([sys.executable, "-m", "exporter.tools.quality", "--output", str(QUALITY)], check=True)
        subprocess.run([sys.executable, "-m", "exporter.tools.bench_cross_check", "--output", str(CROSS_CHECK)],
                       check=True)
        subprocess.run([sys.executable, "-m", "exporter.tools.bench_targets"], check=True)
        subprocess.run([sys.executable, "-m", "exporter.tools.bench_kmeans", "--json", "benchmarks_kmeans.json"],
                       check=True)
        subprocess.run([sys.executable, "-m", "exporter.tools.bench_speculative"], check=True)
        subprocess.run([sys.executable, "-m", "exporter.tools.bench_adapters"], check=True)
    machine_text = machine()

    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")

    def record(run: dict) -> None:
        """Saved as soon as measured: a long run stopped halfway keeps what it finished."""
        run["run"] = run_id  # which `make bench` invocation: ratios compare runs of the same one
        click.echo(json.dumps(run))
        save(merge([run]), machine_text)

    for size in filter(None, sizes.split(",")):
        if baseline:
            record(bench_baseline(size, workdir))
        for recipe in filter(None, recipes.split(",")):
            if "coreml" in formats.split(","):
                record(bench_export(size, recipe, workdir, context_length, verify and recipe in verify_recipes.split(",")))
            if "coreai" in formats.split(",") and recipe == "int4":
                record(bench_export(size, recipe, workdir, context_length, verify, "coreai"))
    click.echo(f"wrote {RESULTS} and {REPORT}")


if __name__ == "__main__":
    main()
