"""coremltools' symmetric linear quantization (int4/int8, per block or per channel), bit for bit, in float32.

coremltools computes the scales and the rounding with numpy on the float16 weights, and numpy does
float16 arithmetic an element at a time (about 25 s for 450M's weights at int4). numpy's float16
operations are float32 operations rounded to float16, so the same steps in float32, rounded to
float16 where coremltools' intermediates are float16, give the identical integers and scales at a
fraction of the time. tests/test_blockwise.py compares the two on every shape and edge case we use.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

THREADS = 2
ROWS_PER_STEP = 2048  # bounds the float32 temporaries (a 3B matrix is 100M+ weights)


def block_shape(shape: tuple[int, ...], block_sizes: list[int]) -> tuple[list[int], tuple[int, ...]] | None:
    """coremltools' blocked view of a weight: each axis with a block size splits into (blocks, size);
    returns that shape and the axes min/max reduce over, or None when a block size does not divide."""
    new_shape, reduce_axes = [], []
    for size, block in zip(shape, block_sizes):
        if block > 0:
            if size % block:
                return None
            new_shape += [size // block, block]
            reduce_axes.append(len(new_shape) - 1)
        else:
            new_shape.append(size)
            reduce_axes.append(len(new_shape) - 1)
    return new_shape, tuple(reduce_axes)


def quantize_symmetric(weight: np.ndarray, quant_min: int, quant_max: int, int_dtype,
                       block_sizes: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """(integers, float16 scales) as coremltools' compute_qparams_by_dtype gives them for LINEAR_SYMMETRIC
    on a float16 weight; None where it gives None (a block size that does not divide)."""
    if weight.dtype != np.float16 or weight.ndim != 2 or block_shape(weight.shape, block_sizes) is None:
        return None
    row_block = block_sizes[0]
    # Steps of whole row blocks; min/max over whole columns (row block 0) needs every row at once.
    step = max(ROWS_PER_STEP // row_block, 1) * row_block if row_block else weight.shape[0]
    data = np.empty(weight.shape, dtype=int_dtype)

    def quantize_rows(start: int) -> np.ndarray:
        rows = weight[start:start + step]
        shape, reduce_axes = block_shape(rows.shape, block_sizes)
        view = rows.reshape(shape).astype(np.float32)
        max_abs = np.abs(view).max(axis=reduce_axes, keepdims=True)
        # Rounded to float16 where coremltools' values are: (max - (-max)), then / (qmax - qmin), then w / scale.
        span = (max_abs * 2).astype(np.float16).astype(np.float32)
        scale = (span / np.float32(quant_max - quant_min)).astype(np.float16)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # as coremltools' own steps
            np.divide(view, scale.astype(np.float32), out=view)
            np.copyto(view, view.astype(np.float16))
            np.rint(view, out=view)
            np.clip(view, quant_min, quant_max, out=view)
            data[start:start + step] = view.reshape(rows.shape)  # 0/0 of an all-zero block casts as theirs
        return scale

    with ThreadPoolExecutor(THREADS) as pool:  # numpy releases the GIL in these loops
        scales = list(pool.map(quantize_rows, range(0, weight.shape[0], step)))
    scale = np.concatenate(scales, axis=0)
    scale_shape = [size // block if block else 1 for size, block in zip(weight.shape, block_sizes)]
    return data, scale.reshape(scale_shape)


def compress(original_data: np.ndarray, dtype, mode: str, block_sizes: list[int]):
    """coremltools' `blockwise_compress_by_dtype` result (QuantParams) for signed symmetric modes on float16
    weights; None where this does not apply (the caller then asks coremltools)."""
    from coremltools.converters.mil.mil import types
    from coremltools.optimize._utils import QuantParams, get_quant_range_by_dtype

    if isinstance(dtype, str):
        dtype = types.string_to_builtin(dtype)
    if mode != "LINEAR_SYMMETRIC" or not types.is_int(dtype) or dtype.is_unsigned():
        return None
    quant_min, quant_max = get_quant_range_by_dtype(dtype, mode)
    shape = original_data.shape
    # A 1x1 conv weight [out, in, 1, 1] (the ane target) is its matrix: the unit axes are blocks of one.
    conv = original_data.ndim == 4 and shape[2:] == (1, 1) and list(block_sizes[2:]) in ([0, 0], [1, 1])
    matrix = original_data.reshape(shape[:2]) if conv else original_data
    result = quantize_symmetric(matrix, quant_min, quant_max, types.nptype_from_builtin(dtype),
                                list(block_sizes[:2] if conv else block_sizes))
    if result is None:
        return None
    data, scale = result
    if conv:
        data, scale = data.reshape(shape), scale.reshape(scale.shape + (1, 1))
    return QuantParams(data=data, scale=scale, offset=None, nbits=np.uint8(dtype.get_bitwidth()))
