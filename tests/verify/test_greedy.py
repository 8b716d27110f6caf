"""A streamed reference's greedy run (float16 drafts checked by one float32 pass) is decoding token by token."""

import numpy as np
import pytest
import torch

from exporter.checkpoint.tensors import RandomTensors
from exporter.model.load import expected_shapes, whole_model
from exporter.model.preflight import measure
from exporter.model.streamed import streamed_model, streamed_source
from exporter.verify.greedy import checked_drafts, logits_and_range, run_reference
from exporter.verify.reference import logits_for, reference_run
from tests.helpers import small_config

PROMPT = list(range(3, 40))
STEPS = 12


@pytest.fixture(scope="module")
def models():
    config = small_config()
    tensors = RandomTensors(expected_shapes(config), seed=5)
    return whole_model(config, tensors), streamed_model(config, tensors, read_ahead=2)


@pytest.fixture(scope="module")
def token_by_token(models):
    held, _ = models
    return reference_run(held, PROMPT, STEPS)


def test_streamed_reference_gives_the_tokens_logits_and_range_of_decoding_token_by_token(models, token_by_token):
    held, streamed = models
    tokens, logits = token_by_token
    run = run_reference(streamed, PROMPT, STEPS)
    assert run.tokens == tokens and run.checks == 1  # the float16 draft was right: one float32 pass
    assert run.logits.shape == logits.shape
    np.testing.assert_allclose(run.logits, logits, rtol=0, atol=1e-5)  # float32 rounding of another order
    assert run.activation_range.to_dict() == measure(held, tokens).to_dict()


def test_wrong_drafts_are_corrected_to_the_references_own_tokens(models, token_by_token):
    _, streamed = models
    tokens, logits = token_by_token
    wrong_once = {}

    def draft(prefix, count):  # the true continuation, but a wrong token at the 5th step the first time
        continued = prefix + tokens[len(prefix) : len(prefix) + count]
        if not wrong_once and count == STEPS:
            wrong_once["at"] = len(PROMPT) + 4
            continued[wrong_once["at"]] = (tokens[wrong_once["at"]] + 1) % 512
        return continued

    run = checked_drafts(streamed, draft, PROMPT, STEPS)
    assert run.tokens == tokens and run.checks == 2
    np.testing.assert_allclose(run.logits, logits, rtol=0, atol=1e-5)
    always_wrong = checked_drafts(streamed, lambda prefix, count: prefix + [0] * count, PROMPT, STEPS)
    assert always_wrong.tokens == tokens and always_wrong.checks <= STEPS + 1


def test_held_reference_decodes_token_by_token(models, token_by_token):
    held, _ = models
    run = run_reference(held, PROMPT, STEPS)
    assert run.tokens == token_by_token[0] and run.checks == 0
    np.testing.assert_array_equal(run.logits, token_by_token[1])


def test_one_pass_gives_the_logits_of_a_plain_forward_pass(models, token_by_token):
    held, streamed = models
    tokens = token_by_token[0]
    hooks = len(streamed._forward_hooks)
    logits, ranges = logits_and_range(streamed, tokens)
    np.testing.assert_array_equal(logits, logits_for(held, tokens))
    assert ranges.tokens == len(tokens) and len(streamed._forward_hooks) == hooks  # its hook is gone


def test_draft_is_a_float16_copy_of_the_streamed_weights(models):
    held, streamed = models
    draft = whole_model(held.config, streamed_source(streamed), torch.float16)
    for name, weight in held.state_dict().items():
        assert torch.equal(draft.state_dict()[name], weight.to(torch.float16)), name


def test_no_steps_is_one_pass_over_the_prompt(models):
    held, streamed = models
    run = run_reference(streamed, PROMPT, 0)
    assert run.tokens == PROMPT and run.checks == 1
    np.testing.assert_array_equal(run.logits, logits_for(held, PROMPT))
