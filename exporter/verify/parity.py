"""Parity between an exported package and the PyTorch reference, on the same tokens.

The reference greedily continues the prompt; the package is then driven exactly as an app
drives it (chunked prefill, then one decode call per token, states kept between calls) on
the same tokens, so every position is compared even after a disagreement. For compressed
packages a second reference carries the package's own de-quantized weights: the gap to it
is the graph's error, the gap to the original is what quantization costs.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from exporter.errors import ExportError
from exporter.model.openelm import OpenELM
from exporter.model.streamed import is_streamed
from exporter.verify.compare import compare
from exporter.verify.drive import coreai_run, coreml_runtime_run, package_run, run_chunk_by_chunk
from exporter.verify.greedy import run_reference
from exporter.verify.programs import ProgramShelf
from exporter.verify.reference import logits_for
from exporter.verify.report import DEFAULT_TOTAL, TOTAL_THRESHOLDS, ParityReport
from exporter.verify.speculative import check_verify_function
from quant.recipes import MIXED_DEFAULT_MAP

# With a reference too big to hold in float32 twice, the executor widens a chunk's float16 weights to float32
# once (instead of in every op: the same numbers, slower) only when they take less than this (a 3B chunk: 6.4 GB).
EXECUTOR_FLOAT32_LIMIT_BYTES = 7 * 10**9
RUNTIMES = {
    "coreml": "Core ML package on elm-export's float16 executor",
    "coreai": "Core AI model in Apple's Core AI runtime (coreai-core)",
}


def check_same_model(model: OpenELM, manifest: dict) -> None:
    ours = model.config.to_dict()
    theirs = manifest.get("model", {})
    for key in ("num_transformer_layers", "model_dim", "head_dim", "num_query_heads", "num_kv_heads",
                "ffn_multipliers", "vocab_size"):
        if ours.get(key) != theirs.get(key):
            raise ExportError(
                f"the package was exported from another model ({key}: package {theirs.get(key)!r}, checkpoint "
                f"{ours.get(key)!r}); pass the --model-dir it was exported from"
            )


def verify(packages: list, manifest: dict, model: OpenELM, prompt: list[int], steps: int,
           dequantized_model: OpenELM | None = None, judge_total: bool = True, backend: str = "coreml",
           programs: ProgramShelf | None = None, adapter: str | None = None) -> ParityReport:
    """Parity of one format's packages (Core ML: our float16 executor, and Core ML itself on macOS; Core AI:
    Apple's Core AI runtime) with the reference, and with the de-quantized reference when given.
    programs: the ProgramShelf the executor loads packages with, shared with the de-quantized reference.
    adapter: run that adapter's functions (prefill_<adapter> ...); `model` then is the reference with it applied."""
    started = time.perf_counter()
    check_same_model(model, manifest)
    room = manifest["context_length"] - len(prompt)
    if room < 0:
        raise ExportError(f"the prompt has {len(prompt)} tokens but the package's context is "
                          f"{manifest['context_length']}; use a shorter prompt")
    steps = min(steps, room)
    reference = run_reference(model, prompt, steps)
    tokens, reference_logits = reference.tokens, reference.logits
    big = is_streamed(model)  # the model is too big to hold in float32 twice

    def run(drive=None):
        drive = drive or (lambda stage: package_run(stage, manifest, tokens, len(prompt), adapter))
        if backend == "coreai":
            return coreai_run(packages, manifest, tokens, len(prompt), drive)
        return run_chunk_by_chunk(packages, manifest, tokens, len(prompt),
                                  EXECUTOR_FLOAT32_LIMIT_BYTES if big else None, programs, drive)

    package_logits, calls, first = run()
    # The ane target's prefill returns no logits: its rows start at the prompt's last token.
    reference_logits, compared_prompt = reference_logits[first:], len(prompt) - first
    quantization = manifest.get("quantization", {})
    recipe = quantization.get("recipe", "none")
    custom_map = quantization.get("quant_map") not in (None, MIXED_DEFAULT_MAP)
    report = ParityReport(
        recipe=recipe,
        prompt_tokens=len(prompt),
        decode_steps=steps,
        prefill_calls=calls,
        reference=compare(reference_logits, package_logits, compared_prompt),
        thresholds=DEFAULT_TOTAL if custom_map else TOTAL_THRESHOLDS.get(recipe, DEFAULT_TOTAL),
        judge_total=judge_total or dequantized_model is None,
        continuation=tokens[len(prompt):],
        runtime=RUNTIMES[backend],
    )
    if callable(dequantized_model) and not isinstance(dequantized_model, torch.nn.Module):
        dequantized_model = dequantized_model()  # built only now, from the programs the executor loaded
    if dequantized_model is not None:
        report.dequantized_reference = compare(logits_for(dequantized_model, tokens)[first:], package_logits,
                                               compared_prompt)
        del dequantized_model  # and its programs
    report.verify_function = check_verify_function(run, manifest, tokens, adapter)
    if programs is not None:
        programs.release()
    report.activation_range = reference.activation_range.to_dict()
    coreml = coreml_runtime_run(packages, manifest, tokens, len(prompt), adapter) if backend == "coreml" else None
    if backend == "coreai":
        report.coreml_runtime = "not applicable (a Core AI model)"
    if coreml is not None:
        report.coreml_runtime = asdict(compare(reference_logits, coreml[0], compared_prompt))
    report.seconds = time.perf_counter() - started
    return report
