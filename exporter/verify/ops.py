"""NumPy kernels for MIL (Core ML ML-program) ops, following each op's documented semantics.

`OPS` maps an op type to a kernel `kernel(op, **inputs)`: `op` is an `OpInfo` (the op's name,
opset version, output count, input dtypes), `inputs` are its input values by MIL input name. Optional
inputs the program leaves out arrive as the kernel's keyword defaults, which mirror the op
definitions in `coremltools/converters/mil/mil/ops/defs/iOS15..iOS18`.

Precision contract (the executor relies on it):
- a kernel receives float inputs as float16 (values the program stored) or float32 (constants,
  which are cached as exact float32 copies of their float16 values);
- arithmetic is done in float32 (`f32` widens float16 exactly), integer math in the integer type;
- the kernel returns its result in compute precision and the executor stores it in the dtype the
  program declares for the output (float16 rounding, ±inf overflow), so kernels never round.
  For +, -, ×, ÷ and sqrt, one float32 operation rounded once to float16 equals the float16
  operation itself (float32 has more than 2·11 + 2 mantissa bits), so those ops are bit-exact.
- kernels never modify an input in place: values are shared freely between ops and states.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from exporter.errors import ExportError

OPS: dict[str, Callable] = {}


class ExecutorError(ExportError):
    """The program cannot be executed as given: bad inputs, or an op failed."""


class UnsupportedOpError(ExecutorError):
    """The program uses an op type that has no kernel here; executing it anyway would be a guess."""

    def __init__(self, op_type: str, op_name: str):
        super().__init__(f"op type {op_type!r} (op {op_name!r}) has no NumPy kernel; add one to exporter/verify/ops.py")
        self.op_type = op_type
        self.op_name = op_name


def register(*op_types: str):
    def decorate(kernel: Callable) -> Callable:
        for op_type in op_types:
            OPS[op_type] = kernel
        return kernel

    return decorate


class StateSlot:
    """One Core ML state during a call: what `read_state` sees and `coreml_update_state` replaces."""

    def __init__(self, name: str, values: dict[str, np.ndarray], dtype: np.dtype):
        self.name = name
        self._values = values
        self.dtype = dtype

    def read(self) -> np.ndarray:
        return self._values[self.name]

    def write(self, value: np.ndarray) -> None:
        self._values[self.name] = np.asarray(value, dtype=self.dtype)


# --- helpers -----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class OpInfo:
    """What a kernel may know about its op besides its input values.

    The executor keeps this instead of the pymil op, so the loaded program (and its float16
    weights) can be freed once the functions are compiled.
    """

    op_type: str
    name: str
    opset: int  # iOS opset of the op's definition (coremltools targets compare as ints); 0: unversioned
    output_count: int
    input_dtypes: dict  # declared NumPy dtype of each tensor input, by input name

    @classmethod
    def of(cls, op) -> "OpInfo":
        from coremltools.converters.mil.mil import types

        try:
            opset = int(op.opset_version)
        except Exception:  # dialect ops (coreml_update_state) are not versioned
            opset = 0
        dtypes = {}
        for name, var in op.inputs.items():
            if not isinstance(var, (list, tuple)) and (types.is_tensor(var.sym_type) or types.is_scalar(var.sym_type)):
                dtypes[name] = np.dtype(types.nptype_from_builtin(var.dtype))
        return cls(op.op_type, op.name, opset, len(op.outputs), dtypes)


@functools.cache
def _ios17() -> int:
    import coremltools as ct

    return int(ct.target.iOS17)


def ios17_or_later(op: OpInfo) -> bool:
    return op.opset >= _ios17()


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


def _unary_float(fn):
    def kernel(op, x):
        return fn(f32(x))

    return kernel


def _unary_any(fn):
    def kernel(op, x):
        (a,) = numeric(x)
        return fn(a)

    return kernel


def _sigmoid(x):
    # exp of a non-positive argument only: no float32 overflow for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    import torch  # NumPy has no erf; torch is already a dependency

    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


register("abs")(_unary_any(np.abs))
register("sign")(_unary_any(np.sign))
register("square")(_unary_any(np.square))
register("exp")(_unary_float(np.exp))
register("exp2")(_unary_float(np.exp2))
register("sqrt")(_unary_float(np.sqrt))
register("sin")(_unary_float(np.sin))
register("cos")(_unary_float(np.cos))
register("tan")(_unary_float(np.tan))
register("tanh")(_unary_float(np.tanh))
register("sinh")(_unary_float(np.sinh))
register("cosh")(_unary_float(np.cosh))
register("asin")(_unary_float(np.arcsin))
register("acos")(_unary_float(np.arccos))
register("atan")(_unary_float(np.arctan))
register("atanh")(_unary_float(np.arctanh))
register("floor")(_unary_float(np.floor))
register("ceil")(_unary_float(np.ceil))
register("round")(_unary_float(np.round))  # ties to even, as coremltools' value inference
register("erf")(_unary_float(_erf))
register("sigmoid")(_unary_float(_sigmoid))
register("silu")(_unary_float(lambda x: x * _sigmoid(x)))
register("relu")(_unary_float(lambda x: np.maximum(x, np.float32(0))))
register("relu6")(_unary_float(lambda x: np.clip(x, np.float32(0), np.float32(6))))
register("softplus")(_unary_float(lambda x: np.logaddexp(np.float32(0), x)))
register("softsign")(_unary_float(lambda x: x / (1 + np.abs(x))))


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


_CAST_DTYPES = {
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
    target = _CAST_DTYPES.get(str(dtype))
    if target is None:
        raise ExecutorError(f"cast {op.name!r}: unknown dtype {dtype!r}")
    x = np.asarray(x)
    if target is np.bool_:
        return x != 0
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(target)  # float -> int truncates towards zero (NumPy, as coremltools' value inference)


# --- activations -------------------------------------------------------------------------------


@register("gelu")
def gelu(op, x, mode="EXACT"):
    x = f32(x)
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x**3)
        return 0.5 * x * (1 + np.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(np.float32(1.702) * x)
    if mode == "EXACT":
        return 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2))))
    raise ExecutorError(f"gelu {op.name!r}: unknown mode {mode!r}")


@register("leaky_relu")
def leaky_relu(op, x, alpha):
    x = f32(x)
    return np.where(x >= 0, x, f32(alpha) * x)


@register("elu")
def elu(op, x, alpha):
    x = f32(x)
    return np.where(x > 0, x, f32(alpha) * np.expm1(np.minimum(x, 0)))


@register("softmax")
def softmax(op, x, axis=-1):
    x = f32(x)
    axis = int(axis)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


# --- reductions --------------------------------------------------------------------------------


def _reduction(fn, keeps_integers=False):
    def kernel(op, x, axes=None, keep_dims=False):
        values = np.asarray(x) if keeps_integers and not is_float(x) else f32(x)
        axis = None if axes is None else tuple(ints(axes))
        return fn(values, axis=axis, keepdims=bool(keep_dims))

    return kernel


register("reduce_sum")(_reduction(np.sum, keeps_integers=True))
register("reduce_prod")(_reduction(np.prod, keeps_integers=True))
register("reduce_max")(_reduction(np.max, keeps_integers=True))
register("reduce_min")(_reduction(np.min, keeps_integers=True))
register("reduce_mean")(_reduction(np.mean))
register("reduce_sum_square")(_reduction(lambda x, **kw: np.sum(np.square(x), **kw)))
register("reduce_l1_norm")(_reduction(lambda x, **kw: np.sum(np.abs(x), **kw)))
register("reduce_l2_norm")(_reduction(lambda x, **kw: np.sqrt(np.sum(np.square(x), **kw))))
register("reduce_log_sum")(_reduction(lambda x, **kw: np.log(np.sum(x, **kw))))


def _log_sum_exp(x, axis=None, keepdims=False):
    peak = np.max(x, axis=axis, keepdims=True)
    total = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=axis)


register("reduce_log_sum_exp")(_reduction(_log_sum_exp))


@register("reduce_argmax")
def reduce_argmax(op, x, axis=-1, keep_dims=False, output_dtype="int32"):
    return np.argmax(np.asarray(x), axis=int(axis), keepdims=bool(keep_dims))


@register("reduce_argmin")
def reduce_argmin(op, x, axis=-1, keep_dims=False, output_dtype="int32"):
    return np.argmin(np.asarray(x), axis=int(axis), keepdims=bool(keep_dims))


@register("cumsum")
def cumsum(op, x, axis=0, exclusive=False, reverse=False):
    (values,) = numeric(x)
    axis = norm_axis(axis, values.ndim)
    if reverse:
        values = np.flip(values, axis)
    total = np.cumsum(values, axis=axis)
    if exclusive:  # shift by one along the axis: the first sum is 0
        leading = [slice(None)] * total.ndim
        leading[axis] = slice(0, -1)
        zeros = np.zeros_like(np.take(total, [0], axis=axis))
        total = np.concatenate([zeros, total[tuple(leading)]], axis=axis)
    return np.flip(total, axis) if reverse else total


# --- linear algebra and normalization ----------------------------------------------------------


LARGE_PRODUCT = 1 << 20  # multiply-adds from which torch's threaded BLAS pays off


def _tensor(array: np.ndarray):
    import torch

    array = np.asarray(array)
    if not array.flags.writeable:  # torch wants writable memory; it never writes here
        array = array.copy()
    return torch.from_numpy(array)


def blas_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 a @ b with NumPy broadcasting; large 2-D products (weights) go to torch.

    Measured on 2 busy cores: for the matrix-vector products of decode, torch was 4x faster than
    NumPy's OpenBLAS, whose worker threads also cost ~1 ms per wake-up between small products
    (the executor keeps them at one thread). Batched products (attention) stay in NumPy: torch's
    thread pool made those up to 100x slower.
    """
    if a.ndim == 2 and b.ndim == 2 and a.shape[0] * a.shape[1] * b.shape[1] >= LARGE_PRODUCT:
        return (_tensor(a) @ _tensor(b)).numpy()
    return np.matmul(a, b)


@register("linear")
def linear(op, x, weight, bias=None):
    x = f32(x)
    weight = f32(weight)  # constants arrive as cached float32, so this is free per call
    rows = x.reshape(-1, x.shape[-1])
    out = blas_matmul(rows, weight.T)  # weight.T is a view: BLAS reads it transposed, no copy
    if bias is not None:
        out += f32(bias)
    return out.reshape(x.shape[:-1] + (weight.shape[0],))


@register("matmul")
def matmul(op, x, y, transpose_x=False, transpose_y=False):
    x, y = f32(x), f32(y)
    if transpose_x and x.ndim > 1:
        x = np.swapaxes(x, -1, -2)
    if transpose_y and y.ndim > 1:
        y = np.swapaxes(y, -1, -2)
    return blas_matmul(x, y)


@register("layer_norm")
def layer_norm(op, x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    x = f32(x)
    axes = tuple(range(x.ndim)) if axes is None else tuple(norm_axis(a, x.ndim) for a in ints(axes))
    centered = x - np.mean(x, axis=axes, keepdims=True)
    out = centered / np.sqrt(np.mean(np.square(centered), axis=axes, keepdims=True) + f32(epsilon))
    normalized_shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if gamma is not None:
        out = out * f32(gamma).reshape(normalized_shape)
    if beta is not None:
        out = out + f32(beta).reshape(normalized_shape)
    return out


@register("scaled_dot_product_attention")
def scaled_dot_product_attention(op, query, key, value, attn_mask=None):
    query, key, value = f32(query), f32(key), f32(value)
    scores = blas_matmul(query, np.swapaxes(key, -1, -2)) / np.float32(math.sqrt(query.shape[-1]))
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + f32(mask)
    return blas_matmul(softmax(op, scores, axis=-1), value)


# --- shape and data movement (no arithmetic: values pass through unrounded) ---------------------


@register("identity")
def identity(op, x):
    return x


@register("shape")
def shape(op, x):
    return np.array(np.shape(x), dtype=np.int32)


@register("reshape")
def reshape(op, x, shape):
    x = np.asarray(x)
    target = ints(shape)
    if 0 in target:
        target = _copy_zero_dims(op, list(x.shape), target)
    return x.reshape(target)


def _copy_zero_dims(op, from_shape: list[int], to_shape: list[int]) -> list[int]:
    """A 0 in a reshape target copies an input dimension (iOS17+: counted from the right, 1 if none)."""
    if ios17_or_later(op):
        result = list(to_shape)
        for offset in range(1, len(to_shape) + 1):
            if to_shape[-offset] == 0:
                result[-offset] = from_shape[-offset] if offset <= len(from_shape) else 1
        return result
    if len(to_shape) != len(from_shape):
        raise ExecutorError(f"reshape {op.name!r}: 0 in shape needs len(shape) == rank(x) before iOS17")
    return [from_shape[i] if s == 0 else s for i, s in enumerate(to_shape)]


@register("transpose")
def transpose(op, x, perm):
    return np.transpose(x, ints(perm))


@register("expand_dims")
def expand_dims(op, x, axes):
    x = np.asarray(x)
    axes = ints(axes)
    out_rank = x.ndim + len(axes)
    new_shape = list(x.shape)
    for axis in sorted(norm_axis(a, out_rank) for a in axes):
        new_shape.insert(axis, 1)
    return x.reshape(new_shape)


@register("squeeze")
def squeeze(op, x, axes=None):
    x = np.asarray(x)
    if axes is None:
        return np.squeeze(x)
    # PyTorch behaviour (documented): named axes that are not of size 1 stay.
    drop = {norm_axis(a, x.ndim) for a in ints(axes) if x.shape[norm_axis(a, x.ndim)] == 1}
    return x.reshape([d for i, d in enumerate(x.shape) if i not in drop])


def _slice_index(shape, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    """The NumPy index for MIL slice_by_index / slice_update arguments."""
    rank = len(shape)
    begin, end = ints(begin), ints(end)
    stride = [1] * rank if stride is None else ints(stride)
    begin_mask, end_mask, squeeze_mask = flags(begin_mask, rank), flags(end_mask, rank), flags(squeeze_mask, rank)
    index = []
    for axis in range(rank):
        start = 0 if begin_mask[axis] else begin[axis]
        if squeeze_mask[axis]:
            index.append(start)  # pure index: the axis disappears
        else:
            stop = None if end_mask[axis] else end[axis]
            index.append(slice(None if begin_mask[axis] else start, stop, stride[axis]))
    return tuple(index)


@register("slice_by_index")
def slice_by_index(op, x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    x = np.asarray(x)
    return x[_slice_index(x.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask)]


@register("slice_by_size")
def slice_by_size(op, x, begin, size):
    x = np.asarray(x)
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(ints(begin), ints(size)))
    return x[index]


@register("slice_update")
def slice_update(op, x, update, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    out = np.array(x, copy=True)  # a fresh array: x may be a state snapshot still read elsewhere
    index = _slice_index(out.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    region = out[index]
    if np.shape(update) != region.shape and np.size(update) != region.size:
        raise ExecutorError(f"slice_update {op.name!r}: update {np.shape(update)} does not fit slice {region.shape}")
    out[index] = np.reshape(update, region.shape)
    return out


@register("concat")
def concat(op, values, axis, interleave=False):
    values = [np.asarray(v) for v in values]
    if all(v.ndim == 0 for v in values):
        return np.stack(values)  # scalars concatenate into a vector
    axis = norm_axis(axis, values[0].ndim)
    if interleave:
        stacked = np.stack(values, axis=axis + 1)
        merged = list(values[0].shape)
        merged[axis] *= len(values)
        return stacked.reshape(merged)
    return np.concatenate(values, axis=axis)


@register("stack")
def stack(op, values, axis):
    return np.stack([np.asarray(v) for v in values], axis=int(axis))


@register("split")
def split(op, x, axis, num_splits=None, split_sizes=None):
    x = np.asarray(x)
    axis = norm_axis(axis, x.ndim)
    if split_sizes is not None:
        sizes = ints(split_sizes)
    else:
        count = int(num_splits) if num_splits is not None else op.output_count
        if x.shape[axis] % count:
            raise ExecutorError(f"split {op.name!r}: {x.shape[axis]} does not split evenly into {count}")
        sizes = [x.shape[axis] // count] * count
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@register("tile")
def tile(op, x, reps):
    return np.tile(x, ints(reps))


@register("fill")
def fill(op, shape, value=0.0):
    return np.full(ints(shape), value)


@register("fill_like")
def fill_like(op, ref_tensor, value=0.0):
    return np.full(np.shape(ref_tensor), value)


@register("range_1d")
def range_1d(op, end, start, step):
    if is_float(start) or is_float(end) or is_float(step):
        return np.arange(float(start), float(end), float(step), dtype=np.float64)
    return np.arange(int(start), int(end), int(step))


@register("band_part")
def band_part(op, x, lower=-1, upper=-1):
    x = np.asarray(x)
    lower, upper = int(lower), int(upper)
    rows, cols = x.shape[-2:]
    distance = np.arange(rows)[:, None] - np.arange(cols)[None, :]  # m - n
    keep = ((lower < 0) | (distance <= lower)) & ((upper < 0) | (-distance <= upper))
    return np.where(keep, x, np.zeros((), x.dtype))


@register("pad")
def pad(op, x, pad, mode="constant", constant_val=0.0):
    x = np.asarray(x)
    amounts = ints(pad)
    padded_axes = len(amounts) // 2  # pad covers the last N axes
    widths = [(0, 0)] * (x.ndim - padded_axes) + [
        (amounts[2 * i], amounts[2 * i + 1]) for i in range(padded_axes)
    ]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=constant_val)
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    raise ExecutorError(f"pad {op.name!r}: unknown mode {mode!r}")


def _checked_indices(op, indices, size: int) -> np.ndarray:
    """Gather indices as intp. iOS17+ treats negative indices as out of bounds (behaviour undefined on
    device, so the executor refuses them); iOS15/16 wraps indices in [-size, 0)."""
    indices = np.asarray(indices).astype(np.intp)
    lowest = 0 if ios17_or_later(op) else -size
    if indices.size and (indices.min() < lowest or indices.max() >= size):
        bad = indices[(indices < lowest) | (indices >= size)]
        raise ExecutorError(
            f"{op.op_type} {op.name!r}: index {int(bad.reshape(-1)[0])} out of bounds for size {size} "
            f"(valid: {lowest}..{size - 1}); the device result would be undefined"
        )
    return indices


@register("gather")
def gather(op, x, indices, axis=0, batch_dims=0, validate_indices=False):
    x = np.asarray(x)
    axis = norm_axis(axis, x.ndim)
    indices = _checked_indices(op, indices, x.shape[axis])
    batch_dims = int(batch_dims)
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    # Leading batch_dims axes of x and indices are paired: gather separately in each batch.
    batch_shape = x.shape[:batch_dims]
    count = int(np.prod(batch_shape))
    xs = x.reshape((count,) + x.shape[batch_dims:])
    idx = indices.reshape((count,) + indices.shape[batch_dims:])
    parts = [np.take(xs[i], idx[i], axis=axis - batch_dims) for i in range(count)]
    return np.stack(parts).reshape(batch_shape + parts[0].shape)


@register("gather_along_axis")
def gather_along_axis(op, x, indices, axis=0, validate_indices=False):
    x = np.asarray(x)
    axis = norm_axis(axis, x.ndim)
    indices = _checked_indices(op, indices, x.shape[axis])
    return np.take_along_axis(x, indices, axis=axis)


# --- states ------------------------------------------------------------------------------------


@register("read_state")
def read_state(op, input: StateSlot):
    return input.read()  # no copy needed: kernels never write into their inputs


@register("coreml_update_state")
def coreml_update_state(op, state: StateSlot, value):
    state.write(value)
    return value


# --- compressed weights (constexpr_*: expanded once per executor, then cached) -------------------


def _per_block(data: np.ndarray, param: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`data` and `param` reshaped so that each param value broadcasts over its block of data.

    Block size along axis i is data.shape[i] // param.shape[i] (MIL blockwise rule), so data is
    viewed as (p0, b0, p1, b1, ...) and param as (p0, 1, p1, 1, ...): no repeated copies.
    """
    if data.ndim != param.ndim:
        raise ExecutorError(f"block parameter rank {param.ndim} != data rank {data.ndim}")
    data_shape, param_shape = [], []
    for d, p in zip(data.shape, param.shape):
        if d % p:
            raise ExecutorError(f"block parameter shape {param.shape} does not tile data shape {data.shape}")
        data_shape += [p, d // p]
        param_shape += [p, 1]
    return data.reshape(data_shape), param.reshape(param_shape)


def shift_scale(data, scale, offset=None) -> np.ndarray:
    """scale * (data - offset), blockwise; int4/uint4 data arrive unpacked as int8/uint8."""
    data = np.asarray(data)
    values, scale_b = _per_block(data.astype(np.float32), f32(scale))
    if offset is not None:
        _, offset_b = _per_block(data, f32(offset))
        values = values - offset_b
    return (values * scale_b).reshape(data.shape)


@register("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(op, data, scale, offset=None):
    return shift_scale(data, scale, offset)


def lut_lookup(indices, lut, vector_axis=None) -> np.ndarray:
    """iOS18 LUT expansion: lut is [groups per indices axis..., palette, vector_size].

    Each indices axis is split into lut.shape[axis] equal groups, each with its own palette; a
    vector entry (vector_size > 1) fills vector_size consecutive elements along vector_axis.
    """
    indices = np.asarray(indices)
    lut = np.asarray(lut)
    rank = indices.ndim
    palette, vector_size = lut.shape[-2:]
    blocked_shape, table_shape = [], []
    for n, groups in zip(indices.shape, lut.shape[:rank]):
        blocked_shape += [groups, n // groups]
        table_shape += [groups, 1]
    picks = indices.reshape(blocked_shape).astype(np.intp)[..., None, None]
    table = lut.reshape(table_shape + [palette, vector_size])
    values = np.take_along_axis(table, picks, axis=-2).reshape(indices.shape + (vector_size,))
    if vector_size == 1:
        return values[..., 0]
    axis = norm_axis(vector_axis, rank)
    values = np.moveaxis(values, -1, axis + 1)  # each index's vector right after its position
    merged = list(indices.shape)
    merged[axis] *= vector_size
    return values.reshape(merged)


def unpack_bits(packed, nbits: int, count: int) -> np.ndarray:
    """iOS16 packing: n-bit fields filled from the least significant bit of each byte upwards."""
    packed = np.asarray(packed).astype(np.uint8).reshape(-1)
    if 8 % nbits == 0:
        shifts = (np.arange(8 // nbits) * nbits).astype(np.uint8)
        fields = (packed[:, None] >> shifts) & np.uint8((1 << nbits) - 1)
        return fields.reshape(-1)[:count]
    bits = np.unpackbits(packed, bitorder="little")[: count * nbits].reshape(count, nbits)
    return (bits.astype(np.uint16) << np.arange(nbits, dtype=np.uint16)).sum(axis=1)


@register("constexpr_lut_to_dense")
def constexpr_lut_to_dense(op, indices, lut, vector_axis=None, shape=None):
    if shape is not None:  # iOS16: packed uint8 indices, flat palette, explicit shape
        lut = np.asarray(lut)
        nbits = int(round(math.log2(lut.size)))
        out_shape = ints(shape)
        return lut[unpack_bits(indices, nbits, int(np.prod(out_shape)))].reshape(out_shape)
    return lut_lookup(indices, lut, vector_axis)


def scatter_nonzero(nonzero_data, mask) -> np.ndarray:
    """Dense tensor of mask's shape: nonzero_data fills the set mask positions in row-major order."""
    mask = np.asarray(mask)
    nonzero_data = np.asarray(nonzero_data)
    dense = np.zeros(mask.shape, dtype=nonzero_data.dtype)
    dense[mask != 0] = nonzero_data
    return dense


@register("constexpr_sparse_to_dense")
def constexpr_sparse_to_dense(op, nonzero_data, mask, shape=None):
    if shape is not None:  # iOS16: bit-packed flat mask plus explicit shape
        out_shape = ints(shape)
        mask = unpack_bits(mask, 1, int(np.prod(out_shape))).reshape(out_shape)
    return scatter_nonzero(nonzero_data, mask)


@register("constexpr_lut_to_sparse")
def constexpr_lut_to_sparse(op, indices_mask, indices_nonzero_data, lut, vector_axis=None):
    mask = np.asarray(indices_mask)
    dense = lut_lookup(scatter_nonzero(indices_nonzero_data, mask), lut, vector_axis)
    vector_size = np.shape(lut)[-1]
    if vector_size > 1:
        mask = np.repeat(mask, vector_size, axis=norm_axis(vector_axis, mask.ndim))
    return mask, dense[mask != 0]


@register("constexpr_sparse_blockwise_shift_scale")
def constexpr_sparse_blockwise_shift_scale(op, data_mask, nonzero_data, scale, offset=None):
    mask = np.asarray(data_mask)
    dense = shift_scale(scatter_nonzero(nonzero_data, mask), scale, offset)
    return mask, dense[mask != 0]


@register("constexpr_affine_dequantize")
def constexpr_affine_dequantize(op, quantized_data, zero_point, scale, axis):
    """iOS16: scale * (data - zero_point), with scalar or per-`axis` vector scale / zero point."""
    data = np.asarray(quantized_data)
    axis = norm_axis(axis, data.ndim)

    def along_axis(param):
        param = f32(param)
        return param if param.ndim == 0 else param.reshape([-1 if i == axis else 1 for i in range(data.ndim)])

    return (data.astype(np.float32) - along_axis(zero_point)) * along_axis(scale)


@register("constexpr_cast")
def constexpr_cast(op, source_val, output_dtype):
    return np.asarray(source_val).astype(_CAST_DTYPES[str(output_dtype)])
