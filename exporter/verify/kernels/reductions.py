"""Reduction kernels: reduce_* over axes, argmax/argmin, cumsum."""

from __future__ import annotations

import numpy as np

from exporter.verify.kernels.operands import f32, ints, is_float, norm_axis, numeric
from exporter.verify.kernels.registry import register


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
