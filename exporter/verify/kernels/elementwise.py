"""Elementwise kernels: binary arithmetic and comparisons, logic, unary math, clip, cast."""

from __future__ import annotations

import numpy as np

from exporter.verify.kernels.operands import as_dtype, f32, is_float, numeric
from exporter.verify.kernels.registry import ExecutorError, OpInfo, register

# --- elementwise binary ------------------------------------------------------------------------


def _binary(fn):
    def kernel(op, x, y):
        a, b = numeric(x, y)
        return fn(a, b)

    return kernel


register("add")(_binary(np.add))
register("sub")(_binary(np.subtract))
register("mul")(_binary(np.multiply))
register("maximum")(_binary(np.maximum))
register("minimum")(_binary(np.minimum))
register("floor_div")(_binary(np.floor_divide))  # rounds towards -inf, like Python's //
register("mod")(_binary(np.mod))  # sign of the divisor, like Python's %
register("equal")(_binary(np.equal))
register("not_equal")(_binary(np.not_equal))
register("greater")(_binary(np.greater))
register("greater_equal")(_binary(np.greater_equal))
register("less")(_binary(np.less))
register("less_equal")(_binary(np.less_equal))


@register("real_div")
def real_div(op, x, y):
    if is_float(x) or is_float(y):
        return f32(x) / f32(y)
    return np.asarray(x, np.float64) / np.asarray(y, np.float64)  # int / int: exact quotient, stored as declared


@register("pow")
def pow_(op, x, y):
    a, b = numeric(x, y)
    if b.ndim == 0 and b == 2:
        return a * a  # the common x**2: one correctly rounded product, much faster than powf
    return np.power(a, b)


@register("logical_and")
def logical_and(op, x, y):
    return np.logical_and(x, y)


@register("logical_or")
def logical_or(op, x, y):
    return np.logical_or(x, y)


@register("logical_xor")
def logical_xor(op, x, y):
    return np.logical_xor(x, y)


@register("logical_not")
def logical_not(op, x):
    return np.logical_not(x)


@register("select")
def select(op, cond, a, b):
    return np.where(np.asarray(cond).astype(bool), a, b)


# --- elementwise unary -------------------------------------------------------------------------


def unary_float(fn):
    """A kernel applying `fn` in float32 (shared with the activations)."""

    def kernel(op, x):
        return fn(f32(x))

    return kernel


def _unary_any(fn):
    def kernel(op, x):
        (a,) = numeric(x)
        return fn(a)

    return kernel


def erf(x: np.ndarray) -> np.ndarray:
    import torch  # NumPy has no erf; torch is already a dependency

    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


register("abs")(_unary_any(np.abs))
register("sign")(_unary_any(np.sign))
register("square")(_unary_any(np.square))
register("exp")(unary_float(np.exp))
register("exp2")(unary_float(np.exp2))
register("sqrt")(unary_float(np.sqrt))
register("sin")(unary_float(np.sin))
register("cos")(unary_float(np.cos))
register("tan")(unary_float(np.tan))
register("tanh")(unary_float(np.tanh))
register("sinh")(unary_float(np.sinh))
register("cosh")(unary_float(np.cosh))
register("asin")(unary_float(np.arcsin))
register("acos")(unary_float(np.arccos))
register("atan")(unary_float(np.arctan))
register("atanh")(unary_float(np.arctanh))
register("floor")(unary_float(np.floor))
register("ceil")(unary_float(np.ceil))
register("round")(unary_float(np.round))  # ties to even, as coremltools' value inference
register("erf")(unary_float(erf))


def _default_eps(op: OpInfo, value: float):
    # The op definitions cast the default epsilon to x's dtype (1e-12 is 0 in float16).
    return op.input_dtypes["x"].type(value)


@register("rsqrt")
def rsqrt(op, x, epsilon=None):
    eps = _default_eps(op, 1e-12) if epsilon is None else epsilon
    return 1.0 / np.sqrt(f32(x) + f32(eps))  # epsilon inside the root


@register("inverse")
def inverse(op, x, epsilon=None):
    eps = _default_eps(op, 1e-4) if epsilon is None else epsilon
    return 1.0 / (f32(x) + f32(eps))


@register("log")
def log(op, x, epsilon=None):
    eps = _default_eps(op, 1e-45) if epsilon is None else epsilon
    return np.log(f32(x) + f32(eps))


@register("clip")
def clip(op, x, alpha, beta):
    return np.minimum(np.maximum(f32(x), f32(alpha)), f32(beta))


@register("threshold")
def threshold(op, x, alpha):
    return np.maximum(f32(x), f32(alpha))


CAST_DTYPES = {
    "fp16": np.float16,
    "fp32": np.float32,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "bool": np.bool_,
}


@register("cast")
def cast(op, x, dtype):
    target = CAST_DTYPES.get(str(dtype))
    if target is None:
        raise ExecutorError(f"cast {op.name!r}: unknown dtype {dtype!r}")
    x = np.asarray(x)
    if target is np.bool_:
        return x != 0
    with np.errstate(invalid="ignore", over="ignore"):
        return as_dtype(x, target)  # float -> int truncates towards zero (NumPy, as coremltools' value inference)
