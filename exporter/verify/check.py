"""Verify an export folder: integrity and manifest first, then parity with the checkpoint it came from."""

from __future__ import annotations

from pathlib import Path

from exporter.checkpoint.text import sample_ids
from exporter.checkpoint.tokenizer import check_tokenizer
from exporter.coreai.package import MODEL_SUFFIX
from exporter.coreml.package import PACKAGE_SUFFIX
from exporter.errors import ExportError, UsageError
from exporter.graph.contract import target_of
from exporter.graph.signature import ANE
from exporter.manifest.check import check_integrity, check_manifest, chunks_of, formats_of
from exporter.manifest.document import MANIFEST_NAME, inside, read_manifest
from exporter.memory import pin_mmap_threshold
from exporter.model.lora import with_adapter
from exporter.model.streamed import is_streamed
from exporter.verify.adapters import adapter_entries, verify_adapters, with_merged_adapter
from exporter.verify.parity import verify
from exporter.verify.programs import ProgramShelf
from exporter.verify.reference import (
    coreai_dequantized_reference,
    dequantized_reference,
    parameter_count,
    source_model,
    source_tensors,
)
from exporter.verify.report import ParityReport
from exporter.verify.twin import RUNTIME_FULL_LIMIT, verify_twin

DEFAULT_STEPS = 16
# The ane graph's prefill gives no logits, so its compared rows are the decode rows: a shorter default prompt
# (still a full and a partial prefill call) and more decode steps keep about as many rows as the gpu default.
ANE_DEFAULT_STEPS = 32
WHAT_TO_PASS = (f"pass the folder elm-export wrote, its {MANIFEST_NAME}, or a {PACKAGE_SUFFIX} or {MODEL_SUFFIX} "
                "inside it")


def export_folder(path: Path) -> Path:
    """The export folder `path` names: the folder itself, its export.json, or one of its packages (or a file
    inside one, as Xcode shows them)."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path}: no such file or folder; {WHAT_TO_PASS}")
    path = path.resolve()
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return path
    if path.is_file() and path.name == MANIFEST_NAME:
        return path.parent
    package = next((p for p in (path, *path.parents) if p.suffix in (PACKAGE_SUFFIX, MODEL_SUFFIX)), None)
    if package is None:
        if path.is_dir():
            return path  # read_manifest says export.json is missing
        raise ExportError(f"{path}: not an export; {WHAT_TO_PASS}")
    folder = package.parent
    if not (folder / MANIFEST_NAME).is_file():
        kind = "a Core AI model" if package.suffix == MODEL_SUFFIX else "a Core ML package"
        raise ExportError(f"{package}: {kind}, but {folder} has no {MANIFEST_NAME}; {WHAT_TO_PASS} "
                          "(keep the package in the folder elm-export wrote)")
    manifest = read_manifest(folder)
    listed = [inside(folder, chunk.get("package") or "")
              for backend in formats_of(manifest) for chunk in chunks_of(manifest, backend)[0]]
    if package not in listed:
        raise ExportError(f"{package}: not one of the packages {folder / MANIFEST_NAME} lists "
                          f"({', '.join(p.name for p in listed)}); {WHAT_TO_PASS}")
    return folder


def default_steps(manifest: dict) -> int:
    """Decode steps when none are asked for: more for an ane export, whose prefill gives no rows to compare."""
    return ANE_DEFAULT_STEPS if target_of(manifest) == ANE else DEFAULT_STEPS


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
        # Several prefill chunks, the last one partial (ane: the prompt but its last token is prefilled).
        neural_engine = target_of(manifest) == ANE
        count = manifest["prefill_length"] + 3 if neural_engine else 2 * manifest["prefill_length"] + 3
        count = min(count, manifest["context_length"] - default_steps(manifest))
    if count < 1:
        raise UsageError(f"--tokens {count} must be at least 1")
    return sample_ids(folder if has_tokenizer else None, manifest["vocab_size"], manifest["bos_token_id"], count)


def verify_export(folder: Path, model_dir: Path | None = None, prompt: str | None = None,
                  tokens: int | None = None, steps: int | None = None, progress=None,
                  backend: str | None = None, adapter_dirs: dict[str, Path] | None = None) -> ParityReport:
    """Parity of the export at `folder` (or its export.json, or one of its packages) with its checkpoint, after
    checking its files and that export.json describes the packages (before running anything).

    backend: which format to run (coreml: our float16 executor; coreai: Apple's Core AI runtime); default the
    folder's first. adapter_dirs: {name: folder} of the export's adapters where their recorded sources are not here."""
    folder = export_folder(folder)
    manifest = read_manifest(folder)
    backend = backend or formats_of(manifest)[0]
    packages = check_integrity(folder, manifest, backend)
    check_manifest(folder, manifest)
    ids = prompt_tokens(folder, manifest, prompt, tokens)
    steps = default_steps(manifest) if steps is None else steps
    if adapter_entries(manifest) and backend == "coreai":
        raise ExportError("Core AI exports with adapters are not built yet; nothing to verify")
    if backend == "coreai" and parameter_count(source_tensors(manifest, model_dir)[1]) > RUNTIME_FULL_LIMIT:
        report = verify_twin(manifest, model_dir, ids, steps)  # Apple's Linux runtime: too slow for all of it
        return with_sample(report, folder, ids)
    pin_mmap_threshold()  # freed weight arrays leave RSS at once (exporter.memory)
    adapter_dirs = adapter_dirs or {}
    base = source_model(manifest, model_dir)  # the checkpoint's; de-quantized twins are built from it
    model = with_merged_adapter(base, manifest, adapter_dirs)
    compressed = manifest.get("quantization", {}).get("recipe", "none") != "none"
    programs = ProgramShelf() if compressed else None  # the executor's programs, for the de-quantized reference

    def dequantized():
        # Built after the package has run, streamed like the reference when that one is (too big to hold twice).
        if backend == "coreai":
            return coreai_dequantized_reference(packages, manifest["coreai"]["chunks"], base, is_streamed(base))
        return dequantized_reference(packages, base, stream=is_streamed(base), programs=programs)

    random_weights = bool((manifest.get("source") or {}).get("random_weights"))
    report = verify(packages, manifest, model, ids, steps, dequantized_model=dequantized if compressed else None,
                    judge_total=not random_weights, backend=backend, programs=programs)

    def verify_adapter(adapter):  # the adapter's functions against the reference with it applied
        shelf = ProgramShelf() if compressed else None
        dequantized_adapted = (lambda: with_adapter(dequantized_reference(packages, base, stream=is_streamed(base),
                                                                          programs=shelf), adapter))
        adapter_report = verify(packages, manifest, with_adapter(model, adapter), ids, steps, backend=backend,
                                programs=shelf, dequantized_model=dequantized_adapted if compressed else None,
                                judge_total=not random_weights, adapter=adapter.name)
        adapter_report.total_forgives_ties = True  # exporter.verify.report: thresholds measured on the base's text
        return with_sample(adapter_report, folder, ids)

    report.adapters = verify_adapters(verify_adapter, manifest, model.config, adapter_dirs)
    return with_sample(report, folder, ids)


def with_sample(report: ParityReport, folder: Path, ids: list[int]) -> ParityReport:
    """The report with its prompt and continuation as text, when the export has a tokenizer."""
    if (folder / "tokenizer.json").is_file():
        tokenizer = check_tokenizer(folder)
        report.sample = {"prompt": tokenizer.decode(ids[:report.prompt_tokens]),
                         "continuation": tokenizer.decode(report.continuation)}
    return report

