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
    neural_engine: bool = False  # the ane graph: head_dim padded to 32 in the state, values head_dim-major

    @property
    def state_head_dim(self) -> int:
        """head_dim as stored: the ane graph pads it to a multiple of 32 (state rule; the embedded model's is 16)."""
        return math.ceil(self.head_dim / STATE_ALIGN) * STATE_ALIGN if self.neural_engine else self.head_dim

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
        """The key cache: [1, heads, context, head_dim] (rows of keys, the K·Q einsum's bkhc per head)."""
        return (1, self.padded_heads, self.context_length, self.state_head_dim)

    @property
    def value_shape(self) -> tuple[int, int, int, int]:
        """The value cache; the ane graph keeps it [1, heads, head_dim, context], the value einsum's bchk per head
        (written without a transpose, and its last dimension is the context: a multiple of 32)."""
        if self.neural_engine:
            return (1, self.padded_heads, self.state_head_dim, self.context_length)
        return self.shape

    @property
    def state_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.shape, self.value_shape

    def to_dict(self) -> dict:
        return {
            "layout": "all layers' KV heads stacked on axis 1, padded to a multiple of 32" + (
                "; head_dim padded to a multiple of 32; value_cache is [1, heads, head_dim, context]"
                if self.neural_engine else ""),
            "shape": list(self.shape),
            "value_shape": list(self.value_shape),
            "layer_head_offsets": list(self.offsets),
            "layer_kv_heads": list(self.kv_heads),
            "used_heads": self.used_heads,
        }
