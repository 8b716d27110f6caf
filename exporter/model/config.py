"""OpenELM model configuration: the Hub's config.json, and the layer-wise scaling that expands it.

OpenELM gives every layer its own number of query/KV heads and FFN width (layer-wise
scaling, arXiv 2404.14619). A Hub config.json already stores the expanded per-layer
lists; a preset stores only the two end points, and `expand_layerwise` derives the rest
exactly as Apple's configuration code does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from exporter.errors import ExportError
from exporter.files import read_json_object


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round `value` to a multiple of `divisor`, never dropping more than 10% (Apple's rule)."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


@dataclass
class OpenELMConfig:
    num_transformer_layers: int
    model_dim: int
    head_dim: int
    num_query_heads: list[int]
    num_kv_heads: list[int]
    ffn_multipliers: list[float]
    vocab_size: int = 32000
    max_context_length: int = 2048
    num_gqa_groups: int = 4
    ffn_dim_divisor: int = 256
    rope_freq_constant: float = 10000.0
    rope_max_length: int = 4096
    norm_eps: float = 1e-6
    bos_token_id: int = 1
    eos_token_id: int = 2
    share_input_output_layers: bool = True
    qkv_multipliers: list[float] = field(default_factory=lambda: [0.5, 1.0])

    def __post_init__(self) -> None:
        n = self.num_transformer_layers
        for name in ("num_query_heads", "num_kv_heads", "ffn_multipliers"):
            if len(getattr(self, name)) != n:
                raise ExportError(
                    f"config.json: '{name}' has {len(getattr(self, name))} entries but the model has "
                    f"{n} layers; fix the config or re-download the checkpoint"
                )
        for i, (q, kv) in enumerate(zip(self.num_query_heads, self.num_kv_heads)):
            if kv <= 0 or q % kv:
                raise ExportError(
                    f"config.json: layer {i} has {q} query heads and {kv} KV heads; "
                    "query heads must be a positive multiple of KV heads"
                )
        if self.head_dim % 2:
            raise ExportError(f"config.json: head_dim {self.head_dim} must be even for rotary embeddings")

    @property
    def ffn_dims(self) -> list[int]:
        """Per-layer FFN hidden width: the multiplier times model_dim, rounded to ffn_dim_divisor."""
        return [make_divisible(m * self.model_dim, self.ffn_dim_divisor) for m in self.ffn_multipliers]

    @property
    def max_kv_heads(self) -> int:
        return max(self.num_kv_heads)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_hub_dict(self) -> dict:
        """The config.json that Apple's checkpoints carry (minus its remote-code `auto_map`)."""
        d = {k: v for k, v in asdict(self).items() if k != "norm_eps"}
        d.update(
            model_type="openelm",
            architectures=["OpenELMForCausalLM"],
            activation_fn_name="swish",
            normalization_layer_name="rms_norm",
            ffn_with_glu=True,
        )
        return d

    @classmethod
    def from_hub_dict(cls, raw: dict, source: str = "config.json") -> "OpenELMConfig":
        model_type = raw.get("model_type")
        if model_type != "openelm":
            raise ExportError(
                f"{source}: model_type is {model_type!r}, not 'openelm'; point --model-dir at an "
                "OpenELM checkpoint (apple/OpenELM-*)"
            )
        unsupported = {
            "ffn_with_glu": True,
            "share_input_output_layers": True,
            "normalization_layer_name": "rms_norm",
            "activation_fn_name": "swish",
        }
        for key, expected in unsupported.items():
            if key in raw and raw[key] != expected:
                raise ExportError(f"{source}: {key}={raw[key]!r} is not supported (only {expected!r})")
        try:
            n = int(raw["num_transformer_layers"])
            model_dim = int(raw["model_dim"])
            head_dim = int(raw["head_dim"])
        except (KeyError, TypeError, ValueError) as e:
            raise ExportError(f"{source}: missing or invalid field {e}; re-download the checkpoint") from None
        fields = dict(
            vocab_size=int(raw.get("vocab_size", 32000)),
            max_context_length=int(raw.get("max_context_length", 2048)),
            num_gqa_groups=int(raw.get("num_gqa_groups", 4)),
            ffn_dim_divisor=int(raw.get("ffn_dim_divisor", 256)),
            rope_freq_constant=float(raw.get("rope_freq_constant", 10000)),
            rope_max_length=int(raw.get("rope_max_length", 4096)),
            bos_token_id=int(raw.get("bos_token_id", 1)),
            eos_token_id=int(raw.get("eos_token_id", 2)),
            qkv_multipliers=list(raw.get("qkv_multipliers", [0.5, 1.0])),
        )
        layers = expand_layerwise(
            n, model_dim, head_dim, fields["num_gqa_groups"],
            raw.get("qkv_multipliers", [0.5, 1.0]), raw.get("ffn_multipliers", [0.5, 4.0]),
        )
        # The Hub config stores the expanded lists: they win over our derivation when present.
        for key in ("num_query_heads", "num_kv_heads", "ffn_multipliers"):
            if isinstance(raw.get(key), list) and len(raw[key]) == n:
                layers[key] = list(raw[key])
        return cls(num_transformer_layers=n, model_dim=model_dim, head_dim=head_dim, **layers, **fields)

    @classmethod
    def from_file(cls, path: Path) -> "OpenELMConfig":
        raw = read_json_object(path, "a checkpoint folder needs config.json next to its weights",
                               "re-download the checkpoint")
        return cls.from_hub_dict(raw, source=str(path))


def expand_layerwise(
    num_layers: int,
    model_dim: int,
    head_dim: int,
    num_gqa_groups: int,
    qkv_multipliers,
    ffn_multipliers,
) -> dict:
    """Per-layer heads and FFN multipliers from (start, end) multipliers, as OpenELM defines them."""

    def spread(mult) -> list[float]:
        if isinstance(mult, (int, float)):
            return [float(mult)] * num_layers
        if len(mult) == num_layers:
            return [float(m) for m in mult]
        start, end = mult
        return [round(float(m), 2) for m in np.linspace(start, end, num=num_layers, dtype=float)]

    qkv = spread(qkv_multipliers)
    q_heads = [make_divisible(model_dim * m, head_dim * num_gqa_groups) // head_dim for m in qkv]
    return dict(
        num_query_heads=q_heads,
        num_kv_heads=[q // num_gqa_groups for q in q_heads],
        ffn_multipliers=spread(ffn_multipliers),
    )
