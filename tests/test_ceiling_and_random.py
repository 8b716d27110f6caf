"""The on-device decode ceiling arithmetic, and seeded random weights at real shapes (benchmarks without the Hub)."""

import pytest
import torch

from exporter.ceiling import DEVICE_BANDWIDTH, decode_ceiling
from exporter.checkpoint import random_model
from exporter.errors import UsageError
from exporter.hub import resolve_checkpoint
from exporter.presets import get_preset


def test_ceiling_is_bandwidth_over_bytes_per_token():
    ceiling = decode_ceiling(250_000_000, [[1, 96, 2048, 64], [1, 96, 2048, 64]])
    cache = 2 * 96 * 2048 * 64 * 2
    assert ceiling["kv_cache_bytes_read"] == cache
    assert ceiling["bytes_per_decode_token"] == 250_000_000 + cache
    for device, bandwidth in DEVICE_BANDWIDTH.items():
        assert ceiling["max_decode_tokens_per_s"][device] == pytest.approx(bandwidth / (250_000_000 + cache), abs=0.05)
    assert "upper bound" in ceiling["note"]


def test_random_weights_are_seeded_and_real_shaped():
    config = get_preset("270m").config()
    config.num_transformer_layers = 2  # keep the test small: only the first two layers' shapes
    for name in ("num_query_heads", "num_kv_heads", "ffn_multipliers"):
        setattr(config, name, getattr(config, name)[:2])
    a, b = random_model(config, seed=3), random_model(config, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.transformer.token_embeddings.weight.shape == (32000, 1280)
    other_seed = random_model(config, seed=4)
    assert not torch.equal(other_seed.transformer.layers[0].attn.qkv_proj.weight, a.transformer.layers[0].attn.qkv_proj.weight)


def test_random_weights_source():
    source = resolve_checkpoint(size="450m", random_seed=7)
    assert source.to_dict() == {"random_weights": {"size": "450m", "seed": 7, "shapes_of": "apple/OpenELM-450M"}}
    with pytest.raises(UsageError, match="--random-weights needs --size"):
        resolve_checkpoint(random_seed=1)
