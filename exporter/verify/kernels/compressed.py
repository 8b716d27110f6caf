"""Compressed-weight kernels (constexpr_*): expanded once per executor, then cached."""

from __future__ import annotations

import math

import numpy as np

from exporter.verify.kernels.elementwise import CAST_DTYPES
from exporter.verify.kernels.operands import as_torch, f32, ints, norm_axis, one_torch_thread
from exporter.verify.kernels.registry import ExecutorError, register


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
    """scale * (data - offset), blockwise; int4/uint4 data arrive unpacked as int8/uint8.

    In float32 by torch: the same IEEE operations as NumPy, 2-3x faster over blocks of broadcast scales."""
    import torch

    data = np.asarray(data)
    blocked, scale_b = _per_block(data, f32(scale))
    with one_torch_thread():
        values = as_torch(blocked).to(torch.float32)
        if offset is not None:
            values = values - as_torch(_per_block(data, f32(offset))[1])
        return (values * as_torch(scale_b)).reshape(data.shape).numpy()


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
    return np.asarray(source_val).astype(CAST_DTYPES[str(output_dtype)])
