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
from exporter.model.preflight import measure
from exporter.model.streamed import is_streamed
from exporter.verify.compare import compare
from exporter.verify.drive import coreai_run, coreml_runtime_run, run_chunk_by_chunk
from exporter.verify.reference import logits_for, reference_run
from exporter.verify.report import DEFAULT_TOTAL, TOTAL_THRESHOLDS, ParityReport
from quant.recipes import MIXED_DEFAULT_MAP

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
           dequantized_model: OpenELM | None = None, judge_total: bool = True, backend: str = "coreml") -> ParityReport:
    """Parity of one format's packages (Core ML: our float16 executor, and Core ML itself on macOS; Core AI:
    Apple's Core AI runtime) with the reference, and with the de-quantized reference when given."""
    started = time.perf_counter()
    check_same_model(model, manifest)
    room = manifest["context_length"] - len(prompt)
    if room < 0:
        raise ExportError(f"the prompt has {len(prompt)} tokens but the package's context is "
                          f"{manifest['context_length']}; use a shorter prompt")
    steps = min(steps, room)
    tokens, reference_logits = reference_run(model, prompt, steps)
    big = is_streamed(model)  # the model is too big to hold in float32 twice
    if backend == "coreai":
        package_logits, calls, first = coreai_run(packages, manifest, tokens, len(prompt))
    else:
        package_logits, calls, first = run_chunk_by_chunk(packages, manifest, tokens, len(prompt),
                                                          keep_large_float16=big)
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
        dequantized_model = dequantized_model()  # built only now: its programs need not sit beside the executor's
    if dequantized_model is not None:
        report.dequantized_reference = compare(logits_for(dequantized_model, tokens)[first:], package_logits,
                                               compared_prompt)
    report.activation_range = measure(model, tokens).to_dict()
    coreml = coreml_runtime_run(packages, manifest, tokens, len(prompt)) if backend == "coreml" else None
    if backend == "coreai":
        report.coreml_runtime = "not applicable (a Core AI model)"
    if coreml is not None:
        report.coreml_runtime = asdict(compare(reference_logits, coreml[0], compared_prompt))
    report.seconds = time.perf_counter() - started
    return report
