"""Which form each RMSNorm of the Neural Engine graph takes, from the activation-range preflight's peaks.

The layer_norm form (one high-level op; ANE rule: prefer high-level ops) squares its input in float16.
It is chosen only where that cannot overflow with WARN_HEADROOM to spare even if the device also sums
the squares in float16: 2 · width · peak² ≤ 65504 / WARN_HEADROOM (the mirrored input has 2 · width
values). Everywhere else, and for any norm the preflight did not see, the max-scaled form, which is safe
at any float16 magnitude. The executor's layer_norm kernel models exactly this float16 behaviour
(exporter.verify.kernels.linear_algebra), so a wrong choice fails verification rather than hiding.
"""

from __future__ import annotations

from exporter.graph.ane_blocks import LAYER_NORM, MAX_SCALED
from exporter.model.config import OpenELMConfig
from exporter.model.preflight import FLOAT16_MAX, WARN_HEADROOM, RangeReport


def layer_norm_is_safe(peak: float, width: int) -> bool:
    return 2 * width * peak**2 <= FLOAT16_MAX / WARN_HEADROOM


def choose_norm_forms(ranges: RangeReport, config: OpenELMConfig) -> dict[str, dict]:
    """{norm name: {"form", "peak", "width"}} for every norm of the model (names as in the program)."""
    peaks = {layer.layer: layer.maxima for layer in ranges.layers}
    choices = {}

    def choose(name: str, peak: float | None, width: int) -> None:
        safe = peak is not None and layer_norm_is_safe(peak, width)
        choices[name] = {"form": LAYER_NORM if safe else MAX_SCALED, "peak": peak, "width": width}

    for i in range(config.num_transformer_layers):
        maxima = peaks.get(i, {})
        choose(f"layers.{i}.attn_norm", maxima.get("attn_norm_input"), config.model_dim)
        choose(f"layers.{i}.ffn_norm", maxima.get("ffn_norm_input"), config.model_dim)
        for name in ("attn.q_norm", "attn.k_norm"):  # their inputs are among the qkv projection's outputs
            choose(f"layers.{i}.{name}", maxima.get("qk_pre_norm"), config.head_dim)
    choose("final_norm", peaks.get("final", {}).get("residual"), config.model_dim)
    return choices


def forms_of(choices: dict[str, dict] | None) -> dict[str, str]:
    return {name: choice["form"] for name, choice in (choices or {}).items()}
