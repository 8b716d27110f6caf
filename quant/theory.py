"""What a package should weigh: Σ weights × bits + scales and tables, plus the other float16 constants."""

from __future__ import annotations

import hashlib

import numpy as np

from quant.recipes import Compression, weight_matrix_names


def weight_matrix_shapes(mlmodel) -> dict[str, tuple[int, int]]:
    """Shape of every weight matrix of an uncompressed converted program, by const name."""
    names = set(weight_matrix_names(mlmodel))
    shapes = {}
    for function in mlmodel._mil_program.functions.values():
        for op in function.operations:
            if op.name in names:
                shapes[op.name] = tuple(int(d) for d in op.outputs[0].shape)
    return shapes


def other_constant_bytes(mlmodel) -> int:
    """float16 constants that are not weight matrices (rotary tables, norms, biases), counted once each."""
    names = set(weight_matrix_names(mlmodel))
    seen, total = set(), 0
    for function in mlmodel._mil_program.functions.values():
        for op in function.operations:
            value = op.outputs[0].val if op.op_type == "const" else None
            if op.name in names or not isinstance(value, np.ndarray) or value.dtype != np.float16:
                continue
            key = hashlib.sha256(value.tobytes()).hexdigest()
            if key not in seen:
                seen.add(key)
                total += value.nbytes
    return total


def theoretical_sizes(mlmodel, compression: Compression) -> dict:
    weights = compression.theoretical_weight_bytes(weight_matrix_shapes(mlmodel))
    other = other_constant_bytes(mlmodel)
    return {"theoretical_bytes": weights + other, "weight_matrix_bytes": weights, "other_constant_bytes": other}
