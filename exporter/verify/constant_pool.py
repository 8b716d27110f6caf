"""Constants and expanded compressed weights, shared by all functions of a program."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from exporter.verify.kernels import OPS, OpInfo
from exporter.verify.kernels.operands import as_dtype
from exporter.verify.program_plan import declared_dtype, declared_shape, execute, store

SMALL_CONSTANT_BYTES = 256  # below this a constant's bytes are its own key; above, a digest


def compute_form(value, keep_float16_from: int | None = None):
    """Constants are kept in compute precision: float16 becomes an exact float32 copy, once.

    keep_float16_from: float16 arrays of at least this many elements (weights) stay float16 (half
    the memory; NumPy widens them to float32 exactly inside each op, so results are identical, only
    slower): for models whose float32 weights would not fit next to everything else verification
    holds. None widens every constant.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float16:
        if keep_float16_from is not None and value.size >= keep_float16_from:
            return value
        return as_dtype(value, np.float32)
    if isinstance(value, np.float16):
        return np.float32(value)
    return value


class ConstantPool:
    """Constants and expanded compressed weights, shared across functions by content.

    prefill and decode load separate copies of the same weights; keyed by a digest of their bytes,
    both functions bind the same float32 array, and each compressed weight is expanded once.
    """

    def __init__(self, keep_float16_from: int | None = None):
        self._values: dict[tuple, Any] = {}
        self._known: dict[int, tuple] = {}  # id -> (array, key): an array the functions share is hashed once
        self.expanded = 0
        self.keep_float16_from = keep_float16_from  # see compute_form

    @staticmethod
    def key_of(value) -> tuple:
        if isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)  # keeps 0-d: a scalar and a 1-element vector are different constants
            if array.nbytes <= SMALL_CONSTANT_BYTES:
                data = array.tobytes()
            else:
                # sha256: CPUs of the last years compute it in hardware, ~3x blake2b's speed on this one
                data = hashlib.sha256(np.ascontiguousarray(array).data).digest()
            return ("array", array.dtype.str, array.shape, data)
        return ("python", type(value).__name__, repr(value))

    def constant(self, value) -> tuple[tuple, Any]:
        known = self._known.get(id(value))
        if known is not None and known[0] is value:
            key = known[1]
        else:
            key = self.key_of(value)
            if isinstance(value, np.ndarray) and value.nbytes > SMALL_CONSTANT_BYTES:
                self._known[id(value)] = (value, key)  # holding the array keeps its id from being reused
        if key not in self._values:
            self._values[key] = compute_form(value, self.keep_float16_from)
        return key, self._values[key]

    def expanded_weight(self, op, input_keys: dict[str, tuple], inputs: dict[str, Any]) -> tuple[tuple, list]:
        """The outputs of a constexpr op (stored in their declared dtypes, kept in compute form)."""
        key = ("constexpr", op.op_type, tuple(sorted(input_keys.items())))
        if key not in self._values:
            info = OpInfo.of(op)
            values = execute(info, OPS[op.op_type], inputs)
            self._values[key] = [
                compute_form(store(value, declared_dtype(var), declared_shape(var), info), self.keep_float16_from)
                for value, var in zip(values, op.outputs)
            ]
            self.expanded += 1
        return key, self._values[key]

    def __len__(self) -> int:
        return len(self._values)
