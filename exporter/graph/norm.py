"""RMSNorm in the float16-safe form the export graph uses."""

from __future__ import annotations

import math

import torch


def rms_norm_fp16_safe(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm that never squares a large number, for float16 (x² overflows once |x| > 256).

    With s = max|x|: mean((x/s)²) lies in [1/dim, 1], so squaring cannot overflow, and
    rsqrt(mean((x/s)²) + eps/s²) / s is exactly 1 / rms(x) in real arithmetic. x itself is
    multiplied by that factor (not x/s), so small channels next to a massive one keep their
    precision instead of sinking into float16 subnormals.
    """
    # Any positive s gives the same result; adding float16's smallest normal keeps it above zero
    # (an all-zero row) without a clip, whose float32-max bound would overflow in float16.
    s = x.abs().amax(dim=-1, keepdim=True) + 2.0**-14
    eps_term = (math.sqrt(eps) / s) ** 2  # float16: squares a number ≤ 16.4, never eps/s² directly
    mean_square = (x / s).pow(2).mean(dim=-1, keepdim=True) + eps_term
    return x * (torch.rsqrt(mean_square) / s) * weight
