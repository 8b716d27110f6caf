"""generate(): Swift's driving rules and stop order, and speculative decoding that changes nothing but speed."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pytest

from exporter.errors import ExportError, UsageError
from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter
from exporter.generate.generator import GenerationOptions, PromptCall, generate, prompt_plan
from exporter.generate.sampling import SamplingParameters


class FakeModel:
    """A deterministic causal model over its cache slots: a row depends on every token up to its position
    (mostly on the last two, so greedy text loops and prompt lookup finds matches). It refuses calls an exported
    model could not take: too many tokens, padding past the cache, or a gap before `position`."""

    def __init__(self, vocab=40, context_length=64, prefill_length=8, verify_length=5, prefill_gives_logits=True,
                 seed=0):
        self.vocab_size, self.context_length, self.prefill_length = vocab, context_length, prefill_length
        self.verify_length, self.prefill_gives_logits, self.seed = verify_length, prefill_gives_logits, seed
        rng = np.random.default_rng(seed)
        self.singles = rng.standard_normal((vocab, vocab)) * 3
        self.pairs = rng.standard_normal((vocab * vocab, vocab))
        self.slots: list[int] = []
        self.log: list[tuple[str, list[int], int]] = []

    def reset(self):
        self.slots = []
        self.log.append(("reset", [], 0))

    def prefill(self, tokens, position):
        rows = self._call("prefill", tokens, position, self.prefill_length)
        return rows if self.prefill_gives_logits else rows[:0]

    def decode(self, token, position):
        return self._call("decode", [token], position, 1)[0]

    def verify(self, tokens, position):
        assert self.verify_length >= 1, "verify called on a model without one"
        return self._call("verify", tokens, position, self.verify_length)

    def _call(self, function, tokens, position, width):
        assert 1 <= len(tokens) <= width, f"{function} of {len(tokens)} tokens (width {width})"
        assert position + width <= self.context_length, f"{function} at {position} pads past the cache"
        assert position <= len(self.slots), f"{function} at {position} leaves a gap after {len(self.slots)} tokens"
        self.log.append((function, list(tokens), position))
        self.slots = self.slots[:position] + list(tokens)
        return np.stack([self.row(self.slots[: position + i + 1]) for i in range(len(tokens))]).astype(np.float32)

    def row(self, context):
        previous = context[-2] if len(context) > 1 else 0
        noise = np.random.default_rng(zlib.crc32(np.asarray(context, np.int64).tobytes()) + self.seed)
        pair = self.pairs[previous * self.vocab_size + context[-1]]
        return self.singles[context[-1]] + pair * 0.5 + noise.standard_normal(self.vocab_size) * 0.3

    def calls(self, function):
        return [entry for entry in self.log if entry[0] == function]


PROMPT = [1, 5, 9, 5, 9, 13, 7, 5, 9, 21, 3, 8, 5, 9, 13, 2, 30, 31, 32]  # 19 tokens: three prefill chunks of 8

SETTINGS = [
    SamplingParameters(),
    SamplingParameters(repetition_penalty=1.2),
    SamplingParameters(temperature=1.0, seed=3),
    SamplingParameters(temperature=0.7, top_k=5, seed=4),
    SamplingParameters(temperature=1.0, top_p=0.9, seed=5),
    SamplingParameters(temperature=1.5, min_p=0.1, seed=6),
    SamplingParameters(temperature=0.8, top_k=20, top_p=0.95, min_p=0.05, repetition_penalty=1.2, seed=7),
]


def test_prompt_plan_is_swifts():
    def plan(n, context=256, gives=True):
        return [tuple(call) for call in prompt_plan(n, 16, context, gives)]

    assert plan(1, gives=False) == [("decode", 0, 1)]
    assert plan(16, gives=False) == [("prefill", 0, 15), ("decode", 15, 16)]
    assert plan(17, gives=False) == [("prefill", 0, 16), ("decode", 16, 17)]
    assert plan(35, gives=False) == [("prefill", 0, 16), ("prefill", 16, 32), ("prefill", 32, 34), ("decode", 34, 35)]
    assert plan(19, 20, gives=False) == [("prefill", 0, 16), ("decode", 16, 17), ("decode", 17, 18),
                                         ("decode", 18, 19)]
    assert plan(1) == [("prefill", 0, 1)]
    assert plan(35) == [("prefill", 0, 16), ("prefill", 16, 32), ("prefill", 32, 35)]
    assert plan(19, 20) == [("prefill", 0, 16), ("decode", 16, 17), ("decode", 17, 18), ("decode", 18, 19)]
    assert plan(20, 32) == [("prefill", 0, 16), ("prefill", 16, 20)]  # a padded chunk may end at the cache's end
    assert prompt_plan(0, 16, 256, True) == [] and PromptCall("decode", 3, 4).start == 3


def test_plain_generation_calls_the_model_as_swift_does():
    model = FakeModel()
    result = generate(model, PROMPT, GenerationOptions(max_new_tokens=6))
    assert model.log[0][0] == "reset"
    assert [(f, len(t), p) for f, t, p in model.log[1:4]] == [("prefill", 8, 0), ("prefill", 8, 8), ("prefill", 3, 16)]
    assert [(t, p) for _, t, p in model.calls("decode")] == [([token], 19 + i) for i, token in
                                                             enumerate(result.tokens[:-1])]  # the last is never fed
    assert result.stop_reason == "max tokens" and len(result.tokens) == 6
    assert result.stats.calls == {"prefill": 3, "decode": 5, "verify": 0} and result.stats.prompt_tokens == 19


def test_a_model_without_prefill_logits_gives_the_same_tokens():
    options = GenerationOptions(max_new_tokens=10, sampling=SETTINGS[-1])
    gpu = generate(FakeModel(), PROMPT, options)
    ane_model = FakeModel(prefill_gives_logits=False)
    ane = generate(ane_model, PROMPT, options)
    assert ane.tokens == gpu.tokens
    assert ane_model.calls("decode")[0] == ("decode", [PROMPT[-1]], len(PROMPT) - 1)


def test_stop_token_is_kept_and_stops():
    free = generate(FakeModel(), PROMPT, GenerationOptions(max_new_tokens=12)).tokens
    stop = free[4]
    result = generate(FakeModel(), PROMPT, GenerationOptions(max_new_tokens=12, stop_token_ids=(99, stop)))
    assert result.tokens == free[: free.index(stop) + 1] and result.stop_reason == "end of sequence"


def test_context_full_cancel_and_zero_tokens():
    full = generate(FakeModel(context_length=24), PROMPT, GenerationOptions(max_new_tokens=50))
    assert (len(PROMPT) + len(full.tokens), full.stop_reason) == (24, "context full")
    seen = []
    cancelled = generate(FakeModel(), PROMPT, GenerationOptions(max_new_tokens=50),
                         on_token=lambda token: seen.append(token) or len(seen) < 3)
    assert (cancelled.tokens, cancelled.stop_reason) == (seen, "cancelled") and len(seen) == 3
    none = generate(FakeModel(), PROMPT, GenerationOptions(max_new_tokens=0))
    assert (none.tokens, none.stop_reason) == ([], "max tokens")


def test_prompt_tokens_past_the_last_full_chunk_go_through_decode():
    model = FakeModel(context_length=22)  # a chunk at 16 would pad to 24
    result = generate(model, PROMPT, GenerationOptions(max_new_tokens=10))
    assert [(f, p) for f, _, p in model.log[3:6]] == [("decode", 16), ("decode", 17), ("decode", 18)]
    assert result.tokens == generate(FakeModel(), PROMPT, GenerationOptions(max_new_tokens=3)).tokens
    assert result.stop_reason == "context full"


def test_a_callback_refusing_the_stop_token_cancels():
    free = generate(FakeModel(), PROMPT, GenerationOptions(max_new_tokens=12)).tokens
    options = GenerationOptions(max_new_tokens=12, stop_token_ids=(free[2],))
    result = generate(FakeModel(), PROMPT, options, on_token=lambda token: token != free[2])
    assert (result.tokens, result.stop_reason) == (free[:3], "cancelled")  # as Swift: the callback comes first


def test_stop_order_max_tokens_before_context_full():
    result = generate(FakeModel(context_length=24), PROMPT, GenerationOptions(max_new_tokens=5))
    assert result.stop_reason == "max tokens"  # the 5th token both fills the context and reaches the maximum


@pytest.mark.parametrize("prompt, options, words", [
    ([], GenerationOptions(4), "no tokens"),
    (list(range(64)), GenerationOptions(4), "context holds 64"),
    (PROMPT, GenerationOptions(4, SamplingParameters(top_p=0)), "top-p"),
])
def test_bad_requests_are_usage_errors(prompt, options, words):
    with pytest.raises(UsageError, match=words):
        generate(FakeModel(), prompt, options)


def test_short_logits_are_reported():
    model = FakeModel()
    model.decode = lambda token, position: np.zeros(3, np.float32)
    with pytest.raises(ExportError, match="decode returned logits of shape"):
        generate(model, PROMPT, GenerationOptions(4))


class RandomDrafter:
    """Guesses anything, sometimes nothing, sometimes too many: speculation must never change the output."""

    name = "random"

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def draft(self, context, k):
        return [self.rng.randrange(40) for _ in range(self.rng.choice([0, 1, k, k + 2]))]


def drafters(parameters):
    penalty = parameters.repetition_penalty
    return {"lookup": PromptLookupDrafter(), "model": DraftModelDrafter(FakeModel(seed=1)),
            "same model": DraftModelDrafter(FakeModel()), "random": RandomDrafter(parameters.seed),
            "model, penalized": DraftModelDrafter(FakeModel(seed=1, prefill_length=4), repetition_penalty=1.3),
            "same model, the sampling's penalty": DraftModelDrafter(FakeModel(), repetition_penalty=penalty)}


@pytest.mark.parametrize("parameters", SETTINGS)
@pytest.mark.parametrize("context_length", [64, 40])  # 40: verify no longer fits near the end, decode takes over
def test_speculative_output_is_plain_output(parameters, context_length):
    stop = (33,) if parameters.temperature else ()  # ends one sampled run early (top-k), others run to the end
    options = GenerationOptions(max_new_tokens=30, sampling=parameters, stop_token_ids=stop)
    plain = generate(FakeModel(context_length=context_length), PROMPT, options)
    for name, drafter in drafters(parameters).items():
        model, streamed = FakeModel(context_length=context_length), []
        fast = generate(model, PROMPT, options, drafter, on_token=streamed.append)
        assert (fast.tokens, fast.stop_reason) == (plain.tokens, plain.stop_reason), name
        assert streamed == fast.tokens
        assert all(p + model.verify_length <= context_length for _, _, p in model.calls("verify"))


def test_speculative_accounting():
    options = GenerationOptions(max_new_tokens=30)
    perfect = generate(FakeModel(), PROMPT, options, DraftModelDrafter(FakeModel()))
    assert perfect.stats.draft_accepted == perfect.stats.draft_proposed == 24
    # 1 token from the prompt's logits, 5 per verify call (4 guesses accepted + 1): the 6th stops after 4.
    assert perfect.stats.calls == {"prefill": 3, "decode": 0, "verify": 6}
    lookup = generate(FakeModel(), PROMPT, options, PromptLookupDrafter())
    assert 0 < lookup.stats.draft_accepted < lookup.stats.draft_proposed
    fed = lookup.stats.calls["decode"] + lookup.stats.calls["verify"] + lookup.stats.draft_accepted
    # Every token went in once, by decode, verify or acceptance; the last one too only if accepted as it stopped.
    assert fed in (len(lookup.tokens) - 1, len(lookup.tokens))


def test_a_drafter_is_ignored_without_a_verify_function():
    model = FakeModel(verify_length=0)
    result = generate(model, PROMPT, GenerationOptions(max_new_tokens=8), PromptLookupDrafter())
    assert model.calls("verify") == [] and result.stats.calls["decode"] == 7


def test_every_call_starts_at_its_first_tokens_place_in_the_sequence():
    """After a rejection the next call starts at the first wrong slot, overwriting it: the first token of every
    call is the sequence's token at the call's position."""
    model = FakeModel()
    result = generate(model, PROMPT, GenerationOptions(max_new_tokens=25, sampling=SETTINGS[2]), RandomDrafter(0))
    sequence = PROMPT + result.tokens
    assert model.calls("verify")
    for function, tokens, position in model.log[1:]:
        assert sequence[position] == tokens[0], (function, tokens, position)
