"""The graph that gets traced: OpenELM's own layers, run the way Core ML States and the Neural Engine need.

`StatefulOpenELM` runs the reference's `DecoderLayer`s (exporter.model.openelm) with a `DeviceContext`:
- static shapes: every call takes exactly `tokens_per_call` tokens and a start `position`;
- the KV cache lives in two buffers that become Core ML States (see `CacheLayout`);
- the causal mask and rotary tables are computed in the graph from `position`;
- float16-safe norms, and no tensor dimension above 16384 (the vocabulary is split).
Run eagerly in float32 it reproduces the reference model; traced with float16 caches it is
what a backend (exporter.coreml) converts.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from exporter.graph.adapters import embedding_low_rank, low_rank_lookup
from exporter.graph.cache import CacheLayout
from exporter.graph.chunks import Chunk
from exporter.graph.norm import rms_norm_fp16_safe
from exporter.graph.vocab import vocab_split
from exporter.graph.weights import WeightPlan
from exporter.model.openelm import OpenELM, RMSNorm, rotary_tables

MASK_VALUE = -30000.0  # float16: large enough to zero a softmax weight, far from the -65504 edge


class StatefulOpenELM(nn.Module):
    """`forward(input_ids [1, T] int32, position [1] int32) -> logits [1, T, pieces, piece_size]`.

    Writes the new tokens' keys and values into the cache at [position, position + T) and
    attends over the whole cache with a causal mask, so the same graph serves prefill
    (T = prefill length) and decode (T = 1). `position + T` must not exceed the context.
    With a `chunk` of the layers, the input is the previous chunk's hidden states [1, T, dim]
    instead of token ids, and the output is hidden states unless the chunk is the last.
    With a `weight_plan`, `model` is a skeleton and the vocabulary pieces are placeholders too.
    """

    def __init__(self, model: OpenELM, context_length: int, tokens_per_call: int, cache_dtype=torch.float16,
                 chunk: Chunk | None = None, weight_plan: WeightPlan | None = None, exportable: bool = False):
        super().__init__()
        config = model.config
        self.exportable = exportable  # torch.export (Core AI) rather than torch.jit.trace (Core ML): see cache()
        self.config = config
        self.tokens_per_call = tokens_per_call
        self.chunk = chunk or Chunk.whole(config.num_transformer_layers)
        layers = range(self.chunk.start, self.chunk.stop)
        self.layout = CacheLayout(tuple(config.num_kv_heads[i] for i in layers), context_length, config.head_dim)
        # Keyed by the model's layer index, so each const keeps its layer's name in every chunk.
        self.layers = nn.ModuleDict({str(i): model.transformer.layers[i] for i in layers})
        self.final_norm = model.transformer.norm
        self.groups = config.num_gqa_groups
        for i, (q, kv) in enumerate(zip(config.num_query_heads, config.num_kv_heads)):
            if q != kv * self.groups:
                raise ValueError(f"layer {i}: {q} query heads for {kv} KV heads, expected {self.groups} per KV head")

        # Neural Engine: no dimension over 16384, so the (tied) 32000-row embedding is stored as
        # pieces; the embedding lookup and the output projection share them.
        self.pieces, self.piece_size = vocab_split(config.vocab_size)
        table = model.transformer.token_embeddings.weight
        if not (self.chunk.takes_ids or self.chunk.gives_logits):
            pieces = []  # a middle chunk never touches the vocabulary
        elif weight_plan is not None:  # a skeleton: placeholders now, the real rows after conversion
            pieces = weight_plan.vocab_pieces(self.pieces, self.piece_size, config.model_dim)
        else:
            padded = F.pad(table, (0, 0, 0, self.pieces * self.piece_size - config.vocab_size))
            pieces = [nn.Parameter(piece, requires_grad=False) for piece in padded.split(self.piece_size)]
        self.vocab_pieces = nn.ParameterList(pieces)
        self.low_rank_rows, self.low_rank_up = (embedding_low_rank(model, self.pieces, self.piece_size, weight_plan)
                                                if self.chunk.takes_ids else (None, None))
        dtype = model.transformer.layers[self.chunk.start].attn.qkv_proj.weight.dtype

        cos, sin = rotary_tables(torch.arange(context_length), config.head_dim, config.rope_freq_constant)
        half = config.head_dim // 2
        # rotate_half(x) * sin == swap_halves(x) * signed_sin: one concat instead of a negate and a concat.
        signed_sin = torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)
        # Tables in the weights' dtype, so a float16 model traces as float16 throughout.
        self.register_buffer("rope_cos", cos.to(dtype), persistent=False)
        self.register_buffer("rope_sin", signed_sin.to(dtype), persistent=False)
        # Row r of a grouped query block is token r % T; key slot j is visible to it when j <= position + r % T.
        self.register_buffer(
            "row_offsets", (torch.arange(self.groups * tokens_per_call) % tokens_per_call).to(torch.int32)[:, None],
            persistent=False,
        )
        self.register_buffer("token_offsets", torch.arange(tokens_per_call, dtype=torch.int32), persistent=False)
        self.register_buffer("key_slots", torch.arange(context_length, dtype=torch.int32)[None, :], persistent=False)
        self.register_buffer("key_cache", torch.zeros(self.layout.shape, dtype=cache_dtype))
        self.register_buffer("value_cache", torch.zeros(self.layout.shape, dtype=cache_dtype))

    def reset_cache(self) -> None:
        self.key_cache.zero_()
        self.value_cache.zero_()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = 0
        for i, piece in enumerate(self.vocab_pieces):
            local = input_ids - i * self.piece_size
            inside = ((local >= 0) & (local < self.piece_size)).unsqueeze(-1)
            rows = F.embedding(local.clamp(0, self.piece_size - 1), piece)
            x = x + rows * inside.to(rows.dtype)
        if self.low_rank_rows is not None:  # an adapter's embedding path (exporter.graph.adapters)
            x = x + low_rank_lookup(input_ids, self.low_rank_rows, self.low_rank_up, self.piece_size)
        return x

    def forward(self, inputs: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """inputs: token ids [1, T] for the first chunk, else the previous chunk's hidden states [1, T, dim]."""
        start = position[0]
        slots = start + self.token_offsets
        cos = self.rope_cos[slots]
        sin = self.rope_sin[slots]
        visible = self.key_slots <= (start + self.row_offsets)
        x = self.embed(inputs) if self.chunk.takes_ids else inputs.to(self.rope_cos.dtype)
        # Additive mask from scalars (not a select between broadcast constants, which would be stored as weights).
        mask = (1.0 - visible.to(x.dtype)) * MASK_VALUE
        ctx = DeviceContext(self, cos, sin, mask, start)
        for layer in self.layers.values():
            x = layer.forward(x, ctx)  # not a module call: that would trace to a sub-graph, its constants pooled
        if not self.chunk.gives_logits:
            return x
        x = ctx.norm(x, self.final_norm)
        # Neural Engine: one projection per vocabulary piece (≤ 16384 rows), stacked on a new axis
        # so the output has no dimension over 16384; flattening the last two axes gives the vocab.
        return torch.stack([F.linear(x, piece) for piece in self.vocab_pieces], dim=2)


class DeviceContext:
    """The export graph's numerics (exporter.model.openelm.Context) for one call: T tokens at `position`.

    Traced, this is the converted program op for op: its operations keep their order, and the
    local names that name the program's ops (x, cos, sin, mask, y) are kept too.
    """

    def __init__(self, graph: StatefulOpenELM, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                 position: torch.Tensor):
        self.graph = graph
        self.cos, self.sin = cos, sin  # [T, head_dim], sin signed for the swapped halves
        self.mask = mask  # [g*T, context] additive
        self.position = position

    def norm(self, x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
        return rms_norm_fp16_safe(x, norm.weight, norm.eps)  # float16: never squares a large number

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        cos, sin = self.cos, self.sin
        half = x.shape[-1] // 2
        swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
        return x * cos + swapped * sin

    def cache(self, layer: int, k: torch.Tensor, v: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        graph = self.graph
        first = graph.layout.offsets[layer - graph.chunk.start]
        heads = slice(first, first + graph.config.num_kv_heads[layer])
        if graph.exportable:
            # torch.export cannot slice at a data-dependent position: rows written by index instead
            # (coreai-torch turns the in-place index_copy_ into a state update).
            slots = self.position + graph.token_offsets
            count = heads.stop - heads.start
            graph.key_cache.narrow(1, first, count).index_copy_(2, slots, k.to(graph.key_cache.dtype))
            graph.value_cache.narrow(1, first, count).index_copy_(2, slots, v.to(graph.value_cache.dtype))
        else:
            # Core ML States: a slice assignment into the buffer becomes an in-place state update.
            graph.key_cache[:, heads, self.position : self.position + tokens, :] = k.to(graph.key_cache.dtype)
            graph.value_cache[:, heads, self.position : self.position + tokens, :] = v.to(graph.value_cache.dtype)
        return graph.key_cache[:, heads].to(k.dtype), graph.value_cache[:, heads].to(v.dtype)  # [1, kv, context, hd]

    def attend(self, layer: int, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, tokens: int):
        config, mask = self.graph.config, self.mask
        num_q, num_kv, head_dim = config.num_query_heads[layer], config.num_kv_heads[layer], config.head_dim
        # GQA without repeating keys: query heads g*j..g*j+g-1 share KV head j, so the queries
        # are regrouped to [1, kv, g*T, hd] (rank 4, Neural Engine friendly).
        q = q.reshape(1, num_kv, self.graph.groups * tokens, head_dim) * (1.0 / math.sqrt(head_dim))  # float16: scale before the dot product
        scores = torch.matmul(q, keys.transpose(-1, -2)) + mask  # [1, kv, g*T, context]
        y = torch.matmul(scores.softmax(dim=-1), values)  # [1, kv, g*T, hd]
        return y.reshape(1, num_q, tokens, head_dim)  # [1, num_q, T, hd]
