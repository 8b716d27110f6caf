"""`make bench`'s --target figures: the gpu and ane graphs of the same model and recipe, exported in turn.

For each size: export time and peak RSS of both targets (separate processes, same run), the Neural
Engine rules report of every function as export.json records it (op counts before and after), and
what the ane prefill saves per call by returning no logits (FLOPs and output bytes, from the config).
Writes benchmarks_targets.json; exporter.tools.bench puts its table in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from exporter.graph.vocab import vocab_split
from exporter.model.config import OpenELMConfig
from exporter.tools.measure import RSS_LIMIT, last_line, machine, run_measured

TARGETS_RESULTS = Path("benchmarks_targets.json")
RULE_KEYS = ("ops", "linear", "conv", "multi_head_matmuls", "table_gathers", "fp32_ops", "int32_ops", "max_rank")


def prefill_savings(config: OpenELMConfig, tokens: int, context_length: int) -> dict:
    """What one ane prefill call of `tokens` does not compute or return, against the gpu prefill."""
    pieces, piece_size = vocab_split(config.vocab_size)
    last = config.num_transformer_layers - 1
    dim, head_dim, num_q = config.model_dim, config.head_dim, config.num_query_heads[last]
    ffn = config.ffn_dims[last]
    logits = 2 * tokens * dim * pieces * piece_size
    tail = 2 * tokens * (num_q * head_dim * dim + 3 * dim * ffn)  # the last layer's out_proj and FFN
    attention = 2 * 2 * tokens * context_length * head_dim * num_q  # its queries' scores and values
    return {"logit_flops": logits, "last_layer_flops": tail + attention,
            "gpu_output_bytes": 2 * tokens * pieces * piece_size, "ane_output_bytes": 2 * tokens * dim}


def export_target(size: str, target: str, recipe: str, workdir: Path, context_length: int,
                  prefill_length: int) -> dict:
    out = workdir / f"{size}-{recipe}-{target}"
    source = ["--size", "tiny"] if size == "tiny" else ["--size", size, "--random-weights", "0"]
    command = [sys.executable, "-m", "exporter", *source, "--quant", recipe, "--target", target, "--no-tokenizer",
               "--context-length", str(context_length), "--prefill-length", str(prefill_length), "--output",
               str(out), "--force", "--no-verify"]
    code, wall, rss, output = run_measured(command, rss_limit=RSS_LIMIT)
    record = {"size": size, "target": target, "recipe": recipe, "exit_code": code, "wall_s": round(wall, 1),
              "peak_rss_bytes": rss, "context_length": context_length, "prefill_length": prefill_length}
    if code:
        record["error"] = last_line(output)
        return record
    manifest = json.loads((out / "export.json").read_text())
    record["package_bytes"] = manifest["package_bytes"]
    record["rules"] = {name: {k: counts[k] for k in RULE_KEYS} | {"narrow_io": counts["narrow_io"]}
                       for chunk in manifest["chunks"] for name, counts in chunk["neural_engine_rules"].items()}
    record["norms"] = manifest["graph"].get("norms")
    if target == "ane":
        config = OpenELMConfig(**{k: v for k, v in manifest["model"].items()
                                  if k in OpenELMConfig.__dataclass_fields__})
        record["prefill_savings"] = prefill_savings(config, prefill_length, context_length)
    return record


@click.command()
@click.option("--sizes", default="tiny,270m,450m", show_default=True)
@click.option("--recipe", default="int4", show_default=True, help="The same recipe for both targets.")
@click.option("--context-length", type=int, default=512, show_default=True)
@click.option("--prefill-length", type=int, default=64, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("out/bench"), show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=TARGETS_RESULTS, show_default=True)
def main(sizes, recipe, context_length, prefill_length, workdir, output):
    workdir.mkdir(parents=True, exist_ok=True)
    runs, run_id = [], time.strftime("%Y-%m-%dT%H:%M:%S")
    for size in filter(None, sizes.split(",")):
        for target in ("gpu", "ane"):  # gpu first: the baseline each ane ratio is taken against
            run = export_target(size, target, recipe, workdir, context_length, prefill_length) | {"run": run_id}
            click.echo(json.dumps({k: v for k, v in run.items() if k not in ("rules", "norms")}))
            runs.append(run)
            output.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=2) + "\n")
    click.echo(f"wrote {output}")


if __name__ == "__main__":
    main()


def graph_targets_section(path: Path = TARGETS_RESULTS) -> list[str]:
    """BENCHMARKS.md's table of both graphs: rules per function, export time and RSS, what prefill saves."""
    if not path.is_file():
        return []
    document = json.loads(path.read_text())
    runs = [r for r in document["runs"] if not r.get("error")]
    lines = ["", "## Neural Engine graph (`--target ane`) against the plain one (`--target gpu`)", "",
             f"`python -m exporter.tools.bench_targets` (part of `make bench`) on: {document['machine']}. Same model, "
             "recipe, context and prefill length, one export per target in its own process (`--no-verify`), gpu "
             "first; the ratio is ane / gpu of the same run. Rules counted from the saved package "
             "(export.json `neural_engine_rules`); ops exclude constants.", "",
             "| size | recipe | target | function | ops | linear | conv | multi-head matmuls | table gathers | fp32 | "
             "int32 | max rank | narrow inputs/outputs |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for function, c in r["rules"].items():
            lines.append(f"| {r['size']} | {r['recipe']} | {r['target']} | {function} | {c['ops']} | {c['linear']} | "
                         f"{c['conv']} | {c['multi_head_matmuls']} | {c['table_gathers']} | {c['fp32_ops']} | "
                         f"{c['int32_ops']} | {c['max_rank']} | {', '.join(c['narrow_io']) or '-'} |")
    lines += ["", "| size | recipe | gpu export s | ane export s | time ane/gpu | gpu peak RSS GB | ane peak RSS GB | "
              "RSS ane/gpu | package MB gpu / ane |", "|---|---|---|---|---|---|---|---|---|"]
    for ane in (r for r in runs if r["target"] == "ane"):
        gpu = next((r for r in runs if r["target"] == "gpu" and r["size"] == ane["size"] and r["run"] == ane["run"]),
                   None)
        if gpu:
            lines.append(f"| {ane['size']} | {ane['recipe']} | {gpu['wall_s']} | {ane['wall_s']} | "
                         f"{ane['wall_s'] / gpu['wall_s']:.2f}× | {gpu['peak_rss_bytes'] / 1e9:.2f} | "
                         f"{ane['peak_rss_bytes'] / 1e9:.2f} | {ane['peak_rss_bytes'] / gpu['peak_rss_bytes']:.2f}× | "
                         f"{gpu['package_bytes'] / 1e6:.1f} / {ane['package_bytes'] / 1e6:.1f} |")
    lines += ["", "What one ane prefill call of T tokens does not compute or return (from the config; the gpu prefill "
              "computes every logit row and returns them all, the app reads one):", "",
              "| size | T | vocabulary projection GFLOP | last layer's attention output + FFN GFLOP | output MB gpu | "
              "output KB ane |", "|---|---|---|---|---|---|"]
    for ane in (r for r in runs if r["target"] == "ane"):
        s = ane["prefill_savings"]
        lines.append(f"| {ane['size']} | {ane['prefill_length']} | {s['logit_flops'] / 1e9:.2f} | "
                     f"{s['last_layer_flops'] / 1e9:.3f} | {s['gpu_output_bytes'] / 1e6:.2f} | "
                     f"{s['ane_output_bytes'] / 1e3:.1f} |")
    return lines
