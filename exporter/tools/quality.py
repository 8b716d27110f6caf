"""Quality of each recipe on the embedded model: what `make bench` records in BENCHMARKS.md.

For every recipe the embedded OpenELM is exported, then the package (run by the float16
executor, as an app drives it) and the float32 reference read the same held-out text. Reported:
KL(reference ‖ package), top-1 agreement, held-out perplexity of both, the graph error against
a reference holding the package's own de-quantized weights, and the size against theory.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars; tqdm reads this on import

import json  # noqa: E402
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from exporter.checkpoint.sources import EMBEDDED_DIR
from exporter.checkpoint.text import HELDOUT_TEXT
from exporter.checkpoint.tokenizer import check_tokenizer
from exporter.graph.contract import target_of
from exporter.graph.signature import ANE
from exporter.model.metrics import perplexity_of_logits
from exporter.pipeline import ExportOptions, export
from exporter.verify.compare import compare
from exporter.verify.drive import ChunkChain, package_run
from exporter.verify.reference import dequantized_reference, logits_for
from quant.recipes import RECIPES

QUALITY_JSON = Path("benchmarks_quality.json")


def heldout_windows(window: int) -> list[list[int]]:
    ids = check_tokenizer(EMBEDDED_DIR).encode(HELDOUT_TEXT.read_text(encoding="utf-8")).ids
    return [ids[i : i + window] for i in range(0, len(ids) - 1, window) if len(ids[i : i + window]) > 1]


def evaluate(folder: Path, manifest: dict, model) -> dict:
    from exporter.verify.executor import ProgramExecutor

    package = folder / manifest["chunks"][0]["package"]
    executor = ProgramExecutor(package)
    dequantized = dequantized_reference(package, model) if manifest["quantization"]["recipe"] != "none" else None
    ref_rows, pkg_rows, deq_rows, nll_ref, nll_pkg, count = [], [], [], 0.0, 0.0, 0
    for tokens in heldout_windows(manifest["context_length"]):
        reference = logits_for(model, tokens)
        # The ane target's prefill gives no logits: every row from decode (a one-token prompt).
        prompt = 1 if target_of(manifest) == ANE else len(tokens)
        packaged, _, _ = package_run(ChunkChain([executor], manifest["chunks"][:1]), manifest, tokens, prompt)
        ref_rows.append(reference)
        pkg_rows.append(packaged)
        if dequantized is not None:
            deq_rows.append(logits_for(dequantized, tokens))
        n = len(tokens) - 1
        nll_ref += np.log(perplexity_of_logits(reference, tokens)) * n
        nll_pkg += np.log(perplexity_of_logits(packaged, tokens)) * n
        count += n
    ref, pkg = np.concatenate(ref_rows), np.concatenate(pkg_rows)
    total = compare(ref, pkg, len(ref))
    graph = compare(np.concatenate(deq_rows), pkg, len(pkg)) if deq_rows else total
    return {
        "tokens": count,
        "kl": total.mean_kl,
        "top1": total.top1_agreement,
        "max_abs_error": total.max_abs_error,
        "perplexity": float(np.exp(nll_pkg / count)),
        "reference_perplexity": float(np.exp(nll_ref / count)),
        "graph_kl": graph.mean_kl,
        "graph_top1": graph.top1_agreement,
        "nonfinite": total.nonfinite,
    }


@click.command()
@click.option("--recipes", default=",".join(RECIPES), show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=QUALITY_JSON, show_default=True)
def main(recipes, output):
    from exporter.model.load import load_checkpoint

    model = load_checkpoint(EMBEDDED_DIR)
    results = json.loads(output.read_text())["recipes"] if output.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes.split(","):
            started = time.perf_counter()
            folder = Path(tmp) / recipe
            manifest = export(ExportOptions(size="tiny", quant=recipe, output=folder, verify=False)).manifest
            row = evaluate(folder, manifest, model)
            row.update(package_bytes=manifest["size"]["package_bytes"],
                       weight_file_bytes=manifest["size"]["weight_file_bytes"],
                       theoretical_bytes=manifest["size"]["theoretical_bytes"],
                       weights_to_theory=manifest["size"]["weights_to_theory"],
                       seconds=round(time.perf_counter() - started, 1))
            results[recipe] = row
            click.echo(f"{recipe}: {json.dumps(row)}")
    output.write_text(json.dumps({"model": "embedded OpenELM-tiny", "recipes": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
