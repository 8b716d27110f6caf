"""Picks the next token from a logits row, exactly as ELMKit's `Sampler` (Swift) does.

The order is Hugging Face `generate`'s: repetition penalty, then greedy argmax, or temperature ->
top-k -> top-p -> min-p -> one draw from a seeded SplitMix64. The same seed gives the same tokens
in Python and Swift, so every step keeps Swift's arithmetic: float32 where Swift uses Float,
float64 sums taken one element after another in id order (np.cumsum; np.sum would pair them up),
and the C library's exp (math.exp) where Swift calls Foundation's exp: numpy's vectorized exp
differs from it in the last bit for a few percent of inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 (Steele, Lea & Flood 2014): the same numbers on every platform for a seed."""

    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def next_unit(self) -> float:
        """A uniform float in [0, 1) from the top 53 bits."""
        return (self.next() >> 11) * 2.0**-53


@dataclass(frozen=True)
class SamplingParameters:
    """How the next token is chosen. Swift keeps the float settings as Float, so they are used as float32."""

    temperature: float = 0.0  # 0 (or less): greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    min_p: float = 0.0  # 0: off; else drop tokens less likely than min_p times the most likely one
    repetition_penalty: float = 1.0  # 1: off; OpenELM's model card uses 1.2
    seed: int = 0

    @property
    def is_greedy(self) -> bool:
        return np.float32(self.temperature) <= 0

    def problem(self) -> str | None:
        """A message for the first out-of-range value, or None when all are usable (Swift's wording)."""
        temperature, top_p, min_p, penalty = (np.float32(v) for v in (self.temperature, self.top_p, self.min_p,
                                                                      self.repetition_penalty))
        if not np.isfinite(temperature) or temperature < 0:
            return f"temperature must be 0 (greedy) or positive, got {self.temperature}"
        if self.top_k < 0:
            return f"top-k must be 0 (off) or positive, got {self.top_k}"
        if not (0 < top_p <= 1):
            return f"top-p must be in (0, 1], got {self.top_p}"
        if not (0 <= min_p <= 1):
            return f"min-p must be in [0, 1], got {self.min_p}"
        if not (np.isfinite(penalty) and penalty > 0):
            return f"repetition penalty must be positive (1 = off), got {self.repetition_penalty}"
        if not 0 <= self.seed <= MASK64:
            return f"seed must be in [0, 2^64), got {self.seed}"
        return None


class Sampler:
    """`next(logits, context)` picks one token; a sampled (not greedy) token takes one uniform from the seed."""

    def __init__(self, parameters: SamplingParameters):
        self.parameters = parameters
        self.random = SplitMix64(parameters.seed)

    def next(self, logits: np.ndarray, context: list[int]) -> int:
        p = self.parameters
        scores = apply_repetition_penalty(logits, context, p.repetition_penalty)
        if p.is_greedy:
            return argmax(scores)
        tokens, probabilities = distribution(scores, p.temperature, p.top_k, p.top_p, p.min_p)
        return draw(tokens, probabilities, self.random.next_unit())


def draw(tokens: np.ndarray, probabilities: np.ndarray, uniform: float) -> int:
    """Walks the tokens in id order taking each one's probability off `uniform` (r_j = r_(j-1) - p_j, which a
    cumulative sum of [u, -p_0, -p_1, ...] computes bit for bit; u - cumsum(p) would round differently): the
    first token that takes it below 0."""
    remaining = np.cumsum(np.concatenate(([uniform], -np.asarray(probabilities))))[1:]
    below = np.flatnonzero(remaining < 0)
    return int(tokens[below[0]] if below.size else tokens[-1])  # rounding may leave a sliver: the last one


def apply_repetition_penalty(logits: np.ndarray, context: list[int], penalty: float) -> np.ndarray:
    """CTRL (Keskar et al. 2019), in float32: a seen token's positive logit divided by the penalty, a negative one
    multiplied, once however often it appears. Returns a copy; ids outside the vocabulary are ignored."""
    scores = np.array(logits, dtype=np.float32)
    penalty = np.float32(penalty)
    if penalty == 1:
        return scores
    seen = np.unique(np.asarray([t for t in context if 0 <= t < scores.size], dtype=np.int64))
    values = scores[seen]
    scores[seen] = np.where(values > 0, values / penalty, values * penalty)
    return scores


def argmax(scores: np.ndarray) -> int:
    """Index of the largest score, the first on ties (as torch.argmax); NaN never wins; 0 when nothing beats -inf."""
    scores = np.asarray(scores)
    return int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))


def distribution(scores: np.ndarray, temperature: float, top_k: int, top_p: float,
                 min_p: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(tokens in id order, their probabilities) that a draw picks from: Swift's `Sampler.distribution`."""
    scores = np.asarray(scores, dtype=np.float32)
    kept = np.flatnonzero(scores > -np.inf)  # NaN and -inf are never drawn
    if kept.size == 0:
        return np.array([argmax(scores)]), np.array([1.0])
    scaled = scores[kept].astype(np.float64) / np.float64(np.float32(temperature))
    if 0 < top_k < kept.size:
        best = np.sort(np.lexsort((kept, -scaled))[:top_k])  # ties: the lower id
        kept, scaled = kept[best], scaled[best]
    highest = scaled.max()
    weights = np.array([math.exp(s - highest) for s in scaled.tolist()])
    if np.float32(top_p) < 1:
        chosen = nucleus(weights, float(np.float32(top_p)))
        kept, weights = kept[chosen], weights[chosen]
    if np.float32(min_p) > 0:
        floor = float(np.float32(min_p)) * weights[~np.isnan(weights)].max(initial=-np.inf)
        chosen = np.flatnonzero(weights >= floor)
        kept, weights = kept[chosen], weights[chosen]
    if kept.size == 0:  # only when +inf logits made every weight NaN: Swift then falls back to argmax
        return np.array([argmax(scores)]), np.array([1.0])
    return kept, weights / np.cumsum(weights)[-1]


def nucleus(weights: np.ndarray, mass: float) -> np.ndarray:
    """Positions (ascending) of the smallest set of heaviest weights holding `mass` of the total, ties to the
    lower position. As Swift, only weights above a falling cutoff are sorted: the nucleus lies among them once
    they hold enough mass."""
    total = np.cumsum(weights)[-1]
    cutoff = 1e-3
    while True:
        head = np.flatnonzero(weights >= cutoff)
        if (head.size and np.cumsum(weights[head])[-1] >= mass * total) or cutoff == 0:
            break
        cutoff = 0.0 if cutoff < 1e-12 else cutoff / 64
    head = head[np.lexsort((head, -weights[head]))]  # heaviest first, ties: lower position
    cumulative = np.cumsum(weights[head] / total)
    reached = np.flatnonzero(cumulative >= mass)
    count = reached[0] + 1 if reached.size else head.size
    return np.sort(head[:count])
