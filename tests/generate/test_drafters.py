"""The drafters' rules, which Swift repeats: prompt lookup's match order, the draft model's cache bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter
from exporter.generate.generator import GenerationOptions, generate
from exporter.generate.sampling import Sampler, SamplingParameters
from tests.generate.test_generator import PROMPT, FakeModel


def test_prompt_lookup_takes_the_longest_suffix_and_its_most_recent_match():
    drafter = PromptLookupDrafter(max_ngram=3)
    # Suffix [1, 2, 3] occurs at 0 (followed by 9) and at 5 (followed by 7): the most recent wins.
    assert drafter.draft([1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 4, 1, 2, 3], 3) == [7, 8, 4]
    # No 3-gram match: [2, 3] matches at 1, followed by 5, 6 (and the draft is cut to k).
    assert drafter.draft([4, 2, 3, 5, 6, 0, 2, 3], 2) == [5, 6]
    # Only the last token matches; a match right before the end gives fewer than k guesses.
    assert drafter.draft([8, 5, 1, 5], 4) == [1, 5]
    assert drafter.draft([1, 2, 3], 4) == [] and drafter.draft([7], 4) == [] and drafter.draft([7, 7], 4) == [7]
    assert drafter.calls == 6 and drafter.proposed == 3 + 2 + 2 + 1


def test_prompt_lookup_longer_ngram_beats_a_more_recent_shorter_one():
    context = [5, 6, 7, 1, 0, 6, 7, 2, 5, 6, 7]  # [5, 6, 7] at 0 -> 1; [6, 7] alone more recently at 5 -> 2
    assert PromptLookupDrafter(max_ngram=3).draft(context, 1) == [1]
    assert PromptLookupDrafter(max_ngram=2).draft(context, 1) == [2]
    assert PromptLookupDrafter(max_ngram=1).draft(context, 1) == [2]


def greedy_continuation(context, k, seed=0):
    """What the draft model's rows say, computed from scratch: argmax after each extension."""
    model, out = FakeModel(seed=seed), []
    for _ in range(k):
        row = model.row(context + out)
        out.append(int(np.argmax(row)))
    return out


def fed(model):
    """The model's calls since its log was last cleared, as (function, tokens, position)."""
    return [entry for entry in model.log if entry[0] != "reset"]


def test_draft_model_guesses_greedily_and_feeds_only_what_changed():
    model = FakeModel(seed=2)
    drafter = DraftModelDrafter(model)
    context = [3, 4, 5, 6]
    first = drafter.draft(context, 4)
    assert first == greedy_continuation(context, 4, seed=2)
    # The prompt: all but its last token by one prefill, the last by decode; then the guesses but the last.
    assert fed(model) == [("prefill", [3, 4, 5], 0), ("decode", [6], 3)] + [
        ("decode", [t], 4 + i) for i, t in enumerate(first[:3])]
    # Two guesses accepted, then another token: only the new token is fed, at its place.
    model.log.clear()
    context = context + first[:2] + [11]
    second = drafter.draft(context, 3)
    assert second == greedy_continuation(context, 3, seed=2)
    assert fed(model)[0] == ("decode", [11], 6) and len(fed(model)) == 3
    # A context that diverges early is fed again from the first difference.
    model.log.clear()
    assert drafter.draft([3, 9], 1) == greedy_continuation([3, 9], 1, seed=2)
    assert fed(model) == [("decode", [9], 1)]
    # The same context again: the last token is fed again for its logits, nothing else.
    model.log.clear()
    drafter.draft([3, 9], 1)
    assert fed(model) == [("decode", [9], 1)]
    assert drafter.calls == 4 and drafter.proposed == 4 + 3 + 1 + 1
    assert drafter.model_calls == {"prefill": 1, "decode": 4 + 3 + 1 + 1}


@pytest.mark.parametrize("gives_logits", [True, False])  # False: the ane graph, whose prefill gives no logits
@pytest.mark.parametrize("start, count", [(0, 2), (0, 9), (0, 10), (0, 25), (5, 2), (5, 17), (13, 30)])
def test_catch_up_prefills_all_but_the_last_token_and_drafts_as_one_at_a_time(gives_logits, start, count):
    context = [(7 * i + 3) % 40 for i in range(start + count)]
    fast_model = FakeModel(seed=4, prefill_gives_logits=gives_logits)
    fast = DraftModelDrafter(fast_model)
    if start:
        fast.draft(context[:start] + [39], 2)  # a cache that agrees with the context only up to `start`
    fast_model.log.clear()
    fast.model_calls.clear()
    guess = fast.draft(context, 4)
    slow = DraftModelDrafter(FakeModel(seed=4, prefill_gives_logits=gives_logits))
    for stop in range(1, len(context)):
        slow.draft(context[:stop], 1)  # one new token per call: decode only
    assert slow.model_calls["prefill"] == 0
    assert guess == slow.draft(context, 4) == greedy_continuation(context, 4, seed=4)
    prefills = math.ceil((count - 1) / fast_model.prefill_length)
    assert fast.model_calls == {"prefill": prefills, "decode": 1 + 3}
    calls = fed(fast_model)
    assert [(tokens, position) for _, tokens, position in calls[:prefills]] == [
        (context[p:min(p + 8, start + count - 1)], p) for p in range(start, start + count - 1, 8)]
    assert calls[prefills] == ("decode", [context[-1]], len(context) - 1)
    assert fast.cached == context + guess[:3]


def test_catch_up_never_pads_past_the_draft_models_cache():
    model = FakeModel(context_length=20, prefill_length=8)
    drafter = DraftModelDrafter(model)
    assert drafter.draft(list(range(20)), 3) == greedy_continuation(list(range(20)), 1)  # a full cache: one guess
    # A chunk at 16 would pad to slot 24: tokens 16-18 go through decode, as a prompt does.
    assert [(function, position) for function, _, position in fed(model)] == [
        ("prefill", 0), ("prefill", 8), ("decode", 16), ("decode", 17), ("decode", 18), ("decode", 19)]


class FixedRows(FakeModel):
    """Every row is `logits`, whatever was fed."""

    def __init__(self, logits, **kwargs):
        super().__init__(vocab=len(logits), **kwargs)
        self.logits = np.asarray(logits, np.float32)

    def decode(self, token, position):
        super().decode(token, position)
        return self.logits.copy()


def test_draft_model_drafts_the_penalized_argmax():
    logits = [-1.0, 5.0, 4.5, 4.4, -0.5, 0.0]
    # Token 1, the plain argmax, is in the context: under penalty 1.2 it drops to 4.17 and token 2 wins.
    assert DraftModelDrafter(FixedRows(logits)).draft([0, 1], 1) == [1]
    penalized = DraftModelDrafter(FixedRows(logits), repetition_penalty=1.2)
    assert penalized.draft([0, 1], 1) == [2]
    # Guesses count as context too: after 2 (now 3.75), token 3 (4.4) wins; after 3 (now 3.67), token 1 (4.17).
    assert penalized.draft([0, 1], 3) == [2, 3, 1]
    # A negative logit is multiplied: token 1's -0.5 becomes -1.0 and ties token 0, which wins as the first index;
    # then token 0 (now -2.0) loses to 1.
    assert DraftModelDrafter(FixedRows([-1.0, -0.5]), repetition_penalty=2.0).draft([1], 2) == [0, 1]
    # The same picks as the greedy sampler's, step by step.
    sampler, context = Sampler(SamplingParameters(repetition_penalty=1.2)), [0, 1]
    for _ in range(3):
        context.append(sampler.next(np.asarray(logits, np.float32), context))
    assert context[2:] == [2, 3, 1]


def test_penalty_aware_drafts_of_the_target_itself_are_all_accepted():
    options = GenerationOptions(max_new_tokens=30, sampling=SamplingParameters(repetition_penalty=1.2))
    aware = generate(FakeModel(), PROMPT, options, DraftModelDrafter(FakeModel(), repetition_penalty=1.2))
    blind = generate(FakeModel(), PROMPT, options, DraftModelDrafter(FakeModel()))
    assert aware.tokens == blind.tokens == generate(FakeModel(), PROMPT, options).tokens
    assert aware.stats.draft_accepted == aware.stats.draft_proposed
    assert blind.stats.draft_accepted < blind.stats.draft_proposed


def test_draft_model_stops_at_its_context_end():
    model = FakeModel(context_length=10)
    drafter = DraftModelDrafter(model)
    assert len(drafter.draft(list(range(8)), 4)) == 3  # guesses fed at 8 and 9, the third from slot 9's row
    assert drafter.draft(list(range(10)), 4) == [greedy_continuation(list(range(10)), 1)[0]]
    assert drafter.draft(list(range(11)), 4) == []  # the context no longer fits


def test_draft_model_argmax_takes_the_first_of_ties_and_skips_nan():
    class Flat(FakeModel):
        def decode(self, token, position):
            super().decode(token, position)
            return np.array([np.nan, 1, 3, 3, 0], np.float32)

    assert DraftModelDrafter(Flat(vocab=5)).draft([1, 2], 2) == [2, 2]
