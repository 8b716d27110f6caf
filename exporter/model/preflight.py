"""Activation-range preflight: how close each layer of the reference comes to float16's limit.

The Neural Engine stores activations in float16 (max 65504). The reference runs over
calibration tokens in float32 while hooks record, per layer, the largest |value| of the
residual stream, the norm inputs, the attention scores and the FFN intermediates. The
headroom is 65504 / max: below 1 the value overflows on device; below WARN_HEADROOM it is
close enough that another prompt may overflow it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from exporter.model.openelm import OpenELM, ReferenceContext

FLOAT16_MAX = 65504.0
WARN_HEADROOM = 4.0  # two bits of margin: prompts differ, calibration text is not every input

# Quantities the export graph stores in float16. Norm inputs are safe at any magnitude below the
# float16 limit because the export's RMSNorm divides by max|x| before squaring.
QUANTITIES = ("residual", "attn_norm_input", "ffn_norm_input", "qk_pre_norm", "attention_scores",
              "ffn_hidden", "ffn_output", "attn_output", "logits")


@dataclass
class LayerRange:
    layer: int | str
    maxima: dict[str, float]

    @property
    def peak(self) -> tuple[str, float]:
        name = max(self.maxima, key=self.maxima.get)
        return name, self.maxima[name]

    @property
    def headroom(self) -> float:
        return FLOAT16_MAX / max(self.peak[1], 1e-30)


@dataclass
class RangeReport:
    layers: list[LayerRange]
    tokens: int

    @property
    def worst(self) -> LayerRange:
        return min(self.layers, key=lambda r: r.headroom)

    @property
    def status(self) -> str:
        headroom = self.worst.headroom
        return "overflow" if headroom < 1 else "warn" if headroom < WARN_HEADROOM else "ok"

    def summary(self) -> str:
        worst = self.worst
        name, value = worst.peak
        where = f"layer {worst.layer}" if isinstance(worst.layer, int) else worst.layer
        return (f"activation range over {self.tokens} tokens: peak |{name}| = {value:.4g} at {where}, "
                f"headroom {worst.headroom:.3g}× to float16's 65504 ({self.status})")

    def to_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "float16_max": FLOAT16_MAX,
            "status": self.status,
            "worst_layer": self.worst.layer,
            "min_headroom": round(self.worst.headroom, 3),
            "layers": [{"layer": r.layer, "headroom": round(r.headroom, 3),
                        **{k: float(f"{v:.5g}") for k, v in r.maxima.items()}} for r in self.layers],
        }


def _peak(t: torch.Tensor) -> float:
    return float(t.detach().abs().max())


@torch.no_grad()
def measure(model: OpenELM, token_ids: list[int], window: int | None = None) -> RangeReport:
    """Run the reference over `token_ids` (in windows no longer than the context) and record the peaks."""
    config = model.config
    window = min(window or config.max_context_length, config.max_context_length)
    stats = [dict.fromkeys(QUANTITIES[:-1], 0.0) for _ in range(config.num_transformer_layers)]
    final = {"residual": 0.0, "logits": 0.0}
    hooks = []

    def record(layer, name, value):
        stats[layer][name] = max(stats[layer][name], _peak(value))

    for i, layer in enumerate(model.transformer.layers):
        attn = layer.attn
        hooks += [
            layer.attn_norm.register_forward_hook(lambda m, a, out, i=i: record(i, "attn_norm_input", a[0])),
            layer.ffn_norm.register_forward_hook(lambda m, a, out, i=i: record(i, "ffn_norm_input", a[0])),
            layer.register_forward_hook(lambda m, a, out, i=i: record(i, "residual", out)),
            attn.qkv_proj.register_forward_hook(lambda m, a, out, i=i: record(i, "qk_pre_norm", out)),
            attn.out_proj.register_forward_hook(lambda m, a, out, i=i: record(i, "attn_output", out)),
            layer.ffn.proj_1.register_forward_hook(lambda m, a, out, i=i: record(i, "ffn_hidden", out)),
            layer.ffn.proj_2.register_forward_hook(lambda m, a, out, i=i: record(i, "ffn_hidden", a[0])),
            layer.ffn.register_forward_hook(lambda m, a, out, i=i: record(i, "ffn_output", out)),
        ]
    hooks.append(model.transformer.norm.register_forward_hook(
        lambda m, a, out: final.__setitem__("residual", max(final["residual"], _peak(a[0])))))
    try:
        for start in range(0, len(token_ids), window):
            chunk = torch.tensor([token_ids[start : start + window]])
            ctx = _ScoreRecorder.causal(config, 0, chunk.shape[1], record=record)
            final["logits"] = max(final["logits"], _peak(model(chunk, ctx=ctx)))
    finally:
        for hook in hooks:
            hook.remove()
    layers = [LayerRange(i, s) for i, s in enumerate(stats)] + [LayerRange("final", final)]
    return RangeReport(layers, len(token_ids))


@dataclass(eq=False)
class _ScoreRecorder(ReferenceContext):
    """The reference's context, recording each layer's attention logits q·k/√d (one window: no cache)."""

    record: Callable[[int, str, torch.Tensor], None] | None = None

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int) -> torch.Tensor:
        keys = k.repeat_interleave(self.groups(layer, q, k), dim=1)  # [B, num_q, S, head_dim]
        self.record(layer, "attention_scores", q @ keys.transpose(-1, -2) / math.sqrt(q.shape[-1]))
        return super().attend(layer, q, k, v, tokens)
