"""The drafters' rules, which Swift repeats: prompt lookup's match order, the draft model's cache bookkeeping."""

from __future__ import annotations

import numpy as np

from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter
from tests.generate.test_generator import FakeModel


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


class CountingModel(FakeModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.decoded = []  # (token, position)

    def decode(self, token, position):
        self.decoded.append((token, position))
        return super().decode(token, position)


def greedy_continuation(context, k, seed=0):
    """What the draft model's rows say, computed from scratch: argmax after each extension."""
    model, out = FakeModel(seed=seed), []
    for _ in range(k):
        row = model.row(context + out)
        out.append(int(np.argmax(row)))
    return out


def test_draft_model_guesses_greedily_and_feeds_only_what_changed():
    model = CountingModel(seed=2)
    drafter = DraftModelDrafter(model)
    context = [3, 4, 5, 6]
    first = drafter.draft(context, 4)
    assert first == greedy_continuation(context, 4, seed=2)
    assert model.decoded == [(3, 0), (4, 1), (5, 2), (6, 3)] + [(t, 4 + i) for i, t in enumerate(first[:3])]
    # Two guesses accepted, then another token: only the new token is fed, at its place.
    model.decoded.clear()
    context = context + first[:2] + [11]
    second = drafter.draft(context, 3)
    assert second == greedy_continuation(context, 3, seed=2)
    assert model.decoded[0] == (11, 6) and len(model.decoded) == 3
    # A context that diverges early is fed again from the first difference.
    model.decoded.clear()
    assert drafter.draft([3, 9], 1) == greedy_continuation([3, 9], 1, seed=2)
    assert model.decoded == [(9, 1)]
    # The same context again: the last token is fed again for its logits, nothing else.
    model.decoded.clear()
    drafter.draft([3, 9], 1)
    assert model.decoded == [(9, 1)]
    assert drafter.calls == 4 and drafter.proposed == 4 + 3 + 1 + 1


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
