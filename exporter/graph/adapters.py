"""LoRA adapters in the export graph: each adapter's functions run the base graph plus its low-rank paths.

The base matrices are the very placeholders the base functions hold (exporter.graph.weights: the same name gives
the same matrix), so the package stores them once; each adapter adds only its own matrices, named
`lora_<adapter>_<module>_<down|up|rows_i>` (quant.recipes.ADAPTER_WEIGHTS: they get --adapter-quant's recipe).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from exporter.checkpoint.adapters import Adapter, LowRank
from exporter.checkpoint.tensors import TensorSource
from exporter.graph.ane_blocks import Projection
from exporter.graph.weights import WeightPlan
from exporter.model.lora import LoRAEmbedding, LoRALinear, merged_weight, scaled_up, with_adapter
from exporter.model.names import program_name

SOURCE_PREFIX = "adapter/"  # checkpoint-like names of the adapters' matrices, served by AdapterTensors


def function_name(base: str, adapter: str | None) -> str:
    """prefill → prefill_<adapter> (the base function itself without an adapter)."""
    return base if adapter is None else f"{base}_{adapter}"


def matrix_name(adapter: str, pair: LowRank, kind: str) -> str:
    return f"lora_{adapter}_{program_name(pair.module)}_{kind}"


def source_name(adapter: str, pair: LowRank, kind: str) -> str:
    return f"{SOURCE_PREFIX}{adapter}/{pair.module}/{kind}"


def adapted_model(model, adapter: Adapter, plan: WeightPlan | None):
    """`model` running `adapter` (exporter.model.lora.with_adapter); with a plan, its matrices are placeholders."""
    if plan is None:
        return with_adapter(model, adapter)

    def parameter(pair: LowRank, kind: str, tensor: torch.Tensor):
        if kind == "rows":  # the lookup table goes into the graph as pieces (embedding_low_rank)
            return tensor
        return plan.add(matrix_name(adapter.name, pair, kind), source_name(adapter.name, pair, kind),
                        (0, tensor.shape[0]), tuple(tensor.shape))

    return with_adapter(model, adapter, parameter)


def embedding_low_rank(model, pieces: int, piece_size: int, plan: WeightPlan | None):
    """(row pieces [piece_size, r] each, up [dim, r]) of an adapted embedding, else (None, None). Pieces: the same ANE rule
    as the table's (no dimension over 16384), zero rows past the vocabulary."""
    embedding = model.transformer.token_embeddings
    if not isinstance(embedding, LoRAEmbedding):
        return None, None
    rank = embedding.rows.shape[1]
    if plan is not None:
        adapter = model.adapter
        pair = next(pair for pair in adapter.modules.values() if pair.embedding)
        rows = [plan.add(matrix_name(adapter.name, pair, f"rows_{i}"), source_name(adapter.name, pair, "rows"),
                         (i * piece_size, (i + 1) * piece_size), (piece_size, rank)) for i in range(pieces)]
    else:
        padded = F.pad(embedding.rows.detach(), (0, 0, 0, pieces * piece_size - embedding.rows.shape[0]))
        rows = [nn.Parameter(p, requires_grad=False) for p in padded.split(piece_size)]
    return nn.ParameterList(rows), embedding.up


def low_rank_lookup(input_ids: torch.Tensor, rows: nn.ParameterList, up: torch.Tensor, piece_size: int):
    """downᵀ[ids]·upᵀ [1, T, dim]: each piece gathers its own ids, as the table lookup does."""
    found = 0
    for i, piece in enumerate(rows):
        local = input_ids - i * piece_size
        inside = ((local >= 0) & (local < piece_size)).unsqueeze(-1)
        found = found + piece[local.clamp(0, piece_size - 1)] * inside.to(piece.dtype)  # [1, T, r]
    return F.linear(found, up)  # [1, T, r] -> [1, T, dim]


class LowRankProjection(Projection):
    """A LoRA Linear as 1x1 convs (ANE rule: convs, not Linear): the base conv on the shared weight, plus
    conv(conv(x, down), up); up holds the scale (one multiply fewer; a power-of-two scale is exact in float16)."""

    def __init__(self, lora: LoRALinear):
        super().__init__(lora)  # the base weight as Projection holds it (LoRALinear.weight is the base Linear's)
        out_features, in_features = lora.weight.shape
        rank = lora.down.shape[0]
        self.down = nn.Parameter(lora.down.detach().view(rank, in_features, 1, 1), requires_grad=False)
        self.up = nn.Parameter(lora.up.detach().view(out_features, rank, 1, 1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [1, in, 1, T] -> [1, r, 1, T] -> [1, out, 1, T]
        return F.conv2d(x, self.weight) + F.conv2d(F.conv2d(x, self.down), self.up)


def projection(module: nn.Module) -> Projection:
    """The Neural Engine form of a checkpoint Linear, with its adapter's path when it has one."""
    if isinstance(module, LoRALinear):
        if module.magnitude is not None:
            raise ValueError("a DoRA path cannot share the base weights: merge it (--merge-adapter)")
        return LowRankProjection(module)
    return Projection(module)


class AdapterTensors:
    """The checkpoint's tensors with the adapters' matrices beside them (SOURCE_PREFIX names), and the merged
    adapter's weights in place of the base matrices it adapts (--merge-adapter)."""

    def __init__(self, tensors: TensorSource, adapters: dict[str, Adapter], merged: Adapter | None = None):
        self.tensors = tensors
        self.expected = tensors.expected  # the checkpoint's: a skeleton is built from these alone
        self.merged = {} if merged is None else {f"{m}.weight": p for m, p in merged.modules.items()}
        self.matrices = {}
        for name, adapter in adapters.items():
            for pair in adapter.modules.values():
                self.matrices[source_name(name, pair, "rows" if pair.embedding else "down")] = (
                    pair.down.t() if pair.embedding else pair.down)
                self.matrices[source_name(name, pair, "up")] = scaled_up(pair)

    def names(self) -> list[str]:
        return self.tensors.names()

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if name in self.matrices:
            return self.matrices[name].to(dtype)
        tensor = self.tensors.read(name, dtype)
        if name in self.merged:
            return merged_weight(tensor, self.merged[name]).to(dtype)
        return tensor


def adapter_bytes(plan: WeightPlan | None, compression, adapters: dict[str, Adapter]) -> dict[str, int]:
    """What each adapter's matrices take in the package, at their recipe (compression.theoretical_weight_bytes)."""
    if plan is None:
        return {}
    return {name: compression.theoretical_weight_bytes({m.name: m.shape for m in plan.matrices
                                                        if m.name.startswith(matrix_prefixes(name))})
            for name in adapters}


def matrix_prefixes(adapter: str) -> tuple[str, ...]:
    """How the adapter's matrix names start (adapter `a` must not claim adapter `a_b`'s)."""
    return tuple(f"lora_{adapter}_{program_name(m)}" for m in ("transformer.layers.", "transformer.token_embeddings"))
