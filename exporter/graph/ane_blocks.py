"""Neural Engine building blocks: 1x1-conv projections, channel norms, RoPE and per-head attention on (B, C, 1, S).

Each block follows one of Apple's Neural Engine authoring rules (apple/coreai-models,
skills/skills/model-authoring/references/neural_engine_rules.md); the comment at each says which.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_SCALED, LAYER_NORM = "max_scaled", "layer_norm"
NORM_FORMS = (MAX_SCALED, LAYER_NORM)


class Projection(nn.Module):
    """A checkpoint's Linear as a 1x1 Conv2d (ANE rule: nn.Linear decomposes into ops that may leave the Neural
    Engine). The weight is the Linear's own storage seen as [out, in, 1, 1]: same bytes, same name."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        out_features, in_features = linear.weight.shape
        self.weight = nn.Parameter(linear.weight.detach().view(out_features, in_features, 1, 1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight)  # [1, in, 1, T] -> [1, out, 1, T]


class ChannelNorm(nn.Module):
    """RMSNorm over one axis of a (B, C, 1, S)-style tensor, in the form the preflight chose for it.

    max_scaled: divides by max|x| before squaring, safe at any float16 magnitude (exporter.graph.norm).
    layer_norm: the high-level op (ANE rule: prefer high-level ops) on [x, -x], whose mean is exactly 0 and
    variance exactly mean(x²), so it is RMSNorm; it squares x in float16, so only where |x| stays far below 256.
    """

    def __init__(self, weight: torch.Tensor, eps: float, axis: int, rank: int, form: str):
        super().__init__()
        if form not in NORM_FORMS:
            raise ValueError(f"unknown norm form {form!r}")
        shape = [1] * rank
        shape[axis] = weight.numel()
        # ANE rule (RMSNorm): the weight broadcasts along the normalized axis, e.g. (1, D, 1, 1).
        self.weight = nn.Parameter(weight.detach().view(shape), requires_grad=False)
        self.eps, self.axis, self.form = eps, axis, form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == MAX_SCALED:
            return max_scaled_norm(x, self.weight, self.eps, self.axis)
        size = x.shape[self.axis]
        mirrored = torch.cat((x, -x), dim=self.axis)  # mean 0: layer norm's variance is mean(x²)
        # The transposes around layer_norm fold into one layer_norm over `axis` (exporter.coreml.layer_norm_axis).
        normed = F.layer_norm(mirrored.transpose(self.axis, -1), (2 * size,), eps=self.eps).transpose(self.axis, -1)
        return normed.narrow(self.axis, 0, size) * self.weight


def max_scaled_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, axis: int) -> torch.Tensor:
    """exporter.graph.norm's float16-safe RMSNorm, over `axis` (no transposes: reductions run on any axis)."""
    s = x.abs().amax(dim=axis, keepdim=True) + 2.0**-14  # float16: > 0 without a clip
    eps_term = (math.sqrt(eps) / s) ** 2  # float16: squares a number ≤ 16.4, never eps/s² directly
    mean_square = (x / s).pow(2).mean(dim=axis, keepdim=True) + eps_term
    return x * (torch.rsqrt(mean_square) / s) * weight


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on x [1, heads, head_dim, T] with cos/sin [1, 1, head_dim, T] given as inputs (ANE rule: no table
    indexed by position inside the graph); sin is signed for the swapped halves, so no negation here."""
    half = x.shape[2] // 2
    swapped = torch.cat((x[:, :, half:], x[:, :, :half]), dim=2)
    return x * cos + swapped * sin


def attend_per_head(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                    groups: int) -> torch.Tensor:
    """Causal attention one KV head at a time (ANE rule: no fused multi-head path; GQA by KV-head index).

    q [1, num_q, head_dim, T] scaled; keys [1, kv, context, head_dim]; values [1, kv, head_dim, context];
    mask [1, context, 1, groups * T] additive (the call's mask repeated for each query head of a group).
    The `groups` query heads that read one KV head go in as groups * T query columns of one single-head
    attention, so each einsum multiplies one head's keys by queries, never several heads' at once.
    Returns [1, num_q * head_dim, 1, T].
    """
    kv, head_dim, tokens = keys.shape[1], q.shape[2], q.shape[3]
    # [1, kv * g, hd, T] -> [1, kv, hd, g, T] -> per KV head [1, hd, 1, g*T]: bchq (rank 5: the ANE maximum)
    stacked = q.reshape(1, kv, groups, head_dim, tokens).transpose(2, 3).reshape(1, kv * head_dim, 1, groups * tokens)
    queries = stacked.split(head_dim, dim=1)
    per_key = keys.transpose(1, 2).split(1, dim=2)  # [1, context, 1, head_dim] each: bkhc
    per_value = values.reshape(1, kv * head_dim, 1, values.shape[3]).split(head_dim, dim=1)  # bchk
    outputs = []
    for query, key, value in zip(queries, per_key, per_value):
        # ANE rule: K·Q as bchq,bkhc->bkhq, scores (1, key, 1, query), softmax over the key channels.
        weights = (torch.einsum("bchq,bkhc->bkhq", query, key) + mask).softmax(dim=1)
        # bchk,bkhq->bchq: the value product as one native einsum (values kept head_dim-major in the state).
        outputs.append(torch.einsum("bchk,bkhq->bchq", value, weights))  # [1, hd, 1, g*T]
    y = torch.cat(outputs, dim=1).reshape(1, kv, head_dim, groups, tokens).transpose(2, 3)  # [1, kv, g, hd, T]
    return y.reshape(1, kv * groups * head_dim, 1, tokens)
