"""The executor on real exported packages, driven like an app, against the float32 reference model.

A small seeded checkpoint is exported (float16 and int4), then: prefill over a prompt longer than
one chunk (last chunk padded), 16 greedy decode steps, the KV cache kept in the executor's states.

Tolerance: the package stores every activation in float16 (relative step 2^-11 ≈ 4.9e-4) and its
weights are float16-rounded, so logits carry a few float16 roundings per layer. Measured on this
4-layer model: max |package - reference| = 1.70e-3 (float16 package vs float32 checkpoint) and
1.79e-3 (int4 package vs a reference holding its de-quantized weights) on logits of magnitude
≈ 1.5, i.e. about 1e-3 relative. The bound is 1e-2 (≈ 6x the measurement, ≈ 20 float16 steps
at this magnitude); a wrong position or cache slot moves these logits by about 1e-1 or more.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from exporter.model.load import load_checkpoint, random_state_dict, save_checkpoint
from exporter.model.openelm import OpenELM
from exporter.pipeline import ExportOptions, export
from tests.helpers import small_config

pytest.importorskip("coremltools")

from exporter.coreml.package import load_program  # noqa: E402
from exporter.verify.executor import ProgramExecutor  # noqa: E402

pytestmark = pytest.mark.e2e  # every test here runs a whole export

PREFILL_LENGTH = 8
CONTEXT_LENGTH = 64
PROMPT_LENGTH = 21  # three prefill calls, the last one padded (5 real tokens of 8)
DECODE_STEPS = 16
LOGIT_TOLERANCE = 1e-2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = small_config()
    folder = tmp_path_factory.mktemp("executor_ckpt")
    save_checkpoint(folder, config, random_state_dict(config, seed=0))
    return folder


@pytest.fixture(scope="module")
def packages(checkpoint, tmp_path_factory):
    """{quant: path of the .mlpackage}, exported without the pipeline's own verification."""
    out = tmp_path_factory.mktemp("executor_exports")
    paths = {}
    for quant in ("none", "int4"):
        options = ExportOptions(
            model_dir=checkpoint, tokenizer=None, quant=quant, context_length=CONTEXT_LENGTH, draft_tokens=0,
            prefill_length=PREFILL_LENGTH, output=out / quant, verify=False, target="gpu",  # driven by hand here
        )
        result = export(options)
        paths[quant] = result.folder / result.manifest["package"]
    return paths


def drive(executor: ProgramExecutor, prompt: list[int], steps: int, vocab: int):
    """What an app does: prefill in chunks (last padded), then greedy decode one token at a time.

    Returns the logits row of every prompt token and of every decode call, and the greedy tokens.
    """
    state = executor.new_state()
    rows = []
    for start in range(0, len(prompt), PREFILL_LENGTH):
        chunk = prompt[start : start + PREFILL_LENGTH]
        ids = np.zeros((1, PREFILL_LENGTH), np.int32)
        ids[0, : len(chunk)] = chunk
        logits = executor.run("prefill", {"input_ids": ids, "position": np.array([start], np.int32)}, state)["logits"]
        rows.append(logits.reshape(PREFILL_LENGTH, -1)[: len(chunk), :vocab])
    generated = [int(rows[-1][-1].argmax())]
    for step in range(steps):
        position = len(prompt) + step
        ids = np.array([[generated[-1]]], np.int32)
        logits = executor.run("decode", {"input_ids": ids, "position": np.array([position], np.int32)}, state)["logits"]
        rows.append(logits.reshape(1, -1)[:, :vocab])
        generated.append(int(rows[-1][-1].argmax()))
    return np.concatenate(rows).astype(np.float32), generated


def reference_run(model: OpenELM, prompt: list[int], steps: int):
    """float32 greedy generation, and the logits at every position it fed (one full forward pass)."""
    with torch.no_grad():
        tokens = model.generate(torch.tensor([prompt]), max_new_tokens=steps + 1)[0].tolist()
        logits = model(torch.tensor([tokens[:-1]]))[0].numpy()
    return logits, tokens[len(prompt) :]


def top2_margin(logits: np.ndarray) -> np.ndarray:
    top = np.sort(logits, axis=-1)[:, -2:]
    return top[:, 1] - top[:, 0]


def check_against_reference(package, reference: OpenELM):
    vocab = reference.config.vocab_size
    prompt = np.random.default_rng(1).integers(0, vocab, PROMPT_LENGTH).tolist()
    executor = ProgramExecutor(package)
    started = time.perf_counter()
    logits, generated = drive(executor, prompt, DECODE_STEPS, vocab)
    seconds = time.perf_counter() - started
    want_logits, want_generated = reference_run(reference, prompt, DECODE_STEPS)

    assert logits.shape == want_logits.shape == (PROMPT_LENGTH + DECODE_STEPS, vocab)
    error = np.abs(logits - want_logits).max()
    assert error <= LOGIT_TOLERANCE, f"max |logit error| {error:.2e} > {LOGIT_TOLERANCE}"
    # Greedy tokens: every step of this prompt has a clear winner (margin well above the
    # tolerance), so float16 rounding cannot legitimately flip one; agreement must be total.
    decided = top2_margin(want_logits) > 2 * LOGIT_TOLERANCE
    assert decided[PROMPT_LENGTH - 1 :].all(), "test prompt has a near-tie on the greedy path; pick another seed"
    assert generated == want_generated
    np.testing.assert_array_equal(logits[decided].argmax(-1), want_logits[decided].argmax(-1))
    assert executor.stats.calls == {"prefill": 3, "decode": DECODE_STEPS}
    print(f"{package.name}: max |logit error| {error:.2e}, {seconds:.2f}s for 19 calls; {executor.stats.summary()}")
    return executor, seconds


def test_float16_package_matches_float32_reference(packages, checkpoint):
    reference = load_checkpoint(checkpoint).eval()
    _, seconds = check_against_reference(packages["none"], reference)
    assert seconds < 10, f"19 calls of a 4-layer model took {seconds:.1f}s"


def dequantized_reference(package, model: OpenELM) -> OpenELM:
    """`model` with each weight matrix replaced by the package's copy as coremltools expands it.

    Matched by shape and nearest values (no reliance on op names): int4 per-block rounding moves
    a weight by at most half a quantization step, far less than two different matrices differ.
    """
    ops = _compressed_ops(package, "decode")
    expanded = [np.asarray(op.materialized_val_inference(), np.float32) for op in ops]
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    for name, weight in state.items():
        if weight.ndim != 2:
            continue  # norm weights stay uncompressed
        candidates = [e for e in expanded if e.shape == tuple(weight.shape)]
        assert candidates, f"no compressed copy of {name} in the package"
        errors = [np.abs(e - weight.numpy()).max() for e in candidates]
        best = int(np.argmin(errors))
        assert errors[best] <= weight.abs().max().item() / 7, f"{name}: nearest package weight is off by {errors[best]}"
        state[name] = torch.from_numpy(candidates[best])
    copy = OpenELM(model.config)
    copy.load_state_dict(state)
    return copy.eval()


def test_int4_package_matches_reference_with_its_dequantized_weights(packages, checkpoint):
    model = load_checkpoint(checkpoint).eval()
    reference = dequantized_reference(packages["int4"], model)
    executor, _ = check_against_reference(packages["int4"], reference)
    # prefill and decode carry the same compressed weights: each is expanded once, not per function
    assert 0 < executor.stats.expanded_weights == len(_compressed_ops(packages["int4"], "decode"))


def test_state_carries_the_cache_between_calls(packages):
    """Decoding from a fresh state differs from decoding after the prefill: the cache is really used."""
    executor = ProgramExecutor(packages["none"])
    ids = np.arange(1, PREFILL_LENGTH + 1, dtype=np.int32)[None]
    state = executor.new_state()
    executor.run("prefill", {"input_ids": ids, "position": np.array([0], np.int32)}, state)
    assert all(np.abs(cache).max() > 0 for cache in state.values())
    step = {"input_ids": np.array([[7]], np.int32), "position": np.array([PREFILL_LENGTH], np.int32)}
    after_prefill = executor.run("decode", step, state)["logits"]
    from_scratch = executor.run("decode", step, executor.new_state())["logits"]
    assert np.abs(after_prefill.astype(np.float32) - from_scratch).max() > 0.01


def test_tolerance_catches_a_cache_written_one_slot_off(packages, checkpoint):
    """The bound is meaningful: a decode step at the wrong position misses it by more than 10x."""
    reference = load_checkpoint(checkpoint).eval()
    prompt = np.random.default_rng(1).integers(0, reference.config.vocab_size, PREFILL_LENGTH).tolist()
    with torch.no_grad():
        want = reference(torch.tensor([prompt + [5]]))[0, -1].numpy()
    executor = ProgramExecutor(packages["none"])
    for position, within in ((PREFILL_LENGTH, True), (PREFILL_LENGTH + 1, False)):
        state = executor.new_state()
        ids = np.array([prompt], np.int32)
        executor.run("prefill", {"input_ids": ids, "position": np.array([0], np.int32)}, state)
        step = {"input_ids": np.array([[5]], np.int32), "position": np.array([position], np.int32)}
        got = executor.run("decode", step, state)["logits"].reshape(-1)[: reference.config.vocab_size]
        error = np.abs(got.astype(np.float32) - want).max()
        assert (error <= LOGIT_TOLERANCE) if within else (error > 10 * LOGIT_TOLERANCE), error


def _compressed_ops(package, function):
    operations = load_program(package).functions[function].operations
    return [op for op in operations if op.op_type.startswith("constexpr_")]
