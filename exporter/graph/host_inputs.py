"""What the caller computes for each call of the Neural Engine graph: the rotary table rows and the causal mask.

ANE rules: RoPE cos/sin are computed outside the model and passed in (no table indexed by position inside
the graph), and the mask is an input too, so the body has no comparisons on int32 positions. Both are laid
out (1, T, width) with width >= 32, the alignment the rules ask of inputs, and turned to (1, width, 1, T)
inside the graph. The Swift harness computes the same values (swift_harness ELMKit/NeuralEngineInputs.swift).
"""

from __future__ import annotations

import numpy as np
import torch

from exporter.model.openelm import rotary_tables

MASK_VALUE = -40000.0  # ANE rule: a float16 value that zeroes a softmax weight; the Neural Engine mishandles -inf


def rotary_input(position: int, tokens: int, head_dim: int, base: float) -> np.ndarray:
    """float16 [1, T, 2 * head_dim]: cos, then sin signed for the swapped halves, at positions position..+T-1."""
    cos, sin = rotary_tables(torch.arange(position, position + tokens), head_dim, base)
    half = head_dim // 2
    signed_sin = torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)  # rotate_half(x)·sin == swap(x)·signed_sin
    return torch.cat((cos, signed_sin), dim=-1).to(torch.float16).numpy()[None]


def mask_input(position: int, tokens: int, context_length: int) -> np.ndarray:
    """float16 [1, T, context]: row t lets the token at position + t see key slots 0..position + t."""
    slots = np.arange(context_length)[None, :]
    visible = slots <= position + np.arange(tokens)[:, None]
    return np.where(visible, 0.0, MASK_VALUE).astype(np.float16)[None]


def call_inputs(position: int, tokens: int, manifest: dict) -> dict[str, np.ndarray]:
    """The position, rotary and mask inputs of one body call, from export.json alone."""
    model = manifest["model"]
    return {
        "position": np.array([position], np.int32),
        "rotary": rotary_input(position, tokens, model["head_dim"], model["rope_freq_constant"]),
        "mask": mask_input(position, tokens, manifest["context_length"]),
    }
