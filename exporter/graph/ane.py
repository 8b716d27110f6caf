"""The Neural Engine graph (`--target ane`): OpenELM laid out to Apple's Neural Engine authoring rules.

Where exporter.graph.stateful runs the reference's layers as they are (the `gpu` target), this graph
holds the same weights (same storage, same names) in the rules' layout:
- activations (B, C, 1, S) and every projection a 1x1 Conv2d (exporter.graph.ane_blocks);
- attention one KV head at a time (its group's query heads as query columns), the mask (1, key, 1, query)
  at -40000;
- RoPE cos/sin and the mask as inputs (exporter.graph.host_inputs): no table gathers, no int32 compares;
- the embedding lookup in its own function (`TokenEmbedding`), sharing the tied table with the output
  projection, so the body gathers nothing;
- prefill writes the KV cache and returns no logits (the rules' prompt_opt): the caller decodes the
  prompt's last token, so the last layer's attention output, its FFN and the vocabulary projection are
  skipped on every prefill call;
- the KV cache stays in Core ML / Core AI States, every state dimension a multiple of 32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from exporter.graph.adapters import low_rank_lookup, projection
from exporter.graph.ane_blocks import MAX_SCALED, ChannelNorm, attend_per_head, rotate
from exporter.graph.cache import CacheLayout
from exporter.graph.chunks import Chunk
from exporter.graph.vocab import vocab_split
from exporter.graph.weights import WeightPlan
from exporter.model.openelm import DecoderLayer, OpenELM


def vocab_parameters(model: OpenELM, chunk: Chunk, weight_plan: WeightPlan | None) -> nn.ParameterList:
    """The tied table as [piece_size, dim, 1, 1] pieces (ANE rule: no dimension over 16384; conv weight layout),
    for the chunks that embed or project to logits; placeholders when the model is a skeleton."""
    config = model.config
    pieces, piece_size = vocab_split(config.vocab_size)
    if not (chunk.takes_ids or chunk.gives_logits):
        return nn.ParameterList()
    if weight_plan is not None:
        flat = weight_plan.vocab_pieces(pieces, piece_size, config.model_dim)
    else:
        table = model.transformer.token_embeddings.weight.detach()
        flat = F.pad(table, (0, 0, 0, pieces * piece_size - config.vocab_size)).split(piece_size)
    return nn.ParameterList(nn.Parameter(p.detach().view(piece_size, config.model_dim, 1, 1), requires_grad=False)
                            for p in flat)


class TokenEmbedding(nn.Module):
    """`forward(input_ids [1, T] int32) -> hidden [1, T, dim]`: the lookup as its own function (ANE rule: the
    embedding apart from the body). Gathers from the very pieces the output projection convolves with."""

    def __init__(self, vocab_pieces: nn.ParameterList, tokens_per_call: int, low_rank=(None, None)):
        super().__init__()
        self.vocab_pieces = vocab_pieces
        self.tokens_per_call = tokens_per_call
        self.piece_size, self.model_dim = vocab_pieces[0].shape[:2]
        # An adapter's embedding path (exporter.graph.adapters.embedding_low_rank): row pieces and up.
        self.low_rank_rows, self.low_rank_up = low_rank

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = 0
        for i, piece in enumerate(self.vocab_pieces):
            local = input_ids - i * self.piece_size
            inside = ((local >= 0) & (local < self.piece_size)).unsqueeze(-1)
            rows = piece[local.clamp(0, self.piece_size - 1)]  # [1, T, dim, 1, 1]: rank 5, the ANE maximum
            x = x + rows.reshape(1, self.tokens_per_call, self.model_dim) * inside.to(rows.dtype)
        if self.low_rank_rows is not None:
            x = x + low_rank_lookup(input_ids, self.low_rank_rows, self.low_rank_up, self.piece_size)
        return x  # [1, T, dim]


class NeuralEngineLayer(nn.Module):
    """One decoder layer's weights in the Neural Engine layout; the names are the checkpoint's."""

    def __init__(self, layer: DecoderLayer, index: int, eps: float, forms: dict[str, str], keys_only: bool = False):
        super().__init__()
        attn, ffn = layer.attn, layer.ffn
        prefix = f"layers.{index}."

        def norm(name: str, weight: torch.Tensor, axis: int) -> ChannelNorm:
            return ChannelNorm(weight, eps, axis, 4, forms.get(prefix + name, MAX_SCALED))

        self.keys_only = keys_only  # prefill's last layer: it only writes its keys and values, and holds no more
        self.attn_norm = norm("attn_norm", layer.attn_norm.weight, 1)  # over the channels of (1, dim, 1, T)
        self.attn = nn.Module()
        self.attn.qkv_proj = projection(attn.qkv_proj)  # an adapter's path beside it, when adapted
        self.attn.k_norm = norm("attn.k_norm", attn.k_norm.weight, 2)  # over head_dim of (1, heads, head_dim, T)
        if not keys_only:
            self.attn.q_norm = norm("attn.q_norm", attn.q_norm.weight, 2)
            self.attn.out_proj = projection(attn.out_proj)
            self.ffn_norm = norm("ffn_norm", layer.ffn_norm.weight, 1)
            self.ffn = nn.Module()
            self.ffn.proj_1, self.ffn.proj_2 = projection(ffn.proj_1), projection(ffn.proj_2)
        self.num_q, self.num_kv, self.head_dim = attn.num_q, attn.num_kv, attn.head_dim


class NeuralEngineOpenELM(nn.Module):
    """`forward(hidden_in [1, T, dim], position [1] int32, rotary [1, T, 2*head_dim], mask [1, T, context])`
    -> logits [1, T, pieces, piece_size] (decode, last chunk), else hidden_out [1, T, dim].

    Writes the T tokens' keys and values at [position, position + T) of the states and attends over the
    whole cache as `mask` allows. With logits=False (prefill) the last chunk stops once the last layer's
    keys and values are written, and returns that layer's normalized input, which nobody needs to read.
    """

    def __init__(self, model: OpenELM, context_length: int, tokens_per_call: int, cache_dtype=torch.float16,
                 chunk: Chunk | None = None, weight_plan: WeightPlan | None = None, exportable: bool = False,
                 norm_forms: dict[str, str] | None = None, logits: bool = True):
        super().__init__()
        config = model.config
        forms = norm_forms or {}
        self.config, self.tokens_per_call, self.exportable, self.logits = config, tokens_per_call, exportable, logits
        self.chunk = chunk or Chunk.whole(config.num_transformer_layers)
        indices = range(self.chunk.start, self.chunk.stop)
        self.layout = CacheLayout(tuple(config.num_kv_heads[i] for i in indices), context_length, config.head_dim,
                                  neural_engine=True)
        prompt_only = not logits and self.chunk.gives_logits  # prefill of the last chunk: no logits, no tail
        self.layers = nn.ModuleDict({
            str(i): NeuralEngineLayer(model.transformer.layers[i], i, config.norm_eps, forms,
                                      keys_only=prompt_only and i == self.chunk.stop - 1) for i in indices})
        if self.chunk.gives_logits and logits:
            self.final_norm = ChannelNorm(model.transformer.norm.weight, config.norm_eps, 1, 4,
                                          forms.get("final_norm", MAX_SCALED))
            self.vocab_pieces = vocab_parameters(model, self.chunk, weight_plan)
        self.groups = config.num_gqa_groups
        self.register_buffer("token_offsets", torch.arange(tokens_per_call, dtype=torch.int32), persistent=False)
        key_shape, value_shape = self.layout.state_shapes
        self.register_buffer("key_cache", torch.zeros(key_shape, dtype=cache_dtype))
        self.register_buffer("value_cache", torch.zeros(value_shape, dtype=cache_dtype))

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[str(self.chunk.start)].attn.qkv_proj.weight.dtype

    def reset_cache(self) -> None:
        self.key_cache.zero_()
        self.value_cache.zero_()

    def forward(self, hidden_in: torch.Tensor, position: torch.Tensor, rotary: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        dtype, half_table = self.dtype, self.config.head_dim
        x = hidden_in.to(dtype).transpose(1, 2).unsqueeze(2)  # [1, T, dim] -> [1, dim, 1, T]: ANE rule, BC1S
        table = rotary.to(dtype).transpose(1, 2).unsqueeze(1)  # [1, T, 2*hd] -> [1, 1, 2*hd, T]
        rope = table[:, :, :half_table], table[:, :, half_table:]  # cos, signed sin: [1, 1, hd, T] each
        mask = mask.to(dtype).transpose(1, 2).unsqueeze(2)  # [1, T, context] -> [1, context, 1, T]: ANE rule
        mask = mask.repeat(1, 1, 1, self.groups)  # [1, context, 1, g*T]: one column block per query head of a group
        for index, layer in self.layers.items():
            x = self.layer(int(index), layer, x, position[0], rope, mask)
        if not self.chunk.gives_logits or not self.logits:
            return x.squeeze(2).transpose(1, 2)  # [1, dim, 1, T] -> [1, T, dim]
        x = self.final_norm.forward(x)
        # ANE rule (no dimension over 16384): one 1x1 conv per vocabulary piece, each [1, piece_size, 1, T].
        rows = torch.cat([F.conv2d(x, piece).transpose(1, 2) for piece in self.vocab_pieces], dim=1)
        return rows.permute(0, 3, 1, 2)  # [1, pieces, piece_size, T] -> [1, T, pieces, piece_size]

    def layer(self, index: int, layer: NeuralEngineLayer, x: torch.Tensor, start: torch.Tensor, rope,
              mask) -> torch.Tensor:
        """One decoder layer on x [1, dim, 1, T] (prefill's last layer: only its keys and values written)."""
        tokens, (num_q, num_kv, head_dim) = x.shape[3], (layer.num_q, layer.num_kv, layer.head_dim)
        h = layer.attn_norm.forward(x)
        # .forward, not a module call: traced, a module call becomes a sub-graph and changes the exported program.
        q, k, v = layer.attn.qkv_proj.forward(h).split([num_q * head_dim, num_kv * head_dim, num_kv * head_dim], 1)
        k = rotate(layer.attn.k_norm.forward(k.reshape(1, num_kv, head_dim, tokens)), *rope)  # [1, kv, hd, T]
        keys, values = self.cache(index, k, v.reshape(1, num_kv, head_dim, tokens), start, tokens)
        if layer.keys_only:
            return h  # prefill's output, which nobody reads: computed anyway
        q = rotate(layer.attn.q_norm.forward(q.reshape(1, num_q, head_dim, tokens)), *rope)
        q = q * (1.0 / math.sqrt(head_dim))  # float16: scale before the dot product
        y = attend_per_head(q, keys, values, mask, self.groups)  # [1, num_q * hd, 1, T]
        h = x + layer.attn.out_proj.forward(y)
        gate, up = layer.ffn.proj_1.forward(layer.ffn_norm.forward(h)).chunk(2, dim=1)  # [1, hidden, 1, T] each
        return h + layer.ffn.proj_2.forward(F.silu(gate) * up)

    def cache(self, index: int, k: torch.Tensor, v: torch.Tensor, start: torch.Tensor, tokens: int):
        """Write k, v [1, kv, hd, T] at [start, start + T); all the layer's keys [1, kv, context, hd] and values
        [1, kv, hd, context], the padding of head_dim (state rule: multiples of 32) left out."""
        first = self.layout.offsets[index - self.chunk.start]
        heads, head_dim = slice(first, first + k.shape[1]), self.config.head_dim
        if self.exportable:  # torch.export: rows written by index (coreai-torch makes index_copy_ a state update)
            slots = start + self.token_offsets
            self.key_cache.narrow(1, first, k.shape[1]).narrow(3, 0, head_dim).index_copy_(
                2, slots, k.transpose(2, 3).to(self.key_cache.dtype))
            self.value_cache.narrow(1, first, k.shape[1]).narrow(2, 0, head_dim).index_copy_(
                3, slots, v.to(self.value_cache.dtype))
        else:  # Core ML States: only a slice assignment into the buffer itself becomes a state update
            self.key_cache[:, heads, start : start + tokens, :head_dim] = k.transpose(2, 3).to(self.key_cache.dtype)
            self.value_cache[:, heads, :head_dim, start : start + tokens] = v.to(self.value_cache.dtype)
        keys = self.key_cache[:, heads, :, :head_dim]
        values = self.value_cache[:, heads, :head_dim]
        return keys.to(k.dtype), values.to(v.dtype)
