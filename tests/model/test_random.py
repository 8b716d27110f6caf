"""Seeded random weights at real shapes (benchmarks without the Hub)."""

import pytest
import torch

from exporter.errors import UsageError
from exporter.model.load import random_model, resolve_source
from exporter.model.presets import get_preset


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
    source = resolve_source(size="450m", random_seed=7)
    assert source.to_dict() == {"random_weights": {"size": "450m", "seed": 7, "shapes_of": "apple/OpenELM-450M"}}
    with pytest.raises(UsageError, match="--random-weights needs --size"):
        resolve_source(random_seed=1)
