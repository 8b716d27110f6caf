"""The eager export graph as a LanguageModel reproduces the reference model, and speculative decoding on the
embedded tiny model gives plain decoding's tokens for every drafter and sampling setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter
from exporter.generate.generator import GenerationOptions, generate
from exporter.generate.reference_model import ReferenceLanguageModel
from exporter.generate.sampling import SamplingParameters
from exporter.model.load import load_checkpoint
from exporter.tools.goldens import TINY, draft_checkpoint

PROMPT = [1, 362, 454, 578, 1029, 449, 360, 1135, 266, 332, 449, 437, 1135, 265, 362, 454, 909, 323, 3476, 363]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a 3M-parameter model: threads cost more than they give on a shared machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return load_checkpoint(TINY)


@pytest.fixture(scope="module")
def target(tiny):
    return ReferenceLanguageModel(tiny, context_length=128, prefill_length=16, verify_length=5)


@pytest.fixture(scope="module")
def draft_model():
    return ReferenceLanguageModel(draft_checkpoint(), context_length=128, prefill_length=16)


def test_calls_reproduce_the_reference_forward(tiny, target):
    ids = PROMPT + [5, 6, 7, 8, 9, 10, 11]
    with torch.no_grad():
        want = tiny(torch.tensor([ids])).numpy()[0]
    target.reset()
    rows = [target.prefill(ids[:16], 0), target.prefill(ids[16:20], 16)]  # the second chunk is padded
    rows += [target.decode(ids[20], 20)[None], target.verify(ids[21:24], 21), target.verify(ids[24:], 24)]
    got = np.concatenate(rows)
    assert got.shape == (len(ids), 4096) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4


def test_prefill_without_logits_and_bad_calls(tiny):
    model = ReferenceLanguageModel(tiny, 32, 8, verify_length=0, prefill_gives_logits=False)
    assert model.prefill([1, 2, 3], 0).shape == (0, 4096)
    with pytest.raises(ValueError, match="past the 32-token cache"):
        model.prefill([1], 25)
    with pytest.raises(ValueError, match="takes 1 to 8 tokens"):
        model.prefill(list(range(9)), 0)
    with pytest.raises(ValueError, match="without a verify function"):
        model.verify([1], 0)
    assert model.decode(5, 31).shape == (4096,)


SETTINGS = [
    SamplingParameters(),
    SamplingParameters(repetition_penalty=1.2),
    SamplingParameters(temperature=0.8, seed=1),
    SamplingParameters(temperature=1.0, top_k=8, seed=2),
    SamplingParameters(temperature=1.0, top_p=0.9, repetition_penalty=1.2, seed=3),
    SamplingParameters(temperature=1.2, min_p=0.1, seed=4),
    SamplingParameters(temperature=0.7, top_k=40, top_p=0.95, min_p=0.05, repetition_penalty=1.2, seed=5),
]


@pytest.mark.parametrize("parameters", SETTINGS)
def test_speculative_decoding_on_the_tiny_model_gives_plain_tokens(target, draft_model, parameters):
    options = GenerationOptions(max_new_tokens=24, sampling=parameters, stop_token_ids=(2,))
    plain = generate(target, PROMPT, options)
    for drafter in (PromptLookupDrafter(), DraftModelDrafter(draft_model, parameters.repetition_penalty)):
        fast = generate(target, PROMPT, options, drafter)
        assert (fast.tokens, fast.stop_reason) == (plain.tokens, plain.stop_reason), drafter.name
        assert fast.stats.calls["verify"] > 0


def test_prompt_lookup_on_the_tiny_model_both_accepts_and_rejects(target):
    result = generate(target, PROMPT, GenerationOptions(max_new_tokens=40), PromptLookupDrafter())
    assert 0 < result.stats.draft_accepted < result.stats.draft_proposed
