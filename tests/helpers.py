"""Helpers the tests share: small OpenELM configs with the real layer-wise pattern."""

from __future__ import annotations

from exporter.model.config import OpenELMConfig, expand_layerwise


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


from exporter.tools.synthetic_adapter import write_peft_adapter  # noqa: E402,F401 (the tests use it from here)
