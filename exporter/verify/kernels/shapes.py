"""Shape and data-movement kernels (no arithmetic: values pass through unrounded)."""

from __future__ import annotations

import numpy as np

from exporter.verify.kernels.operands import flags, ints, is_float, norm_axis
from exporter.verify.kernels.registry import ExecutorError, ios17_or_later, register


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
    return _written(op, out, update, _slice_index(out.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask))


def slice_update_in_place(op, x, update, begin, end, stride=None, begin_mask=None, end_mask=None,
                          squeeze_mask=None):
    """slice_update writing into x itself, where nothing reads x's old contents (exporter.verify.in_place)."""
    x = np.asarray(x)
    if not x.flags.writeable:
        return slice_update(op, x, update, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    return _written(op, x, update, _slice_index(x.shape, begin, end, stride, begin_mask, end_mask, squeeze_mask))


def _written(op, out: np.ndarray, update, index: tuple) -> np.ndarray:
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
