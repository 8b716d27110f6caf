"""The models this package trains: OpenELM-tiny, and OpenELM-tiny-draft, its draft for speculative decoding.

Both share the corpus, its held-out split, the training recipe and (byte for byte) the
tokenizer; the draft is a narrower, shallower OpenELM with about 4x fewer FLOPs per token
outside the embedding, so it can propose tokens that OpenELM-tiny then verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exporter.model.config import OpenELMConfig, expand_layerwise
from exporter.tools.tiny.tokenizer import DEFAULT_VOCAB_SIZE

ASSETS = Path("exporter/assets")  # relative to the repository root, as the Makefile and the cards name it
ROOT = Path(__file__).resolve().parents[3]  # the folder holding the `exporter` package


def openelm_config(layers: int, model_dim: int, vocab_size: int, head_dim: int = 16, gqa: int = 4) -> OpenELMConfig:
    """OpenELM with real layer-wise scaling ((0.5, 1.0) qkv, (0.5, 4.0) FFN multipliers) at the shared
    vocabulary and context (512 tokens, RoPE tables for 1024)."""
    qkv_multipliers, ffn_multipliers = [0.5, 1.0], [0.5, 4.0]
    per_layer = expand_layerwise(layers, model_dim, head_dim, gqa, qkv_multipliers, ffn_multipliers)
    return OpenELMConfig(
        num_transformer_layers=layers,
        model_dim=model_dim,
        head_dim=head_dim,
        num_gqa_groups=gqa,
        vocab_size=vocab_size,
        max_context_length=512,
        rope_max_length=1024,
        qkv_multipliers=qkv_multipliers,
        **per_layer,
    )


def tiny_config(vocab_size: int = DEFAULT_VOCAB_SIZE) -> OpenELMConfig:
    """OpenELM's architecture at 3/20 of the 270M model's width, with real layer-wise scaling.

    head_dim 16 with 4 query heads per KV head makes the (0.5, 1.0) qkv multipliers give
    8 then 12 query heads (2 then 3 KV heads), and the (0.5, 4.0) FFN multipliers three
    FFN widths (256, 512, 768), so every per-layer code path sees unequal layers, while
    the float32 weights stay near 12 MB.
    """
    return openelm_config(6, 192, vocab_size)


def draft_config(vocab_size: int = DEFAULT_VOCAB_SIZE) -> OpenELMConfig:
    """3 layers at model_dim 128: 4, 8, 8 query heads (1, 2, 2 KV heads), FFN widths 256, 512, 512.

    Still layer-wise scaled, with OpenELM-tiny's head_dim, GQA ratio and ffn_dim_divisor; its
    layers hold 593,920 weights against OpenELM-tiny's 2,230,272 (3.8x fewer multiply-adds
    per token outside the embedding), and half the sequential depth.
    """
    return openelm_config(3, 128, vocab_size)


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the --config value and the `model` recorded in training_log.json
    title: str  # the model card's heading
    folder: Path  # where `make` writes it
    make_target: str
    config: Callable[[int], OpenELMConfig]
    tags: tuple[str, ...]
    tokenizer_from: Path | None = None  # copy this model's tokenizer instead of training one
    target: Path | None = None  # the model this one drafts for (speculative decoding)

    @property
    def train_command(self) -> str:
        flag = "" if self.name == "tiny" else f" --config {self.name}"
        return f"make {self.make_target}    # = python -m exporter.tools.tiny.train{flag} --out {self.folder.as_posix()}"

    @staticmethod
    def installed(folder: Path) -> Path:
        """`folder` (as named above, from the repository root) where this package is installed."""
        return ROOT / folder


TINY = ModelSpec(
    name="tiny", title="OpenELM-tiny", folder=ASSETS / "openelm-tiny", make_target="tiny-model",
    config=tiny_config, tags=("openelm", "test-fixture", "tiny"),
)
DRAFT = ModelSpec(
    name="draft", title="OpenELM-tiny-draft", folder=ASSETS / "openelm-tiny-draft", make_target="tiny-draft-model",
    config=draft_config, tags=("openelm", "test-fixture", "tiny", "draft", "speculative-decoding"),
    tokenizer_from=TINY.folder, target=TINY.folder,
)
SPECS = {spec.name: spec for spec in (TINY, DRAFT)}


def non_embedding_macs(config: OpenELMConfig) -> int:
    """Weight multiply-adds per token in the decoder layers (the projections; attention scores aside)."""
    d, hd = config.model_dim, config.head_dim
    return sum(
        (2 * q + 2 * kv) * hd * d + 3 * ffn * d
        for q, kv, ffn in zip(config.num_query_heads, config.num_kv_heads, config.ffn_dims)
    )
