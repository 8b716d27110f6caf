"""Verify an export folder: integrity first, then parity with the checkpoint it came from."""

from __future__ import annotations

import math
from pathlib import Path

from exporter.calibration import calibration_ids
from exporter.checkpoint import RandomTensors, open_checkpoint, whole_model
from exporter.errors import ExportError, UsageError
from exporter.hub import check_tokenizer, hub_checkpoint
from exporter.package import inside, read_manifest, sha256_file
from exporter.verify.parity import ParityReport, verify
from exporter.weights import streamed_model

DEFAULT_STEPS = 16
HOLD_LIMIT_BYTES = 3 * 10**9  # a bigger float32 reference is streamed from its checkpoint (OpenELM-1.1B and 3B)


def manifest_chunks(manifest: dict) -> list[dict]:
    """The packages of an export, in calling order (one for an unsplit export)."""
    chunks = manifest.get("chunks")
    if chunks:
        return chunks
    return [{"package": manifest.get("package", ""), "weights_file": manifest.get("weights_file", ""),
             "weights_sha256": manifest.get("weights_sha256"), "input": "input_ids", "output": "logits"}]


def check_integrity(folder: Path, manifest: dict) -> list[Path]:
    """The package paths, after checking their weights are those the manifest describes (before running anything)."""
    packages = []
    for chunk in manifest_chunks(manifest):
        package = inside(folder, chunk.get("package") or "")
        if not package.is_dir():
            raise ExportError(f"{package}: the package named in export.json is missing; re-export the model")
        weights = inside(package, chunk.get("weights_file", ""))
        if not weights.is_file():
            raise ExportError(f"{weights}: weight file missing from the package; re-export the model")
        if sha256_file(weights) != chunk.get("weights_sha256"):
            raise ExportError(
                f"{weights}: sha256 does not match export.json; the package changed after export (re-export it)"
            )
        packages.append(package)
    return packages


def source_tensors(manifest: dict, model_dir: Path | None):
    """(config, tensors) of the checkpoint the package came from: --model-dir, the Hub snapshot, the folder,
    or the random seed."""
    if model_dir is not None:
        return open_checkpoint(Path(model_dir))
    source = manifest.get("source") or {}
    if source.get("random_weights"):
        from exporter.presets import get_preset

        random = source["random_weights"]
        config = get_preset(random["size"]).config()
        return config, RandomTensors(config, int(random["seed"]))
    if source.get("hub_id"):
        return open_checkpoint(hub_checkpoint(source["hub_id"], source.get("revision")).folder)
    if source.get("folder"):
        folder = Path(source["folder"])
        if not folder.is_dir():
            raise ExportError(f"the checkpoint it was exported from ({folder}) is gone; pass --model-dir")
        return open_checkpoint(folder)
    raise ExportError("export.json does not say where the checkpoint came from; pass --model-dir")


def source_model(manifest: dict, model_dir: Path | None):
    """The float32 reference: held in memory, or streamed layer by layer when it is too big to hold."""
    config, tensors = source_tensors(manifest, model_dir)
    if held_bytes(tensors) > HOLD_LIMIT_BYTES:
        return streamed_model(config, tensors)
    return whole_model(config, tensors)


def held_bytes(tensors) -> int:
    return 4 * sum(math.prod(shape) for shape in tensors.expected.values())


def prompt_tokens(folder: Path, manifest: dict, text: str | None, count: int | None) -> list[int]:
    """--prompt text, or `count` tokens of the built-in held-out text (seeded ids without a tokenizer)."""
    if text is not None and count is not None:
        raise UsageError("give --prompt or --tokens, not both")
    has_tokenizer = (folder / "tokenizer.json").is_file()
    if text is not None:
        if not has_tokenizer:
            raise ExportError(f"{folder} has no tokenizer.json to encode --prompt; use --tokens N instead")
        ids = check_tokenizer(folder).encode(text).ids
        if not ids:
            raise UsageError("--prompt encodes to no tokens; give some text")
        return ids
    if count is None:
        count = 2 * manifest["prefill_length"] + 3  # several prefill chunks, the last one partial
        count = min(count, manifest["context_length"] - DEFAULT_STEPS)
    if count < 1:
        raise UsageError(f"--tokens {count} must be at least 1")
    return calibration_ids(folder if has_tokenizer else None, manifest["vocab_size"], manifest["bos_token_id"], count)


def verify_export(folder: Path, model_dir: Path | None = None, prompt: str | None = None,
                  tokens: int | None = None, steps: int = DEFAULT_STEPS, progress=None) -> ParityReport:
    from exporter.verify.package_weights import dequantized_reference

    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder; pass the folder elm-export wrote (it holds export.json)")
    manifest = read_manifest(folder)
    packages = check_integrity(folder, manifest)
    ids = prompt_tokens(folder, manifest, prompt, tokens)
    model = source_model(manifest, model_dir)
    def dequantized():
        # Built after the package has run, streamed like the reference when that one is (too big to hold twice).
        return dequantized_reference(packages, model, stream=hasattr(model, "weight_plan"))

    compressed = manifest.get("quantization", {}).get("recipe", "none") != "none"
    random_weights = bool((manifest.get("source") or {}).get("random_weights"))
    report = verify(packages, manifest, model, ids, steps, dequantized_model=dequantized if compressed else None,
                    judge_total=not random_weights)
    if (folder / "tokenizer.json").is_file():
        tokenizer = check_tokenizer(folder)
        report.sample = {"prompt": tokenizer.decode(ids), "continuation": tokenizer.decode(report.continuation)}
    return report


def format_report(report: ParityReport, name: str) -> str:
    def row(label, c, limits, note=""):
        if c is None:
            return None
        greedy = "agree" if c.greedy_agree else f"differ@{c.first_divergence}"
        bad = f"  {c.nonfinite} inf/NaN" if c.nonfinite else ""
        return (f"  {label:<28}{c.max_abs_error:>10.4f}{c.mean_kl:>11.2e}{100 * c.top1_agreement:>8.1f}%"
                f"  {greedy:<11}KL ≤ {limits['mean_kl']:g}, top-1 ≥ {100 * limits['top1']:g}%{bad}{note}")

    lines = [
        f"{name}: recipe {report.recipe}, {report.prompt_tokens} prompt tokens in {report.prefill_calls} prefill "
        f"call(s) + {report.decode_steps} decode steps, {report.seconds:.1f}s",
        f"  {'':<28}{'max|Δlogit|':>10}{'mean KL':>11}{'top-1':>9}  {'greedy':<11}limits",
        row("vs reference (float32)", report.reference, report.thresholds,
            "" if report.judge_total else "  (random weights: not judged)"),
        row("vs de-quantized reference", report.dequantized_reference, report.graph_thresholds,
            "" if report.judge_total else "  (random weights: top-1 not judged)"),
    ]
    if report.sample:
        lines.append(f"  {'greedy continuation':<28}{report.sample['continuation']!r}")
    if report.activation_range:
        ranges = report.activation_range
        lines.append(f"  {'activation range':<28}min headroom {ranges['min_headroom']:g}× to float16 at layer "
                     f"{ranges['worst_layer']} ({ranges['status']})")
    runtime = report.coreml_runtime
    lines.append(f"  {'Core ML runtime':<28}{runtime if isinstance(runtime, str) else runtime}")
    lines.append("PASS" if report.passed else "FAIL: outside the thresholds for this recipe")
    return "\n".join(line for line in lines if line is not None)
