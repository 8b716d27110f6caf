"""Where each layer's keys and values live in the two KV-cache states of the export graph."""

from __future__ import annotations

import math
from dataclasses import dataclass

STATE_ALIGN = 32  # Neural Engine: state dimensions that are not multiples of 32 have failed


@dataclass(frozen=True)
class CacheLayout:
    """Where each layer's keys and values live in the two cache states.

    OpenELM's KV-head count differs per layer (e.g. 3..6 for 450M), so instead of padding
    every layer to the largest count, all layers' KV heads are stacked along one axis:
    layer i owns heads [offsets[i], offsets[i] + kv_heads[i]). The axis is padded up to a
    multiple of 32 (Neural Engine state rule), so the state is [1, heads, context, head_dim].
    """

    kv_heads: tuple[int, ...]
    context_length: int
    head_dim: int

    @property
    def offsets(self) -> tuple[int, ...]:
        starts, total = [], 0
        for n in self.kv_heads:
            starts.append(total)
            total += n
        return tuple(starts)

    @property
    def used_heads(self) -> int:
        return sum(self.kv_heads)

    @property
    def padded_heads(self) -> int:
        return math.ceil(self.used_heads / STATE_ALIGN) * STATE_ALIGN

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, self.padded_heads, self.context_length, self.head_dim)

    def to_dict(self) -> dict:
        return {
            "layout": "all layers' KV heads stacked on axis 1, padded to a multiple of 32",
            "shape": list(self.shape),
            "layer_head_offsets": list(self.offsets),
            "layer_kv_heads": list(self.kv_heads),
            "used_heads": self.used_heads,
        }
