"""OpenELM in plain PyTorch: the reference every export is checked against.

Module and parameter names mirror Apple's checkpoints (`transformer.layers.{i}.attn.qkv_proj`
...), so a Hub state dict loads without renaming. Float32 by default; the norms and rotary
embeddings compute in float32 whatever the weight dtype, as Apple's code does.

The layers are written once. The numerics that differ on device (how a norm is computed, how
RoPE is applied, where keys and values are kept, how attention is computed) come from a
`Context` passed down the layers: `ReferenceContext` here, `exporter.graph.stateful.DeviceContext`
in the graph that gets exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from exporter.model.config import OpenELMConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [T, head_dim] for absolute `positions`, half-rotation layout, float32."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (xf * cos + rotated * sin).type_as(x)


class KVCache:
    """Keys and values (after q/k-norm and RoPE) of every token seen so far, per layer."""

    def __init__(self, num_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat((self.keys[layer], k), dim=2)
            v = torch.cat((self.values[layer], v), dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class Context(Protocol):
    """What the layers leave to whoever runs them, for one pass over T new tokens.

    `tokens` is T as the attention read it from its input: traced, the export graph's slices and
    reshapes use that very value.
    """

    def norm(self, x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
        """x normalized by `norm` (its weight and eps)."""

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """RoPE at the new tokens' positions, x [B, heads, T, head_dim]."""

    def cache(self, layer: int, k: torch.Tensor, v: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the new keys and values [B, kv, T, head_dim]; return all the layer's [B, kv, S, head_dim]."""

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int) -> torch.Tensor:
        """Causal attention of q [B, num_q, T, head_dim] over k, v [B, kv, S, head_dim]: [B, num_q, T, head_dim]."""


@dataclass(eq=False)
class ReferenceContext:
    """The reference's numerics: float32 norms, `apply_rotary`, a growing `KVCache`, GQA by repeated keys."""

    cos: torch.Tensor  # [T, head_dim]
    sin: torch.Tensor  # [T, head_dim]
    mask: torch.Tensor  # [T, S] bool: query t may see key s
    kv: KVCache | None = None
    config: OpenELMConfig | None = None  # the per-layer head counts, as plain ints

    @classmethod
    def causal(cls, config: OpenELMConfig, past: int, seq: int, cache: KVCache | None = None, **fields):
        """The context of `seq` new tokens at positions past .. past + seq - 1, after `past` cached ones."""
        positions = torch.arange(past, past + seq)
        cos, sin = rotary_tables(positions, config.head_dim, config.rope_freq_constant)
        # Causal mask over [cached + new] keys: query at position p sees keys 0..p.
        mask = torch.arange(past + seq)[None, :] <= positions[:, None]
        return cls(cos, sin, mask, cache, config, **fields)

    def norm(self, x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
        return norm(x)

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        return apply_rotary(x, self.cos, self.sin)

    def cache(self, layer: int, k: torch.Tensor, v: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (k, v) if self.kv is None else self.kv.append(layer, k, v)

    def groups(self, layer: int, q: torch.Tensor, k: torch.Tensor) -> int:
        """Query heads per KV head: from the config's ints when known (traced, a shape quotient would
        become a float tensor that coremltools' tile refuses), else from the shapes."""
        if self.config is not None:
            return self.config.num_query_heads[layer] // self.config.num_kv_heads[layer]
        return q.shape[1] // k.shape[1]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int) -> torch.Tensor:
        # Grouped-query attention: KV head j serves query heads j*g .. j*g+g-1.
        groups = self.groups(layer, q, k)
        k = k.repeat_interleave(groups, dim=1)  # [B, num_q, S, head_dim]
        v = v.repeat_interleave(groups, dim=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)


class Attention(nn.Module):
    def __init__(self, config: OpenELMConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.head_dim = config.head_dim
        self.num_q = config.num_query_heads[layer]
        self.num_kv = config.num_kv_heads[layer]
        self.qkv_proj = nn.Linear(config.model_dim, (self.num_q + 2 * self.num_kv) * self.head_dim, bias=False)
        self.q_norm = RMSNorm(self.head_dim, config.norm_eps)
        self.k_norm = RMSNorm(self.head_dim, config.norm_eps)
        self.out_proj = nn.Linear(self.num_q * self.head_dim, config.model_dim, bias=False)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        batch, tokens = len(x), x.shape[1]  # len(): a plain int, so the export traces its batch of 1 as a constant
        heads = self.qkv_proj(x).view(batch, tokens, self.num_q + 2 * self.num_kv, self.head_dim).transpose(1, 2)
        q, k, v = heads.split([self.num_q, self.num_kv, self.num_kv], dim=1)  # [B, heads, T, head_dim]
        q = ctx.rotate(ctx.norm(q, self.q_norm))
        k = ctx.rotate(ctx.norm(k, self.k_norm))
        k, v = ctx.cache(self.layer, k, v, tokens)  # [B, num_kv, S, head_dim]
        # [B, num_q, T, head_dim] -> [B, T, num_q * head_dim]
        y = ctx.attend(self.layer, q, k, v, tokens).transpose(1, 2).reshape(batch, tokens, self.num_q * self.head_dim)
        return self.out_proj(y)


class FeedForward(nn.Module):
    def __init__(self, config: OpenELMConfig, layer: int):
        super().__init__()
        hidden = config.ffn_dims[layer]
        self.proj_1 = nn.Linear(config.model_dim, 2 * hidden, bias=False)  # rows: gate, then up
        self.proj_2 = nn.Linear(hidden, config.model_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.proj_1(x).chunk(2, dim=-1)  # [B, T, hidden] each
        return self.proj_2(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: OpenELMConfig, layer: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.model_dim, config.norm_eps)
        self.attn = Attention(config, layer)
        self.ffn_norm = RMSNorm(config.model_dim, config.norm_eps)
        self.ffn = FeedForward(config, layer)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        # .forward, not a module call: traced, a module call becomes a sub-graph and changes the exported program.
        h = x + self.attn.forward(ctx.norm(x, self.attn_norm), ctx)
        return h + self.ffn(ctx.norm(h, self.ffn_norm))


class Transformer(nn.Module):
    def __init__(self, config: OpenELMConfig):
        super().__init__()
        self.token_embeddings = nn.Embedding(config.vocab_size, config.model_dim)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_transformer_layers))
        self.norm = RMSNorm(config.model_dim, config.norm_eps)


class OpenELM(nn.Module):
    def __init__(self, config: OpenELMConfig):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the output projection is tied: counted once

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None,
                ctx: Context | None = None) -> torch.Tensor:
        """Logits [B, T, vocab] (float32) for `input_ids` [B, T] following the `cache`d tokens.

        A `ctx` replaces the reference context built from `cache` (it carries its own cache, if any).
        """
        if ctx is None:
            past = cache.length if cache is not None else 0
            ctx = ReferenceContext.causal(self.config, past, input_ids.shape[1], cache)
        x = self.transformer.token_embeddings(input_ids)  # [B, T, dim]
        for layer in self.transformer.layers:
            x = layer(x, ctx)
        x = self.transformer.norm(x)
        return F.linear(x, self.transformer.token_embeddings.weight).float()

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, eos_token_id: int | None = None) -> torch.Tensor:
        """Greedy decoding with the KV cache; returns prompt + new tokens [B, T + n] (stops early at EOS for B=1)."""
        cache = KVCache(self.config.num_transformer_layers)
        tokens = input_ids
        logits = self(input_ids, cache)
        for _ in range(max_new_tokens):
            next_token = logits[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat((tokens, next_token), dim=1)
            if eos_token_id is not None and bool((next_token == eos_token_id).all()):
                break
            if tokens.shape[1] >= self.config.max_context_length:
                break
            logits = self(next_token, cache)
        return tokens
