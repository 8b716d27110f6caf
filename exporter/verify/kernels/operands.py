"""Operand helpers shared by the kernels: compute precision for floats, MIL int/bool lists, axes."""

from __future__ import annotations

import numpy as np


def f32(x) -> np.ndarray:
    """Compute precision for a float operand: float16 widens to float32 exactly."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float32)


def is_float(x) -> bool:
    return np.asarray(x).dtype.kind == "f"


def numeric(*operands) -> list[np.ndarray]:
    """Operands of an elementwise op: float32 when any is float, else as they are (int32 wraps like MIL int32)."""
    arrays = [np.asarray(x) for x in operands]
    if any(a.dtype.kind == "f" for a in arrays):
        return [f32(a) for a in arrays]
    return arrays


def ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def flags(values, rank: int) -> list[bool]:
    return [False] * rank if values is None else [bool(v) for v in np.asarray(values).reshape(-1)]


def norm_axis(axis, rank: int) -> int:
    axis = int(axis)
    return axis + rank if axis < 0 else axis
