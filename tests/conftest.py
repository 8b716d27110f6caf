"""Shared fixtures: small OpenELM configs with the real layer-wise pattern, and seeded checkpoints on disk."""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # as the CLI does: coremltools' progress bars would flood stderr checks

import pytest  # noqa: E402
import torch  # noqa: E402

from exporter.checkpoint import random_state_dict, save_checkpoint  # noqa: E402
from exporter.config import OpenELMConfig, expand_layerwise  # noqa: E402


def small_config(num_layers: int = 4, model_dim: int = 256, head_dim: int = 32, vocab_size: int = 512, **overrides):
    """A few-layer OpenELM whose heads and FFN widths vary per layer like the real ones."""
    layers = expand_layerwise(num_layers, model_dim, head_dim, 4, (0.5, 1.0), (0.5, 4.0))
    fields = dict(
        num_transformer_layers=num_layers,
        model_dim=model_dim,
        head_dim=head_dim,
        vocab_size=vocab_size,
        max_context_length=128,
        **layers,
    )
    fields.update(overrides)
    return OpenELMConfig(**fields)


@pytest.fixture
def config():
    return small_config()


@pytest.fixture
def checkpoint_dir(tmp_path, config):
    """A Hub-layout folder with seeded float32 weights for `config`."""
    folder = tmp_path / "ckpt"
    save_checkpoint(folder, config, random_state_dict(config, seed=0))
    return folder


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
