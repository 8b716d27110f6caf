"""Parity between an exported package and the PyTorch reference, on the same tokens.

The reference greedily continues the prompt; the package is then driven exactly as an app
drives it (chunked prefill, then one decode call per token, states kept between calls) on
the same tokens, so every position is compared even after a disagreement. For compressed
packages a second reference carries the package's own de-quantized weights: the gap to it
is the graph's error, the gap to the original is what quantization costs.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from exporter.errors import ExportError
from exporter.model import KVCache, OpenELM
from exporter.preflight import measure
from quant.recipes import MIXED_DEFAULT_MAP

# Thresholds per recipe, set from `python -m quant.quality` on the embedded model (measured values in
# the comments; README "Verification"): about 4x the measured KL and a margin under the measured top-1,
# so a broken package fails while the recipe's own rounding passes.
# graph: package vs a reference holding the package's own weights (measured KL ≤ 3e-6, top-1 ≥ 99.6%).
GRAPH_THRESHOLDS = {"mean_kl": 1e-3, "top1": 0.98}
TOTAL_THRESHOLDS = {  # total: package vs the original float32 reference
    "none": {"mean_kl": 1e-3, "top1": 0.98},  # 2.6e-6, 99.9%
    "int8": {"mean_kl": 1e-3, "top1": 0.97},  # 3.7e-5, 99.6%
    "int4": {"mean_kl": 0.03, "top1": 0.85},  # 7.0e-3, 92.4%
    "lut8": {"mean_kl": 1e-3, "top1": 0.97},  # 3.0e-5, 99.4%
    "lut6": {"mean_kl": 3e-3, "top1": 0.94},  # 5.8e-4, 98.0%
    "lut4": {"mean_kl": 0.05, "top1": 0.82},  # 1.3e-2, 89.8%
    "lut3": {"mean_kl": 0.2, "top1": 0.70},  # 5.5e-2, 79.4%
    "lut2": {"mean_kl": 1.0, "top1": 0.30},  # 3.3e-1, 54.6% (42% on elm-verify's shorter default prompt):
    # 2 bits hurt the model; this bound only catches broken packages
    "mixed": {"mean_kl": 0.015, "top1": 0.88},  # 3.3e-3, 95.4%
}
DEFAULT_TOTAL = {"mean_kl": 0.25, "top1": 0.70}  # a --quant-map over several recipes: the loosest common bound


@dataclass
class Comparison:
    """How close the package's logits are to one reference's, position by position."""

    max_abs_error: float
    mean_kl: float
    top1_agreement: float
    greedy_agree: bool
    first_divergence: int | None  # decode step where the package's own greedy token first differs
    nonfinite: int  # inf/NaN logits the package produced

    def passes(self, thresholds: dict, judge_top1: bool = True) -> bool:
        return (
            self.nonfinite == 0
            and self.mean_kl <= thresholds["mean_kl"]
            and (self.top1_agreement >= thresholds["top1"] or not judge_top1)
        )


@dataclass
class ParityReport:
    recipe: str
    prompt_tokens: int
    decode_steps: int
    prefill_calls: int
    reference: Comparison
    thresholds: dict
    dequantized_reference: Comparison | None = None
    graph_thresholds: dict = field(default_factory=lambda: dict(GRAPH_THRESHOLDS))
    # False for seeded random weights: their near-flat logits give quantization no meaningful tolerance,
    # so only the graph error (vs the de-quantized reference) is judged, and that by KL: near-tied logits
    # swap their top-1 under float16 rounding alone (3B int4: 4 of 147 positions at graph KL 2e-5).
    judge_total: bool = True
    coreml_runtime: dict | str = "not available on this OS (Core ML runs on macOS only)"
    activation_range: dict | None = None  # exporter.preflight over the verified tokens
    continuation: list[int] = field(default_factory=list)  # the reference's greedy tokens after the prompt
    sample: dict | None = None  # prompt and continuation as text, when the package has a tokenizer
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        ok = self.reference.passes(self.thresholds) or (not self.judge_total and self.dequantized_reference is not None)
        if self.dequantized_reference is not None:
            ok = ok and self.dequantized_reference.passes(self.graph_thresholds, judge_top1=self.judge_total)
        return ok

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def compare(reference: np.ndarray, package: np.ndarray, prompt_length: int) -> Comparison:
    """reference/package: [positions, vocab] logits for the same tokens."""
    nonfinite = int((~np.isfinite(package)).sum())
    safe = np.nan_to_num(package.astype(np.float64), nan=0.0, posinf=6e4, neginf=-6e4)
    ref_logp = log_softmax(reference)
    pkg_logp = log_softmax(safe)
    kl = np.maximum((np.exp(ref_logp) * (ref_logp - pkg_logp)).sum(-1), 0.0)  # ≥ 0 up to rounding
    ref_top = reference.argmax(-1)
    pkg_top = safe.argmax(-1)
    decode_agree = ref_top[prompt_length - 1 :] == pkg_top[prompt_length - 1 :]
    divergence = None if decode_agree.all() else int(np.argmin(decode_agree))
    return Comparison(
        max_abs_error=float(np.abs(safe - reference).max()),
        mean_kl=float(kl.mean()),
        top1_agreement=float((ref_top == pkg_top).mean()),
        greedy_agree=bool(decode_agree.all()),
        first_divergence=divergence,
        nonfinite=nonfinite,
    )


@torch.no_grad()
def reference_run(model: OpenELM, prompt: list[int], steps: int) -> tuple[list[int], np.ndarray]:
    """Greedy continuation and the logits at every position (prompt and decode), float32."""
    cache = KVCache(model.config.num_transformer_layers)
    logits = model(torch.tensor([prompt]), cache)[0]
    rows, tokens = [logits], list(prompt)
    for _ in range(steps):
        tokens.append(int(rows[-1][-1].argmax()))
        rows.append(model(torch.tensor([[tokens[-1]]]), cache)[0])
    return tokens, torch.cat(rows)[: len(tokens)].float().numpy()


@torch.no_grad()
def logits_for(model: OpenELM, tokens: list[int]) -> np.ndarray:
    """Float32 logits at every position of `tokens`, in one full-sequence pass."""
    return model(torch.tensor([tokens]))[0].float().numpy()


def package_run(executor, manifest: dict, tokens: list[int], prompt_length: int) -> tuple[np.ndarray, int]:
    """Drive the package like an app: chunked prefill of the prompt, then decode calls on `tokens`."""
    prefill_length = manifest["prefill_length"]
    vocab = manifest["vocab_size"]
    state = executor.new_state()
    rows, calls = [], 0
    for start in range(0, prompt_length, prefill_length):
        chunk = tokens[start : min(start + prefill_length, prompt_length)]
        padded = np.zeros((1, prefill_length), dtype=np.int32)
        padded[0, : len(chunk)] = chunk
        out = executor.run("prefill", {"input_ids": padded, "position": np.array([start], np.int32)}, state)
        rows.append(out["logits"].reshape(prefill_length, -1)[: len(chunk), :vocab])
        calls += 1
    for position in range(prompt_length, len(tokens)):
        ids = np.array([[tokens[position]]], dtype=np.int32)
        out = executor.run("decode", {"input_ids": ids, "position": np.array([position], np.int32)}, state)
        rows.append(out["logits"].reshape(1, -1)[:, :vocab])
    return np.concatenate(rows).astype(np.float32), calls


def chunk_output(chunk: dict, outputs: dict):
    if chunk["output"] not in outputs:
        raise ExportError(f"{chunk['package']} has no output {chunk['output']!r} (it gives "
                          f"{', '.join(outputs)}); export.json and the packages do not match: re-export")
    return outputs[chunk["output"]]


class ChunkChain:
    """The packages of an export run as one model, as an app runs them: every call goes through
    each chunk in order (same function, same position, its own state), hidden states passed on."""

    def __init__(self, executors: list, chunks: list[dict]):
        self.executors, self.chunks = executors, chunks

    def new_state(self):
        return [executor.new_state() for executor in self.executors]

    def run(self, function: str, inputs: dict, state: list) -> dict:
        value = inputs["input_ids"]
        for executor, chunk, chunk_state in zip(self.executors, self.chunks, state):
            outputs = executor.run(function, {chunk["input"]: value, "position": inputs["position"]}, chunk_state)
            value = chunk_output(chunk, outputs)
        return {"logits": value}


class RecordedChunk:
    """One chunk run over every call of a drive on its own, its inputs the previous chunk's recorded
    outputs: verifying chunk by chunk keeps one chunk's program in memory at a time, and gives what
    running the chunks in turn for each call gives (the calls do not depend on the package's outputs)."""

    def __init__(self, executor, chunk: dict, inputs: list | None):
        self.executor, self.chunk, self.inputs, self.outputs = executor, chunk, inputs, []

    def new_state(self):
        return self.executor.new_state()

    def run(self, function: str, inputs: dict, state) -> dict:
        value = inputs["input_ids"] if self.inputs is None else self.inputs[len(self.outputs)]
        outputs = self.executor.run(function, {self.chunk["input"]: value, "position": inputs["position"]}, state)
        self.outputs.append(chunk_output(self.chunk, outputs))
        return {"logits": self.outputs[-1]}


def run_chunk_by_chunk(packages: list, manifest: dict, tokens: list[int], prompt_length: int,
                       keep_large_float16: bool = False):
    """package_run of a (possibly split) export with the float16 executor, one chunk at a time."""
    from exporter.verify.check import manifest_chunks
    from exporter.verify.executor import ProgramExecutor

    recorded = None
    for package, chunk in zip(packages, manifest_chunks(manifest)):
        stage = RecordedChunk(ProgramExecutor(package, keep_large_float16), chunk, recorded)
        result = package_run(stage, manifest, tokens, prompt_length)
        recorded = stage.outputs
        del stage  # its expanded weights go before the next chunk's load
    return result


class CoreMLExecutor:
    """One package through the real Core ML runtime (macOS only)."""

    def __init__(self, package_path):
        import coremltools as ct

        self.models = {name: ct.models.MLModel(str(package_path), function_name=name) for name in ("prefill", "decode")}

    def new_state(self):
        return self.models["prefill"].make_state()

    def run(self, function, inputs, state):
        return self.models[function].predict(inputs, state=state)


def coreml_runtime_run(packages: list, manifest: dict, tokens: list[int], prompt_length: int) -> np.ndarray | None:
    """The real Core ML runtime, where this OS has it (macOS); None elsewhere."""
    if platform.system() != "Darwin":
        return None
    from exporter.verify.check import manifest_chunks

    chain = ChunkChain([CoreMLExecutor(p) for p in packages], manifest_chunks(manifest))
    logits, _ = package_run(chain, manifest, tokens, prompt_length)
    return logits


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
           dequantized_model: OpenELM | None = None, judge_total: bool = True) -> ParityReport:
    started = time.perf_counter()
    check_same_model(model, manifest)
    room = manifest["context_length"] - len(prompt)
    if room < 0:
        raise ExportError(f"the prompt has {len(prompt)} tokens but the package's context is "
                          f"{manifest['context_length']}; use a shorter prompt")
    steps = min(steps, room)
    tokens, reference_logits = reference_run(model, prompt, steps)
    big = hasattr(model, "weight_plan")  # a streamed reference: the model is too big to hold in float32 twice
    package_logits, calls = run_chunk_by_chunk(packages, manifest, tokens, len(prompt), keep_large_float16=big)
    quantization = manifest.get("quantization", {})
    recipe = quantization.get("recipe", "none")
    custom_map = quantization.get("quant_map") not in (None, MIXED_DEFAULT_MAP)
    report = ParityReport(
        recipe=recipe,
        prompt_tokens=len(prompt),
        decode_steps=steps,
        prefill_calls=calls,
        reference=compare(reference_logits, package_logits, len(prompt)),
        thresholds=DEFAULT_TOTAL if custom_map else TOTAL_THRESHOLDS.get(recipe, DEFAULT_TOTAL),
        judge_total=judge_total or dequantized_model is None,
        continuation=tokens[len(prompt):],
    )
    if callable(dequantized_model) and not isinstance(dequantized_model, torch.nn.Module):
        dequantized_model = dequantized_model()  # built only now: its programs need not sit beside the executor's
    if dequantized_model is not None:
        report.dequantized_reference = compare(logits_for(dequantized_model, tokens), package_logits,
                                               len(prompt))
    report.activation_range = measure(model, tokens).to_dict()
    coreml = coreml_runtime_run(packages, manifest, tokens, len(prompt))
    if coreml is not None:
        report.coreml_runtime = asdict(compare(reference_logits, coreml, len(prompt)))
    report.seconds = time.perf_counter() - started
    return report
