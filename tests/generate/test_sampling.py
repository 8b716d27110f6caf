"""The sampler picks what ELMKit's Swift `Sampler` picks: the Swift tests' pinned values, and an independent
plain-Python port of the Swift code (loops, no numpy) on random rows and settings."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from exporter.generate.sampling import (
    Sampler,
    SamplingParameters,
    SplitMix64,
    apply_repetition_penalty,
    argmax,
    distribution,
    draw,
)

F32 = np.float32


def loop_sample(logits, context, parameters, rng: SplitMix64) -> int:
    """Swift's Sampler.next written out line by line in plain Python (float32 via np.float32 scalars only)."""
    scores = [F32(v) for v in logits]
    penalty = F32(parameters.repetition_penalty)
    if penalty != 1:
        for token in set(context):
            if 0 <= token < len(scores):
                scores[token] = scores[token] / penalty if scores[token] > 0 else scores[token] * penalty
    best, best_value = 0, -math.inf
    for i, value in enumerate(scores):
        if value > best_value:
            best, best_value = i, value
    if F32(parameters.temperature) <= 0:
        return best
    candidates = loop_distribution(scores, parameters) or [(best, 1.0)]
    remaining = rng.next_unit()
    for token, probability in candidates:
        remaining -= probability
        if remaining < 0:
            return token
    return candidates[-1][0]


def loop_distribution(scores, parameters):
    temperature = float(F32(parameters.temperature))
    kept = [i for i, v in enumerate(scores) if v > -math.inf]
    scaled = {i: float(scores[i]) / temperature for i in kept}
    if not kept:
        return []
    if 0 < parameters.top_k < len(kept):
        kept = sorted(sorted(kept, key=lambda i: (-scaled[i], i))[: parameters.top_k])
    top = -math.inf
    for i in kept:
        top = max(top, scaled[i])
    weights = [math.exp(scaled[i] - top) for i in kept]
    if F32(parameters.top_p) < 1:
        kept, weights = loop_nucleus(kept, weights, float(F32(parameters.top_p)))
    if F32(parameters.min_p) > 0:
        heaviest = -math.inf
        for w in weights:
            heaviest = max(heaviest, w)  # NaN never wins
        floor = float(F32(parameters.min_p)) * heaviest
        kept, weights = [t for t, w in zip(kept, weights) if w >= floor], [w for w in weights if w >= floor]
    total = 0.0
    for w in weights:
        total += w
    return [(t, w / total) for t, w in zip(kept, weights)]


def loop_nucleus(tokens, weights, mass):
    total = 0.0
    for w in weights:
        total += w
    cutoff = 1e-3
    while True:
        head = [n for n in range(len(weights)) if weights[n] >= cutoff]
        held = 0.0
        for n in head:
            held += weights[n]
        if held >= mass * total or cutoff == 0:
            break
        cutoff = 0 if cutoff < 1e-12 else cutoff / 64
    head.sort(key=lambda n: (-weights[n], tokens[n]))
    cumulative, count = 0.0, 0
    while count < len(head):
        cumulative += weights[head[count]] / total
        count += 1
        if cumulative >= mass:
            break
    chosen = sorted(head[:count])
    return [tokens[n] for n in chosen], [weights[n] for n in chosen]


def test_splitmix64_matches_the_reference_sequence():
    zero = SplitMix64(0)
    assert [zero.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert SplitMix64(42).next() == 0xBDD732262FEB6E95
    assert all(0 <= zero.next_unit() < 1 for _ in range(1000))


def test_seed_42_draws_what_swift_pins():
    scores = np.log(np.array([0.3, 0.25, 0.2, 0.15, 0.1])).astype(np.float32)
    sampler = Sampler(SamplingParameters(temperature=1, seed=42))
    assert [sampler.next(scores, []) for _ in range(12)] == [2, 0, 0, 1, 0, 3, 0, 3, 1, 2, 0, 1]


def test_greedy_is_argmax_first_on_ties_nan_never_wins_and_draws_nothing():
    sampler = Sampler(SamplingParameters())
    assert sampler.next(np.array([0.1, 2.0, 2.0, -1], np.float32), []) == 1
    assert sampler.next(np.array([-5, -3, -4], np.float32), []) == 1
    assert argmax(np.array([np.nan, 1, np.nan, 3], np.float32)) == 3
    assert argmax(np.full(3, -np.inf, np.float32)) == 0
    assert sampler.random.state == 0  # greedy took no random number


def test_one_uniform_per_sampled_token():
    sampler = Sampler(SamplingParameters(temperature=1, top_k=2, seed=5))
    expected = SplitMix64(5)
    for _ in range(7):
        sampler.next(np.array([0, 1, 2, -np.inf], np.float32), [])
        expected.next()
    assert sampler.random.state == expected.state


def test_top_k_top_p_temperature_and_min_p():
    tokens, probabilities = distribution(np.array([1, 5, 3, 4, 2, 0], np.float32), 1, 3, 1)
    assert tokens.tolist() == [1, 2, 3] and abs(probabilities.sum() - 1) < 1e-12
    assert distribution(np.array([1, 5, 5, 5], np.float32), 1, 2, 1)[0].tolist() == [1, 2]  # ties: lower id
    scores = np.log(np.array([0.5, 0.3, 0.15, 0.05])).astype(np.float32)
    for mass, kept in ((0.4, [0]), (0.7, [0, 1]), (0.9, [0, 1, 2]), (1.0, [0, 1, 2, 3])):
        assert distribution(scores, 1, 0, mass)[0].tolist() == kept
    assert abs(distribution(scores, 1, 0, 0.7)[1][0] - 0.625) < 1e-6  # renormalized: 0.5 / 0.8
    # Equal weights (exact quarters): the nucleus stops as soon as the sum reaches the mass, ties to lower ids.
    assert distribution(np.zeros(4, np.float32), 1, 0, 0.5)[0].tolist() == [0, 1]
    for temperature in (0.5, 1, 2):
        _, got = distribution(np.array([2, 1, 0], np.float32), temperature, 0, 1)
        weights = np.exp(np.array([2, 1, 0]) / temperature)
        assert np.allclose(got, weights / weights.sum(), rtol=1e-6)
    # Weights relative to the largest: 1, 0.6, 0.3, 0.1; min-p keeps those at or above min_p.
    assert distribution(scores, 1, 0, 1, min_p=0.35)[0].tolist() == [0, 1]
    assert distribution(scores, 1, 0, 1, min_p=0.2)[0].tolist() == [0, 1, 2]
    assert distribution(scores, 1, 0, 1, min_p=0.05)[0].tolist() == [0, 1, 2, 3]
    assert distribution(scores, 1, 0, 0.7, min_p=0.9)[0].tolist() == [0]  # after top-p


def test_the_draw_subtracts_one_probability_at_a_time():
    tokens, probabilities = np.array([3, 7, 9]), np.array([0.1550737846596663, 0.3649158741300643, 0.48])
    uniform = 0.5199896587897306  # == p0 + p1 rounded, yet (u - p0) - p1 < 0: the walk stops at 7
    assert draw(tokens, probabilities, uniform) == 7
    assert draw(tokens, probabilities, 0.0) == 3 and draw(tokens, probabilities, 0.99999) == 9
    assert draw(tokens, np.array([0.3, 0.3, 0.3]), 0.95) == 9  # rounding left a sliver: the last token


def test_neg_inf_and_nan_are_never_drawn():
    scores = np.array([-np.inf, 0.5, np.nan, -np.inf, 0.2], np.float32)
    sampler = Sampler(SamplingParameters(temperature=3, seed=1))
    assert {sampler.next(scores, []) for _ in range(300)} == {1, 4}
    only = Sampler(SamplingParameters(temperature=1, seed=2))
    assert only.next(np.array([-np.inf, np.nan, -np.inf], np.float32), []) == 0  # nothing drawable: argmax


def test_repetition_penalty_divides_positive_and_multiplies_negative_once():
    got = apply_repetition_penalty(np.array([2, -2, 1, 3], np.float32), [0, 1, 1, 1, 99, -1], 2)
    assert got.tolist() == [1, -4, 1, 3]
    greedy = Sampler(SamplingParameters(repetition_penalty=2))
    assert greedy.next(np.array([2, 1.5], np.float32), [0]) == 1
    assert greedy.next(np.array([2, 1.5], np.float32), []) == 0
    assert apply_repetition_penalty(np.array([1.3], np.float32), [0], 1.2)[0] == F32(1.3) / F32(1.2)  # float32


@pytest.mark.parametrize("parameters, word", [
    (SamplingParameters(temperature=-1), "temperature"), (SamplingParameters(temperature=float("nan")), "temperature"),
    (SamplingParameters(top_k=-1), "top-k"), (SamplingParameters(top_p=0), "top-p"),
    (SamplingParameters(top_p=1.5), "top-p"), (SamplingParameters(min_p=-0.1), "min-p"),
    (SamplingParameters(min_p=1.5), "min-p"), (SamplingParameters(repetition_penalty=0), "repetition"),
    (SamplingParameters(seed=-1), "seed"),
])
def test_invalid_parameters_are_reported(parameters, word):
    assert word in parameters.problem()


def test_usable_parameters_have_no_problem():
    assert SamplingParameters(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, repetition_penalty=1.2).problem() is None


def random_parameters(rng: random.Random) -> SamplingParameters:
    return SamplingParameters(
        temperature=rng.choice([0, 0.05, 0.3, 0.7, 1, 1.5, 3]), top_k=rng.choice([0, 0, 1, 3, 20, 1000]),
        top_p=rng.choice([1, 1, 0.05, 0.5, 0.9, 0.99]), min_p=rng.choice([0, 0, 0.01, 0.1, 0.5, 1]),
        repetition_penalty=rng.choice([1, 1.2, 0.8, 2]), seed=rng.randrange(2**64))


def random_row(rng: np.random.Generator, vocab: int) -> np.ndarray:
    style = rng.integers(5)
    row = rng.standard_normal(vocab) * rng.choice([0.1, 2, 8])
    if style == 1:
        row = np.round(row)  # ties
    elif style == 2:
        row[rng.random(vocab) < 0.5] = -np.inf
    elif style == 3:
        row = row * 0.05 - 9
        row[rng.integers(vocab)] = 0  # a long tail: top-p's cutoff loop goes round
    elif style == 4:
        row[rng.random(vocab) < 0.1] = np.nan
    return row.astype(np.float32)


def test_numpy_sampler_equals_the_plain_loop_port():
    settings, rows = random.Random(0), np.random.default_rng(0)
    for _ in range(150):
        parameters = random_parameters(settings)
        vocab = int(rows.integers(2, 300))
        context = [int(t) for t in rows.integers(0, vocab, 6)]
        fast, slow = Sampler(parameters), SplitMix64(parameters.seed)
        fast_context, slow_context = list(context), list(context)
        for _ in range(8):
            row = random_row(rows, vocab)
            got, want = fast.next(row, fast_context), loop_sample(row, slow_context, parameters, slow)
            assert got == want, parameters
            fast_context.append(got)
            slow_context.append(want)
        assert fast.random.state == slow.state


def test_distribution_probabilities_equal_the_loop_port_bit_for_bit():
    settings, rows = random.Random(1), np.random.default_rng(1)
    for _ in range(200):
        parameters = random_parameters(settings)
        if F32(parameters.temperature) <= 0:
            continue
        row = random_row(rows, int(rows.integers(2, 200)))
        tokens, probabilities = distribution(row, parameters.temperature, parameters.top_k, parameters.top_p,
                                             parameters.min_p)
        want = loop_distribution([F32(v) for v in row], parameters) or [(argmax(row), 1.0)]
        assert list(zip(tokens.tolist(), probabilities.tolist())) == want
