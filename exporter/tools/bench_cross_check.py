"""Apple's Core AI runtime against our float16 executor on the embedded model, per recipe (elm-verify --cross-check).

`python -m exporter.tools.bench_cross_check --output benchmarks_cross_check.json`: exports the embedded
OpenELM with each recipe (Core ML), then runs the cross-check on it; `make bench` puts the table in
BENCHMARKS.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click

RECIPES = ("none", "int8", "int4", "lut4", "mixed")


def measure(recipe: str, workdir: Path) -> dict:
    from exporter.pipeline import ExportOptions, export
    from exporter.verify.cross_check import cross_check_export

    folder = workdir / recipe
    export(ExportOptions(size="tiny", quant=recipe, output=folder, verify=False))
    started = time.perf_counter()
    agreement = cross_check_export(folder)
    c = agreement.comparison
    return {"max_abs_error": round(c.max_abs_error, 4), "mean_kl": c.mean_kl, "top1": c.top1_agreement,
            "positions": agreement.positions, "passed": agreement.passed,
            "seconds": round(time.perf_counter() - started, 1)}


def section(path: Path) -> list[str]:
    """BENCHMARKS.md's table of the figures `main` wrote (none when it has not run)."""
    if not path.is_file():
        return []
    results = json.loads(path.read_text())["recipes"]
    lines = ["", "## Cross-check: our float16 executor vs Apple's Core AI runtime (embedded model)", "",
             "`python -m exporter.tools.bench_cross_check` (`elm-verify --cross-check` per recipe): the Core ML package "
             "run by our executor, and the same graph with the package's own de-quantized weights exported to Core AI "
             "and run by Apple's runtime (coreai-core, Linux), on the same tokens (default prompt + 16 greedy steps). "
             "Pass: KL ≤ 1e-3 and top-1 ≥ 98% (float16 rounding only). Seconds: export + cross-check wall time; the "
             "recorded run shared the 2 cores with `make bench` (alone, int4 took 48 s).", "",
             "| recipe | max abs logit difference | mean KL | top-1 agreement | positions | seconds | result |",
             "|---|---|---|---|---|---|---|"]
    for recipe, r in results.items():
        lines.append(f"| {recipe} | {r['max_abs_error']} | {r['mean_kl']:.2e} | {100 * r['top1']:.1f}% | "
                     f"{r['positions']} | {r['seconds']} | {'pass' if r['passed'] else 'FAIL'} |")
    return lines


@click.command()
@click.option("--output", type=click.Path(path_type=Path), default=Path("benchmarks_cross_check.json"),
              show_default=True)
@click.option("--recipes", default=",".join(RECIPES), show_default=True)
def main(output, recipes):
    with tempfile.TemporaryDirectory(prefix="elm-cross-bench-") as scratch:
        results = {recipe: measure(recipe, Path(scratch)) for recipe in filter(None, recipes.split(","))}
    output.write_text(json.dumps({"recipes": results}, indent=2) + "\n")
    for recipe, r in results.items():
        click.echo(f"{recipe}: {r}")


if __name__ == "__main__":
    main()
