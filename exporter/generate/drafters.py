"""Drafters for speculative decoding: cheap guesses of the next tokens, checked by the target model's verify call.

Both follow rules simple enough to be written identically in Swift (ELMKit), so a golden file recorded here
replays there call for call.
"""

from __future__ import annotations

import numpy as np

from exporter.generate.generator import LanguageModel
from exporter.generate.sampling import argmax


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
    """Greedy guesses from a small model with the same tokenizer.

    It remembers which tokens its cache holds and feeds only the context after the longest common prefix, one
    decode call per token: going back costs nothing, since a cache slot is simply overwritten (the mask is
    position based). Argmax without repetition penalty, the first index on ties.
    """

    name = "draft_model"

    def __init__(self, model: LanguageModel):
        self.model = model
        self.cached: list[int] = []  # the token at each cache slot the model has been fed
        self.calls = 0
        self.proposed = 0
        self.model_calls = 0  # decode calls of the draft model

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
        start = min(_common_prefix(self.cached, context), len(context) - 1)
        del self.cached[start:]
        for position in range(start, len(context)):
            logits = self._feed(context[position], position)
        guess = [argmax(logits)]
        while len(guess) < k and len(self.cached) < self.model.context_length:
            guess.append(argmax(self._feed(guess[-1], len(self.cached))))
        return guess

    def _feed(self, token: int, position: int) -> np.ndarray:
        self.model_calls += 1
        self.cached.append(token)
        return np.asarray(self.model.decode(token, position), dtype=np.float32)[: self.model.vocab_size]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
