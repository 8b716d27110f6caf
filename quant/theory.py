"""What a package should weigh: Σ weights × bits + scales and tables, plus the other float16 constants."""

from __future__ import annotations

import hashlib

import numpy as np

from quant.program import mil_program, weight_matrix_vars


def weight_matrix_shapes(mlmodel) -> dict[str, tuple[int, int]]:
    """Shape of every weight matrix (the `weight` of a `linear`), keyed by the op that makes it: a const,
    or a constexpr when conversion already compressed it (calibrated layers)."""
    shapes = {}
    for function in mil_program(mlmodel).functions.values():
        for var in weight_matrix_vars(function):
            source = var.op
            if source is not None and (source.op_type == "const" or source.op_type.startswith("constexpr_")):
                shapes[source.name] = tuple(int(d) for d in var.shape[:2])  # a 1x1 conv weight: [out, in, 1, 1]
    return shapes


def other_constant_bytes(mlmodel) -> int:
    """float16 constants that are not weight matrices (rotary tables, norms, biases), counted once each."""
    names = set(weight_matrix_shapes(mlmodel))
    seen, total = set(), 0
    for function in mil_program(mlmodel).functions.values():
        for op in function.operations:
            value = op.outputs[0].val if op.op_type == "const" else None
            if op.name in names or not isinstance(value, np.ndarray) or value.dtype != np.float16:
                continue
            if any(child.op_type.startswith("constexpr_") for child in op.outputs[0].child_ops):
                continue  # scales / tables of a weight compressed at conversion: counted with the weight
            key = hashlib.sha256(value.tobytes()).hexdigest()
            if key not in seen:
                seen.add(key)
                total += value.nbytes
    return total


def theoretical_sizes(mlmodel, compression, weight_shapes: dict | None = None) -> dict:
    """weight_shapes: the matrices by the names they will have, when the program still holds placeholders."""
    weights = compression.theoretical_weight_bytes(weight_shapes or weight_matrix_shapes(mlmodel))
    other = other_constant_bytes(mlmodel)
    return {"theoretical_bytes": weights + other, "weight_matrix_bytes": weights, "other_constant_bytes": other}
