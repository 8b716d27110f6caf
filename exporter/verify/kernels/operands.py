"""Operand helpers shared by the kernels: compute precision for floats, MIL int/bool lists, axes."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

# From this many elements float16 <-> float32 conversions go through torch's vectorized (F16C) code, on one
# thread: 1.5-3x faster than NumPy's, and torch's two threads made them up to 30x slower on a busy 2-core
# machine. Both are IEEE conversions (widening exact, narrowing to nearest even, ±inf past 65504): the same
# bits for every float16 and every float32 value (checked exhaustively once; tests/verify checks a sample).
TORCH_CONVERSION_ELEMENTS = 1 << 12
_FLOAT_PAIRS = {(np.dtype(np.float16), np.dtype(np.float32)), (np.dtype(np.float32), np.dtype(np.float16))}


def as_dtype(x: np.ndarray, dtype) -> np.ndarray:
    """x.astype(dtype), the same values and memory order, with float16 <-> float32 done by torch when large."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if (x.dtype, dtype) not in _FLOAT_PAIRS or x.size < TORCH_CONVERSION_ELEMENTS:
        return x.astype(dtype)
    if x.flags.c_contiguous:
        return _torch_converted(x, dtype)
    if x.flags.f_contiguous:  # keep Fortran order, as astype does: a matmul reads its operands as laid out
        return _torch_converted(x.T, dtype).T
    return x.astype(dtype)


def _torch_converted(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    import torch

    with one_torch_thread():
        return as_torch(x).to(torch.float16 if dtype == np.float16 else torch.float32).numpy()


def as_torch(x: np.ndarray):
    """A torch view of `x`, for elementwise work that only reads it."""
    import torch

    with warnings.catch_warnings():  # read-only weights: torch warns about writes it will not do
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x)


@contextmanager
def one_torch_thread():
    """torch on one thread inside the block: elementwise work gains nothing from a second thread on a busy
    2-core machine and can wait long for it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def f32(x) -> np.ndarray:
    """Compute precision for a float operand: float16 widens to float32 exactly."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else as_dtype(x, np.float32)


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
