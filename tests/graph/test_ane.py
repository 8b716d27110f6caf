"""The Neural Engine graph, run eagerly in float32, reproduces the reference model when driven by its contract."""

import pytest
import torch

from exporter.graph.ane import NeuralEngineOpenELM, TokenEmbedding
from exporter.graph.ane_blocks import LAYER_NORM, MAX_SCALED, ChannelNorm
from exporter.graph.host_inputs import mask_input, rotary_input
from exporter.model.openelm import RMSNorm
from tests.graph.test_stateful import reference
from tests.helpers import small_config


def norm_forms(config, form):
    names = ["final_norm"]
    for i in range(config.num_transformer_layers):
        names += [f"layers.{i}.{n}" for n in ("attn_norm", "attn.q_norm", "attn.k_norm", "ffn_norm")]
    return dict.fromkeys(names, form)


def call(module, hidden, position, tokens, config, context_length):
    rotary = torch.from_numpy(rotary_input(position, tokens, config.head_dim, config.rope_freq_constant)).float()
    mask = torch.from_numpy(mask_input(position, tokens, context_length)).float()
    return module(hidden, torch.tensor([position], dtype=torch.int32), rotary, mask)


@torch.no_grad()
def ane_logits(model, ids, prompt_length, context_length=128, prefill_length=8, form=MAX_SCALED):
    """Prefill (no logits) up to the prompt's last token, then decode from it on: the rows from prompt_length - 1."""
    config = model.config
    forms = norm_forms(config, form)
    prefill = NeuralEngineOpenELM(model, context_length, prefill_length, torch.float32, norm_forms=forms, logits=False)
    decode = NeuralEngineOpenELM(model, context_length, 1, torch.float32, norm_forms=forms)
    decode.key_cache, decode.value_cache = prefill.key_cache, prefill.value_cache  # one shared state
    embed_prefill, embed_decode = (TokenEmbedding(decode.vocab_pieces, tokens) for tokens in (prefill_length, 1))
    for start in range(0, prompt_length - 1, prefill_length):
        chunk = ids[:, start : min(start + prefill_length, prompt_length - 1)]
        padded = torch.nn.functional.pad(chunk, (0, prefill_length - chunk.shape[1]))
        out = call(prefill, embed_prefill(padded.int()), start, prefill_length, config, context_length)
        assert out.shape == (1, prefill_length, config.model_dim)  # no logit rows
    rows = []
    for t in range(prompt_length - 1, ids.shape[1]):
        out = call(decode, embed_decode(ids[:, t : t + 1].int()), t, 1, config, context_length)
        rows.append(out.flatten(2)[:, :, : config.vocab_size])
    return torch.cat(rows, dim=1)


@pytest.mark.parametrize("head_dim", [16, 32])
@pytest.mark.parametrize("form", [MAX_SCALED, LAYER_NORM])
def test_prefill_without_logits_then_decode_matches_reference(head_dim, form):
    config = small_config(head_dim=head_dim)
    model = reference(config)
    ids = torch.randint(0, config.vocab_size, (1, 40))
    got = ane_logits(model, ids, prompt_length=21, form=form)  # 3 prefill calls of 8 (last padded), then decode
    assert (got - model(ids)[:, 20:]).abs().max() <= 1e-3


def test_state_dimensions_are_multiples_of_32_and_values_are_head_dim_major():
    config = small_config(head_dim=16)
    module = NeuralEngineOpenELM(reference(config), 64, 1)
    assert module.key_cache.shape[1:] == (32, 64, 32) and module.value_cache.shape[1:] == (32, 32, 64)


def test_prefill_skips_the_last_layers_tail():
    """Prefill holds no weight it does not use (the last layer's output projection and FFN, the vocabulary), and its
    result does not depend on the last layer's FFN."""
    config = small_config()
    model = reference(config)
    prefill = NeuralEngineOpenELM(model, 64, 8, torch.float32, logits=False)
    last = config.num_transformer_layers - 1
    names = {name for name, _ in prefill.named_parameters()}
    assert f"layers.{last}.attn.qkv_proj.weight" in names and f"layers.{last - 1}.ffn.proj_2.weight" in names
    assert not {f"layers.{last}.ffn.proj_2.weight", f"layers.{last}.attn.out_proj.weight", "vocab_pieces.0"} & names
    hidden = torch.randn(1, 8, config.model_dim)
    before = call(prefill, hidden, 0, 8, config, 64)
    prefill.reset_cache()
    with torch.no_grad():
        model.transformer.layers[last].ffn.proj_2.weight.fill_(float("nan"))
        after = call(prefill, hidden, 0, 8, config, 64)
    assert torch.equal(before, after)


def test_layer_norm_form_is_rms_norm_on_any_axis():
    norm = RMSNorm(24, 1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
    x = torch.randn(2, 5, 24) * 3
    for axis in (1, 2):
        moved = x.movedim(-1, axis)
        for form in (MAX_SCALED, LAYER_NORM):
            got = ChannelNorm(norm.weight, 1e-6, axis, 3, form)(moved).movedim(axis, -1)
            assert (got - norm(x)).abs().max() < 1e-4, form
