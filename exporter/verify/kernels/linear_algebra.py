"""Linear algebra and normalization kernels: linear, 1x1 conv, matmul, einsum, layer_norm, attention."""

from __future__ import annotations

import math

import numpy as np

from exporter.verify.kernels.activations import softmax
from exporter.verify.kernels.operands import as_dtype, f32, ints, norm_axis
from exporter.verify.kernels.registry import ExecutorError, register

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


@register("conv")
def conv(op, x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """The Neural Engine graph's projections: 1x1, stride 1, one group, on x [B, in, H, W]."""
    weight = f32(weight)
    if weight.shape[2:] != (1, 1) or int(groups) != 1 or any(v != 1 for v in ints(strides if strides is not None
                                                                                   else [1])):
        raise ExecutorError(f"conv {op.name}: only 1x1 convolutions with stride 1 and one group are supported "
                            f"(weight {weight.shape}, groups {groups}); add the general case to the kernel")
    x = f32(x)
    batch, channels, height, width = x.shape
    columns = x.reshape(batch, channels, height * width)
    out = np.stack([blas_matmul(weight[:, :, 0, 0], columns[b]) for b in range(batch)])
    if bias is not None:
        out += f32(bias)[None, :, None]
    return out.reshape(batch, weight.shape[0], height, width)


@register("einsum")
def einsum(op, values, equation):
    """MIL's einsum (the Neural Engine graph's per-head attention: bkhc,bchq->bkhq and its value product)."""
    return np.einsum(str(equation), *(f32(v) for v in values), optimize=True)


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
    """Squares and sums them in float16, as a float16 device may: a square or a sum of squares beyond 65504
    is inf and the output turns 0 or NaN. Pessimistic on purpose: the export chooses this op for an RMSNorm
    only where the preflight's peaks keep that sum far below 65504 (exporter.graph.norm_forms), so an input
    beyond them fails verification instead of passing on float32 arithmetic the device may not have."""
    x = f32(x)
    axes = tuple(range(x.ndim)) if axes is None else tuple(norm_axis(a, x.ndim) for a in ints(axes))
    centered = x - np.mean(x, axis=axes, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        squares = f32(as_dtype(np.square(centered), np.float16))  # inf beyond float16's 65504
        total = f32(as_dtype(np.sum(squares, axis=axes, keepdims=True), np.float16))
        count = np.float32(np.prod([x.shape[a] for a in axes]))
        out = centered / np.sqrt(total / count + f32(epsilon))
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
