"""Drafters for speculative decoding: cheap guesses of the next tokens, checked by the target model's verify call.

Both follow rules simple enough to be written identically in Swift (ELMKit), so a golden file recorded here
replays there call for call.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from exporter.generate.generator import LanguageModel, PromptCall, prompt_plan
from exporter.generate.sampling import apply_repetition_penalty, argmax


class PromptLookupDrafter:
    """Prompt lookup decoding (Saxena 2023): when the context's last n tokens appeared before, guess that what
    followed them then follows again. Free, and good at text that repeats the prompt (quotes, code, summaries)."""

    name = "prompt_lookup"

    def __init__(self, max_ngram: int = 3):
        if max_ngram < 1:
            raise ValueError(f"max_ngram must be at least 1, got {max_ngram}")
        self.max_ngram = max_ngram
        self.calls = 0  # draft requests
        self.proposed = 0  # tokens guessed

    def draft(self, context: list[int], k: int) -> list[int]:
        """The tokens after the most recent earlier match of the longest suffix (max_ngram down to 1 tokens)."""
        self.calls += 1
        guess = self._lookup(context, k) if k > 0 else []
        self.proposed += len(guess)
        return guess

    def _lookup(self, context: list[int], k: int) -> list[int]:
        for n in range(min(self.max_ngram, len(context) - 1), 0, -1):
            suffix = context[-n:]
            for i in range(len(context) - n - 1, -1, -1):  # most recent first
                if context[i:i + n] == suffix:
                    return list(context[i + n:i + n + k])
        return []


class DraftModelDrafter:
    """Greedy guesses from a small model with the same tokenizer, under the sampler's repetition penalty.

    It remembers which tokens its cache holds and feeds only the context after the longest common prefix: one
    token by decode; more (the prompt, or a context that changed early) all but the last through prefill in
    chunks of prefill_length at position = chunk start, as `prompt_plan` feeds a prompt without prefill logits,
    and the last through decode for its logits. Going back costs nothing, since a cache slot is simply
    overwritten (the mask is position based). Each guess is the argmax (the first index on ties) after the CTRL
    penalty over the context and the guesses before it, so the guesses follow what a greedy target picks under
    the same penalty; 1.0 is plain argmax.
    """

    name = "draft_model"

    def __init__(self, model: LanguageModel, repetition_penalty: float = 1.0):
        self.model = model
        self.repetition_penalty = repetition_penalty
        self.cached: list[int] = []  # the token at each cache slot the model has been fed
        self.calls = 0
        self.proposed = 0
        self.model_calls = Counter({"prefill": 0, "decode": 0})  # calls of the draft model, by kind

    def reset(self) -> None:
        self.model.reset()
        self.cached = []

    def draft(self, context: list[int], k: int) -> list[int]:
        """Up to k greedy tokens after `context`; fewer where the draft model's context ends."""
        self.calls += 1
        guess = self._greedy(list(context), k) if k > 0 and 0 < len(context) <= self.model.context_length else []
        self.proposed += len(guess)
        return guess

    def _greedy(self, context: list[int], k: int) -> list[int]:
        # Feed at least the last token: its logits give the first guess.
        logits = self._catch_up(context, min(_common_prefix(self.cached, context), len(context) - 1))
        guess = [self._pick(logits, context)]
        while len(guess) < k and len(self.cached) < self.model.context_length:
            guess.append(self._pick(self._decode(guess[-1], len(self.cached)), context + guess))
        return guess

    def _pick(self, logits: np.ndarray, seen: list[int]) -> int:
        return argmax(apply_repetition_penalty(logits, seen, self.repetition_penalty))

    def _catch_up(self, context: list[int], start: int) -> np.ndarray:
        """Feeds context[start:] at its positions; the logits after its last token."""
        del self.cached[start:]
        for call in catch_up_plan(start, len(context), self.model.prefill_length, self.model.context_length):
            if call.function == "decode":
                logits = self._decode(context[call.start], call.start)
                continue
            self.model.prefill(context[call.start:call.stop], call.start)  # its rows (if any) are not needed
            self.model_calls["prefill"] += 1
            self.cached += context[call.start:call.stop]
        return logits

    def _decode(self, token: int, position: int) -> np.ndarray:
        self.model_calls["decode"] += 1
        self.cached.append(token)
        return np.asarray(self.model.decode(token, position), dtype=np.float32)[: self.model.vocab_size]


def catch_up_plan(start: int, stop: int, prefill_length: int, context_length: int) -> list[PromptCall]:
    """The calls that feed tokens start..stop-1 into a cache holding the ones before: `prompt_plan` without
    prefill logits, shifted to `start` (all but the last token by prefill in chunks at position = chunk start,
    the last by decode; a single token is one decode). Swift's `DraftModelDrafter.catchUpPlan`."""
    if prefill_length <= 0:
        return [PromptCall("decode", p, p + 1) for p in range(start, stop)]
    plan = prompt_plan(stop - start, prefill_length, context_length - start, prefill_gives_logits=False)
    return [PromptCall(call.function, start + call.start, start + call.stop) for call in plan]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
