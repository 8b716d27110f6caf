"""Apple's code checking ours: a Core ML export run by our float16 executor against Apple's Core AI runtime.

The same graph (exporter.graph) with the package's own de-quantized weights is exported to Core AI
in a temporary folder, uncompressed, so both programs hold the same float16 numbers; both are
driven on the same tokens as an app drives them. Two float16 programs computing the same thing
differ only by rounding; a wrong kernel in our executor (or in the export) shows as disagreement.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from exporter.errors import ExportError
from exporter.graph.chunks import Chunk
from exporter.manifest.build import coreai_entry
from exporter.manifest.check import check_integrity, check_manifest, formats_of
from exporter.manifest.document import read_manifest
from exporter.progress import Progress
from exporter.verify.compare import compare
from exporter.verify.drive import coreai_run, graph_settings, run_chunk_by_chunk
from exporter.verify.reference import (
    dequantized_reference,
    parameter_count,
    reference_run,
    source_model,
    source_tensors,
)
from exporter.verify.report import GRAPH_THRESHOLDS, Comparison
from exporter.verify.twin import RUNTIME_FULL_LIMIT  # the whole model runs in Apple's (slow) Linux runtime
from quant.coreml import Compression
from quant.recipes import get_recipe


@dataclass
class Agreement:
    """Our executor (on the .mlpackage) against Apple's Core AI runtime (on the same weights as an .aimodel)."""

    comparison: Comparison
    thresholds: dict
    positions: int
    seconds: float

    @property
    def passed(self) -> bool:
        return self.comparison.passes(self.thresholds)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def export_twin_coreai(model, manifest: dict, destination: Path) -> dict:
    """`model` (the package's weights) as an uncompressed Core AI export chunked as the package is; returns a
    manifest for driving it (exporter.verify.drive.coreai_run)."""
    from exporter.coreai.write import write_models

    chunks = [Chunk(chunk["layers"][0], chunk["layers"][1], model.config.num_transformer_layers)
              for chunk in manifest["chunks"]]
    settings = replace(graph_settings(manifest), verify_length=0)  # the cross-check drives prefill and decode only
    written = write_models(model, None, chunks, settings, manifest["prefill_length"],
                           Compression(get_recipe("none")), "cross-check", destination, Progress(quiet=True))
    entries = [coreai_entry(destination, chunk, name, sizes, weights, model.config, manifest["context_length"])
               for chunk, name, sizes, weights in written]
    return {**manifest, "coreai": {"chunks": entries}}


def cross_check_export(folder: Path, model_dir: Path | None = None, prompt: str | None = None,
                       tokens: int | None = None, steps: int | None = None) -> Agreement:
    from exporter.verify.check import default_steps, prompt_tokens

    started = time.perf_counter()
    manifest = read_manifest(folder)
    if "coreml" not in formats_of(manifest):
        raise ExportError(f"{folder}: --cross-check compares our executor on a Core ML package with Apple's runtime; "
                          "this export holds no Core ML package (a Core AI export already runs in Apple's runtime)")
    packages = check_integrity(folder, manifest, "coreml")
    check_manifest(folder, manifest)
    ids = prompt_tokens(folder, manifest, prompt, tokens)
    model = source_model(manifest, model_dir)
    parameters = parameter_count(source_tensors(manifest, model_dir)[1])
    if parameters > RUNTIME_FULL_LIMIT:
        raise ExportError(f"--cross-check runs the whole model in Apple's Core AI runtime, a slow CPU reference on "
                          f"Linux: practical up to {RUNTIME_FULL_LIMIT / 1e6:g}M parameters, this model has "
                          f"{parameters / 1e6:.0f}M; cross-check the embedded model or a small --random-weights one")
    weights = dequantized_reference(packages, model)
    room = manifest["context_length"] - len(ids)
    steps = min(default_steps(manifest) if steps is None else steps, room)
    sequence, _ = reference_run(weights, ids, steps)
    ours, _, first = run_chunk_by_chunk(packages, manifest, sequence, len(ids))
    with tempfile.TemporaryDirectory(prefix="elm-cross-check-") as scratch:
        twin = export_twin_coreai(weights, manifest, Path(scratch))
        paths = [Path(scratch) / chunk["package"] for chunk in twin["coreai"]["chunks"]]
        apple, _, _ = coreai_run(paths, twin, sequence, len(ids))
    return Agreement(compare(apple, ours, len(ids) - first), dict(GRAPH_THRESHOLDS), len(ours),
                     time.perf_counter() - started)


def format_agreement(agreement: Agreement) -> str:
    c, limits = agreement.comparison, agreement.thresholds
    verdict = "PASS" if agreement.passed else "FAIL: our executor and Apple's runtime disagree"
    return (f"cross-check (our float16 executor on the .mlpackage vs Apple's Core AI runtime on the same weights, "
            f"{agreement.positions} positions, {agreement.seconds:.1f}s): max|Δlogit| {c.max_abs_error:.4f}, "
            f"mean KL {c.mean_kl:.2e}, top-1 {100 * c.top1_agreement:.1f}% (KL ≤ {limits['mean_kl']:g}, top-1 ≥ "
            f"{100 * limits['top1']:g}%) {verdict}")
