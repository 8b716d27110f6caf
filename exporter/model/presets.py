"""The four OpenELM sizes: Hub ids and the few numbers that define each architecture."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.errors import UsageError
from exporter.model.config import OpenELMConfig, expand_layerwise


@dataclass(frozen=True)
class SizePreset:
    name: str  # canonical CLI name
    hub_name: str  # apple/OpenELM-<hub_name>
    num_layers: int
    model_dim: int
    head_dim: int

    def hub_id(self, instruct: bool = False) -> str:
        return f"apple/OpenELM-{self.hub_name}" + ("-Instruct" if instruct else "")

    def config(self) -> OpenELMConfig:
        """The architecture, expanded layer by layer from OpenELM's multipliers (0.5..1.0 QKV, 0.5..4.0 FFN)."""
        layers = expand_layerwise(self.num_layers, self.model_dim, self.head_dim, 4, (0.5, 1.0), (0.5, 4.0))
        return OpenELMConfig(
            num_transformer_layers=self.num_layers, model_dim=self.model_dim, head_dim=self.head_dim, **layers
        )


PRESETS = {
    p.name: p
    for p in (
        SizePreset("270m", "270M", num_layers=16, model_dim=1280, head_dim=64),
        SizePreset("450m", "450M", num_layers=20, model_dim=1536, head_dim=64),
        SizePreset("1_1b", "1_1B", num_layers=28, model_dim=2048, head_dim=64),
        SizePreset("3b", "3B", num_layers=36, model_dim=3072, head_dim=128),
    )
}
ALIASES = {"1.1b": "1_1b"}
# tiny: the embedded model, tiny-draft: its speculative drafter (exporter.checkpoint.sources)
SIZE_CHOICES = ["tiny", "tiny-draft"] + sorted(PRESETS) + sorted(ALIASES)


def get_preset(size: str) -> SizePreset:
    key = size.strip().lower()
    key = ALIASES.get(key, key)
    if key not in PRESETS:
        raise UsageError(f"unknown --size {size!r}; choose one of: {', '.join(SIZE_CHOICES)}")
    return PRESETS[key]
