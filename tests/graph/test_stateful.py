"""The module that gets traced, run eagerly in float32, reproduces the reference model."""

import pytest
import torch

from exporter.graph.cache import CacheLayout
from exporter.graph.norm import rms_norm_fp16_safe
from exporter.graph.stateful import StatefulOpenELM
from exporter.graph.vocab import vocab_split
from exporter.model.load import random_state_dict
from exporter.model.openelm import OpenELM, RMSNorm
from tests.helpers import small_config


def reference(config, seed=0):
    model = OpenELM(config)
    model.load_state_dict(random_state_dict(config, seed=seed))
    return model.eval()


@torch.no_grad()
def stateful_logits(model, ids, prompt_length, context_length=128, prefill_length=8):
    """Drive prefill (chunked, last chunk padded) then decode, exactly as an app drives the package."""
    prefill = StatefulOpenELM(model, context_length, prefill_length, cache_dtype=torch.float32)
    decode = StatefulOpenELM(model, context_length, 1, cache_dtype=torch.float32)
    decode.key_cache, decode.value_cache = prefill.key_cache, prefill.value_cache  # one shared state
    vocab = model.config.vocab_size
    rows = []
    for start in range(0, prompt_length, prefill_length):
        chunk = ids[:, start : min(start + prefill_length, prompt_length)]
        real = chunk.shape[1]
        padded = torch.nn.functional.pad(chunk, (0, prefill_length - real))
        out = prefill(padded.int(), torch.tensor([start], dtype=torch.int32))
        rows.append(out.flatten(2)[:, :real, :vocab])
    for t in range(prompt_length, ids.shape[1]):
        out = decode(ids[:, t : t + 1].int(), torch.tensor([t], dtype=torch.int32))
        rows.append(out.flatten(2)[:, :, :vocab])
    return torch.cat(rows, dim=1)


def test_chunked_prefill_then_decode_matches_reference():
    config = small_config()
    model = reference(config)
    ids = torch.randint(0, config.vocab_size, (1, 60))
    got = stateful_logits(model, ids, prompt_length=21)  # 3 prefill chunks of 8 (last padded), 39 decode steps
    assert (got - model(ids)).abs().max() <= 1e-3


def test_decode_reaches_the_last_context_slot():
    config = small_config(max_context_length=64)
    model = reference(config, seed=2)
    ids = torch.randint(0, config.vocab_size, (1, 64))
    got = stateful_logits(model, ids, prompt_length=16, context_length=64, prefill_length=16)
    assert got.shape[1] == 64  # the final decode wrote slot 63
    assert (got - model(ids)).abs().max() <= 1e-3


def test_layers_trace_into_one_flat_graph():
    """The reference's layers run inside the export graph, traced inline: a module call to a layer, its attention
    or a norm would become a sub-graph whose constants are pooled, and the converted program would change."""
    from exporter.coreml.convert import trace

    traced = trace(StatefulOpenELM(reference(small_config(num_layers=2)), 32, 4))
    called = {node.inputsAt(0).type().name() for node in traced.graph.findAllNodes("prim::CallMethod", recurse=True)}
    assert called and not called & {"DecoderLayer", "Attention", "RMSNorm"}


def test_uneven_vocabulary_is_padded_and_split():
    config = small_config(vocab_size=20000)
    model = reference(config)
    module = StatefulOpenELM(model, 128, 4, cache_dtype=torch.float32)
    assert (module.pieces, module.piece_size) == (2, 10000)
    ids = torch.tensor([[0, 9999, 10000, 19999]])
    got = stateful_logits(model, ids, prompt_length=4, prefill_length=4)
    assert (got - model(ids)).abs().max() <= 1e-3


def test_vocab_split_respects_the_neural_engine_limit():
    assert vocab_split(32000) == (2, 16000)
    assert vocab_split(4096) == (1, 4096)
    assert vocab_split(16385) == (2, 8193)
    for vocab in (100, 16384, 32000, 50257, 128256):
        pieces, size = vocab_split(vocab)
        assert size <= 16384 and pieces * size >= vocab


def test_cache_layout_stacks_heads_without_per_layer_padding():
    layout = CacheLayout((3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6), 2048, 64)  # OpenELM-450M
    assert layout.used_heads == 91
    assert layout.shape == (1, 96, 2048, 64)
    assert layout.offsets[:4] == (0, 3, 6, 9) and layout.offsets[-1] == 85
    assert all(d % 32 == 0 for d in layout.shape[1:])


@pytest.mark.parametrize("magnitude", [1e-3, 1.0, 300.0, 3e4])
def test_fp16_safe_norm_equals_rmsnorm_in_float32(magnitude):
    norm = RMSNorm(64)
    norm.weight.data = torch.rand(64) + 0.5
    x = torch.randn(3, 5, 64) * magnitude
    expected = norm(x)
    got = rms_norm_fp16_safe(x, norm.weight, norm.eps)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_fp16_safe_norm_survives_float16_where_naive_overflows():
    norm = RMSNorm(64)
    x = torch.randn(2, 64, dtype=torch.float64) * 2e4
    expected = norm(x.float())
    naive = x.half() * torch.rsqrt(x.half().pow(2).mean(-1, keepdim=True) + 1e-6)
    assert not torch.isfinite(naive.float()).all() or (naive.float() - expected).abs().max() > 0.1
    safe = rms_norm_fp16_safe(x.half(), norm.weight.half(), norm.eps)
    assert torch.isfinite(safe).all()
    assert (safe.float() - expected).abs().max() < 1e-2
