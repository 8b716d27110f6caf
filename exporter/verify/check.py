"""Verify an export folder: integrity and manifest first, then parity with the checkpoint it came from."""

from __future__ import annotations

from pathlib import Path

from exporter.checkpoint.text import sample_ids
from exporter.checkpoint.tokenizer import check_tokenizer
from exporter.errors import ExportError, UsageError
from exporter.manifest.check import check_integrity
from exporter.manifest.document import read_manifest
from exporter.model.streamed import is_streamed
from exporter.verify.parity import verify
from exporter.verify.reference import dequantized_reference, source_model
from exporter.verify.report import ParityReport

DEFAULT_STEPS = 16


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
    return sample_ids(folder if has_tokenizer else None, manifest["vocab_size"], manifest["bos_token_id"], count)


def verify_export(folder: Path, model_dir: Path | None = None, prompt: str | None = None,
                  tokens: int | None = None, steps: int = DEFAULT_STEPS, progress=None) -> ParityReport:
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder; pass the folder elm-export wrote (it holds export.json)")
    manifest = read_manifest(folder)
    packages = check_integrity(folder, manifest)
    ids = prompt_tokens(folder, manifest, prompt, tokens)
    model = source_model(manifest, model_dir)

    def dequantized():
        # Built after the package has run, streamed like the reference when that one is (too big to hold twice).
        return dequantized_reference(packages, model, stream=is_streamed(model))

    compressed = manifest.get("quantization", {}).get("recipe", "none") != "none"
    random_weights = bool((manifest.get("source") or {}).get("random_weights"))
    report = verify(packages, manifest, model, ids, steps, dequantized_model=dequantized if compressed else None,
                    judge_total=not random_weights)
    if (folder / "tokenizer.json").is_file():
        tokenizer = check_tokenizer(folder)
        report.sample = {"prompt": tokenizer.decode(ids), "continuation": tokenizer.decode(report.continuation)}
    return report
