"""OpenELM with a LoRA adapter applied, as PEFT applies it (dropout off): the reference adapter functions are checked
against, and the merge that `--merge-adapter` bakes into the weights.

A Linear's output gains x·downᵀ·upᵀ·scale; a token's embedding row gains downᵀ[id]·upᵀ·scale, while the tied
output projection keeps reading the base table (PEFT's lora.Embedding exposes its base layer's weight). DoRA
rescales each output row of W + scale·up·down to its learned magnitude.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from exporter.checkpoint.adapters import Adapter, LowRank
from exporter.errors import ExportError
from exporter.model.config import OpenELMConfig
from exporter.model.openelm import OpenELM


def module_shapes(config: OpenELMConfig) -> dict[str, tuple[int, int]]:
    """(out, in) of every adaptable module; the embedding's is (dim, vocab), as PEFT's B and A see it."""
    shapes = {"transformer.token_embeddings": (config.model_dim, config.vocab_size)}
    for i, (q, kv, hidden) in enumerate(zip(config.num_query_heads, config.num_kv_heads, config.ffn_dims)):
        prefix = f"transformer.layers.{i}."
        shapes[prefix + "attn.qkv_proj"] = ((q + 2 * kv) * config.head_dim, config.model_dim)
        shapes[prefix + "attn.out_proj"] = (config.model_dim, q * config.head_dim)
        shapes[prefix + "ffn.proj_1"] = (2 * hidden, config.model_dim)
        shapes[prefix + "ffn.proj_2"] = (config.model_dim, hidden)
    return shapes


def check_adapter(adapter: Adapter, config: OpenELMConfig) -> None:
    """Every adapted module exists in this model with the shapes the adapter's matrices need."""
    shapes = module_shapes(config)
    for module, pair in adapter.modules.items():
        if module not in shapes:
            raise ExportError(f"adapter {adapter.name}: it adapts {module}, which this {config.num_transformer_layers}"
                              "-layer model does not have; the adapter was trained for another model")
        out, columns = shapes[module]
        if pair.down.shape[1] != columns or pair.up.shape[0] != out:
            raise ExportError(f"adapter {adapter.name}: {module} needs A [r, {columns}] and B [{out}, r], the adapter "
                              f"has {list(pair.down.shape)} and {list(pair.up.shape)}; it was trained for another "
                              "model (another size?)")
        if pair.magnitude is not None and tuple(pair.magnitude.shape) != (out,):
            raise ExportError(f"adapter {adapter.name}: {module}'s DoRA magnitude has shape "
                              f"{list(pair.magnitude.shape)}, expected [{out}]")


class LoRALinear(nn.Module):
    """base(x) + x·downᵀ·upᵀ (up already holds the scale); DoRA: the sum's rows rescaled to `magnitude`. Calls the
    base Linear itself, so a streamed reference (exporter.model.streamed) still reads its weight on the way."""

    def __init__(self, base: nn.Linear, down: torch.Tensor, up: torch.Tensor, magnitude: torch.Tensor | None = None):
        super().__init__()
        self.base = base
        self.down = nn.Parameter(down, requires_grad=False)  # [r, in]
        self.up = nn.Parameter(up, requires_grad=False)  # [out, r], times the adapter's scale
        self.magnitude = None if magnitude is None else nn.Parameter(magnitude, requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = F.linear(F.linear(x, self.down), self.up)
        if self.magnitude is None:
            return self.base(x) + low_rank
        # PEFT's DoRA: (m / ‖W + s·BA‖) · (W x + s·B A x), the norm per output row.
        norm = (self.weight + self.up @ self.down).norm(dim=1)
        return (self.magnitude / norm) * (self.base(x) + low_rank)


class LoRAEmbedding(nn.Module):
    """table[ids] + downᵀ[ids]·upᵀ; `.weight` stays the base table, which the tied output projection reads."""

    def __init__(self, base: nn.Embedding, rows: torch.Tensor, up: torch.Tensor):
        super().__init__()
        self.weight = base.weight
        self.rows = nn.Parameter(rows, requires_grad=False)  # [vocab, r]: PEFT's Aᵀ
        self.up = nn.Parameter(up, requires_grad=False)  # [dim, r], times the adapter's scale

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.weight) + F.linear(F.embedding(input_ids, self.rows), self.up)


def scaled_up(pair: LowRank) -> torch.Tensor:
    return pair.up * pair.scale


def with_adapter(model: OpenELM, adapter: Adapter, parameter=None) -> OpenELM:
    """A copy of `model` that shares every base weight and runs `adapter`'s low-rank paths.

    parameter(pair, kind, tensor) gives the tensor each path holds (kind: down, up, rows); by default the adapter's
    own. The export graph passes placeholders for matrices it fills in after conversion."""
    parameter = parameter or (lambda pair, kind, tensor: tensor)
    adapted = copy.copy(model)
    adapted._modules = dict(model._modules)
    adapted.transformer = copy.copy(model.transformer)
    adapted.transformer._modules = dict(model.transformer._modules)
    layers = [copy.copy(layer) for layer in model.transformer.layers]
    for layer, original in zip(layers, model.transformer.layers):
        layer._modules = dict(original._modules)
        for part in ("attn", "ffn"):
            layer._modules[part] = copy.copy(original._modules[part])
            layer._modules[part]._modules = dict(original._modules[part]._modules)
    adapted.transformer.layers = nn.ModuleList(layers)
    adapted.adapter = adapter  # what it runs (the export graph names the adapter's matrices after it)
    for module, pair in adapter.modules.items():
        up = parameter(pair, "up", scaled_up(pair))
        if pair.embedding:
            rows = parameter(pair, "rows", pair.down.t().contiguous())
            adapted.transformer.token_embeddings = LoRAEmbedding(model.transformer.token_embeddings, rows, up)
            continue
        owner_path, attribute = module.rsplit(".", 1)
        owner = adapted.get_submodule(owner_path)
        base = owner._modules[attribute]
        owner._modules[attribute] = LoRALinear(base, parameter(pair, "down", pair.down), up, pair.magnitude)
    return adapted


def merged_weight(weight: torch.Tensor, pair: LowRank) -> torch.Tensor:
    """W + scale·B·A (DoRA: each row then rescaled to its magnitude), in float32: what --merge-adapter stores."""
    merged = weight.float() + scaled_up(pair) @ pair.down
    if pair.magnitude is not None:
        merged = merged * (pair.magnitude / merged.norm(dim=1))[:, None]
    return merged
