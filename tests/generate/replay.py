"""A language model that plays back the rows of golden_speculative.json (the Python twin of what Swift replays).

A row is looked up by the tokens the cache holds up to its position (the key the recorder used); the entries
that were not recorded get the lowest recorded logit minus 10, so the recorded top token still wins. A context
that was never recorded gets a poison row whose argmax is a token no case uses: a generator that reads a row it
should not have read then emits a token the golden file does not have.
"""

from __future__ import annotations

import numpy as np


def read_logit(value) -> float:
    """A logit as written by exporter.tools.goldens: a number, or "-inf" (JSON has no infinity)."""
    return float(value)  # float("-inf") reads the string form too


def poison_token(golden: dict) -> int:
    """The smallest id that appears in no recorded context and no recorded row of either model."""
    used = set()
    for table in (golden["target_rows"], golden["draft_rows"]):
        for key, row in table.items():
            used.update(int(t) for t in key.split(","))
            used.update(int(token) for token, _ in row)
    return min(set(range(golden["vocab_size"])) - used)


class ReplayLanguageModel:
    """Answers prefill, decode and verify calls from recorded rows (see the module docstring)."""

    def __init__(self, golden: dict, rows: dict[str, list], verify_length: int):
        self.context_length = golden["context_length"]
        self.prefill_length = golden["prefill_length"]
        self.vocab_size = golden["vocab_size"]
        self.prefill_gives_logits = golden["prefill_gives_logits"]
        self.verify_length = verify_length
        self.rows = rows
        self.poison = poison_token(golden)
        self.slots: list[int] = []  # the token at each cache slot written so far (-1: never written)
        self.unknown = 0  # rows asked for that were never recorded

    @classmethod
    def target(cls, golden: dict) -> ReplayLanguageModel:
        return cls(golden, golden["target_rows"], golden["verify_length"])

    @classmethod
    def draft(cls, golden: dict) -> ReplayLanguageModel:
        return cls(golden, golden["draft_rows"], 0)

    def reset(self) -> None:
        self.slots = []

    def prefill(self, tokens: list[int], position: int) -> np.ndarray:
        return self._call(tokens, position, self.prefill_length)

    def decode(self, token: int, position: int) -> np.ndarray:
        return self._call([token], position, 1)[0]

    def verify(self, tokens: list[int], position: int) -> np.ndarray:
        return self._call(tokens, position, self.verify_length)

    def _call(self, tokens: list[int], position: int, width: int) -> np.ndarray:
        if not 1 <= len(tokens) <= width or position + width > self.context_length:
            raise ValueError(f"call of {len(tokens)} tokens at {position} breaks width {width} or the context")
        self.slots = (self.slots + [-1] * position)[:position] + [int(t) for t in tokens]
        return np.stack([self._row(",".join(map(str, self.slots[: position + i + 1]))) for i in range(len(tokens))])

    def _row(self, key: str) -> np.ndarray:
        recorded = self.rows.get(key)
        if recorded is None:
            self.unknown += 1
            row = np.zeros(self.vocab_size, dtype=np.float32)
            row[self.poison] = 1
            return row
        values = [read_logit(value) for _, value in recorded]
        row = np.full(self.vocab_size, min(values) - 10, dtype=np.float32)
        for (token, _), value in zip(recorded, values):
            row[int(token)] = value
        return row
