"""Exact 1-D k-means for palettizing weights: one look-up table per group of output channels.

coremltools' default (`OpPalettizerConfig(mode="kmeans")`) clusters each float16 group with its
bundled kmeans1d: exact k-means on the group's distinct values weighted by their counts. This module
computes the same optimum, compiled with numba, all groups of a matrix in parallel on every core.

Why the histogram is exact: the squared error Σ (v - c(v))² depends on each distinct value only
through (value, count), a cluster's best centroid is its count-weighted mean, and equal values share
a cluster. float16 has at most 65,536 distinct values, so a group of any size has a short histogram,
built by counting order-preserving 16-bit keys (no sort).

In 1-D an optimal clustering is k contiguous runs of the sorted values; quant.kmeans_dp finds the
best k runs exactly, with a certificate of optimality (a price per run) or a dynamic programme.

Then the stored table: centroids are rounded to float16 (the table's dtype), every value moves to
its nearest stored centroid and the means are re-rounded, until nothing moves. Neither step can
raise the error, so the table's error is never above the rounded optimum, which is what the default
stores. Nothing is random: the same group always gives the same table.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from quant.kmeans_dp import layered_bounds, penalized_bounds

KEYS = 1 << 16  # order-preserving float16 keys
MAX_POLISH_ROUNDS = 8


# --- float16 keys -----------------------------------------------------------------------------


def _key_values() -> np.ndarray:
    """The value of every key (see `float16_keys`) as float64; NaN keys hold NaN and are never used."""
    keys = np.arange(KEYS, dtype=np.uint32)
    bits = np.where(keys & 0x8000, keys & 0x7FFF, 0xFFFF - keys).astype(np.uint16)
    with np.errstate(invalid="ignore"):
        return bits.view(np.float16).astype(np.float64)


KEY_VALUES = _key_values()


def float16_keys(values: np.ndarray) -> np.ndarray:
    """float16 bit patterns remapped so that integer order is float order (negatives reversed)."""
    bits = np.ascontiguousarray(values, dtype=np.float16).view(np.uint16)
    keys = np.empty(bits.shape, dtype=np.uint16)
    _keys_of(bits.reshape(-1), keys.reshape(-1))
    return keys


@njit(cache=True, inline="always")
def _key(bits):
    if bits == 0x8000:
        return 0x8000  # -0.0 is +0.0: one zero
    return 0xFFFF - bits if bits & 0x8000 else bits | 0x8000


@njit(cache=True)
def _keys_of(bits, keys):
    for e in range(len(bits)):
        keys[e] = _key(bits[e])


# --- one group --------------------------------------------------------------------------------


@njit(cache=True, inline="always", error_model="numpy")
def _round_float16(x):
    """x rounded to the nearest float16 (ties to even), as float64: exact scaling by powers of two."""
    if x == 0.0:
        return 0.0
    _, exponent = math.frexp(x)  # |x| = m * 2**exponent, 0.5 <= m < 1; float16 keeps 11 significant bits
    quantum = max(math.ldexp(1.0, exponent - 11), 2.0**-24)  # below 2**-14 the subnormal step
    return np.rint(x / quantum) * quantum


@njit(cache=True, error_model="numpy")
def _polish(x, counts, bounds):
    """Round the runs' means to float16 and move values to their nearest stored centroid, until stable.

    Returns (table as float64 values of float16, cluster of each distinct value)."""
    n = len(x)
    for _ in range(MAX_POLISH_ROUNDS):
        table = np.empty(len(bounds) - 1)
        used = 0
        for r in range(len(bounds) - 1):
            if bounds[r + 1] > bounds[r]:  # rounding can merge two centroids and empty a run
                weight = np.sum(counts[bounds[r]:bounds[r + 1]])
                mean = np.sum(counts[bounds[r]:bounds[r + 1]] * x[bounds[r]:bounds[r + 1]]) / weight
                table[used] = _round_float16(mean)
                used += 1
        table = table[:used]
        nearest = np.empty(used + 1, dtype=np.int64)
        nearest[0], nearest[used] = 0, n
        for r in range(used - 1):  # values below the midpoint of two centroids go to the lower one
            nearest[r + 1] = np.searchsorted(x, (table[r] + table[r + 1]) / 2)
        if len(nearest) == len(bounds) and np.all(nearest == bounds):
            break
        bounds = nearest
    cluster = np.empty(n, dtype=np.uint8)
    for r in range(used):
        cluster[nearest[r]:nearest[r + 1]] = r
    return table, cluster


@njit(cache=True, error_model="numpy")
def _palettize_group(bits, key_values, k, price, table_out, indices_out):
    """One group: its float16 bit patterns -> table_out[k] (float64 values of float16), indices_out (uint8).

    price: a run's price that certified a similar group, per unit of total error (<= 0: none yet).
    Returns (this group's price per unit of error, penalized passes; MAX_SOLVES + 1: layered fallback;
    -1: the group holds NaN or infinity)."""
    counts_by_key = np.zeros(KEYS, dtype=np.int32)
    for b in bits:
        counts_by_key[_key(b)] += 1
    if np.any(counts_by_key[:0x0400]) or np.any(counts_by_key[0xFC00:]):  # NaNs and infinities
        return price, -1
    present = np.flatnonzero(counts_by_key)
    n = len(present)
    x, counts = np.empty(n), np.empty(n)
    for r in range(n):
        x[r], counts[r] = key_values[present[r]], counts_by_key[present[r]]
    solves = 0
    if n <= k:
        table, cluster = x.copy(), np.arange(n).astype(np.uint8)
    else:
        center = np.sum(counts * x) / np.sum(counts)  # centred sums keep w·x² small: accurate differences
        w, wx, wxx = np.zeros(n + 1), np.zeros(n + 1), np.zeros(n + 1)
        for r in range(n):
            d = x[r] - center
            w[r + 1], wx[r + 1], wxx[r + 1] = w[r] + counts[r], wx[r] + counts[r] * d, wxx[r] + counts[r] * d * d
        total = wxx[n] - wx[n] * wx[n] / w[n]
        bounds, lam, solves = penalized_bounds(w, wx, wxx, k, price * total)
        price = lam / total if total > 0 else price
        if len(bounds) == 0:
            bounds, solves = layered_bounds(w, wx, wxx, k), solves + 1
        table, cluster = _polish(x, counts, bounds)
    table_out[:len(table)] = table
    table_out[len(table):] = table[len(table) - 1]  # fewer centroids than entries: repeat the last
    rank = np.zeros(KEYS, dtype=np.uint8)
    for r in range(n):
        rank[present[r]] = cluster[r]
    for e in range(len(bits)):
        indices_out[e] = rank[_key(bits[e])]
    return price, solves


@njit(cache=True, parallel=True, error_model="numpy")
def _palettize_groups(bits, key_values, k, spans, tables, indices, solves):
    """bits [groups, values per group] (float16 bit patterns) -> tables [groups, k], indices [groups, values].

    Groups run in parallel in a few contiguous spans per thread; within a span each group starts from
    the price that certified the one before (neighbouring groups of a matrix look alike)."""
    groups = bits.shape[0]
    for span in prange(spans):
        price = 0.0
        for g in range(span * groups // spans, (span + 1) * groups // spans):
            price, solves[g] = _palettize_group(bits[g], key_values, k, price, tables[g], indices[g])


# --- public -----------------------------------------------------------------------------------


def _check(values: np.ndarray, nbits: int) -> None:
    if not np.issubdtype(values.dtype, np.floating):
        raise TypeError(f"k-means palettizes floating-point weights, got {values.dtype}")
    if not 1 <= nbits <= 8:
        raise ValueError(f"nbits must be in 1..8 for uint8 indices, got {nbits}")
    if values.size == 0:
        raise ValueError("cannot palettize an empty weight")


def palettize_groups(weight: np.ndarray, nbits: int, group_size: int,
                     passes: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every group of `group_size` output channels (axis 0) of `weight`, clustered in parallel.

    Returns (tables [groups, 2**nbits] in the weight's dtype, indices uint8 shaped like `weight`): group
    g's weights are tables[g][indices] — coremltools' per_grouped_channel layout. Values are clustered as
    float16, the dtype Core ML programs store weights in; wider weights are rounded to float16 first.
    passes: if given, gets each group's number of penalized passes (MAX_SOLVES + 1: the layered fallback ran).
    """
    weight = np.asarray(weight)
    _check(weight, nbits)
    if weight.shape[0] % group_size:
        raise ValueError(f"group size {group_size} does not divide {weight.shape[0]} output channels")
    groups = weight.shape[0] // group_size
    bits = np.ascontiguousarray(weight, dtype=np.float16).view(np.uint16).reshape(groups, -1)
    tables = np.empty((groups, 1 << nbits))
    indices = np.empty(bits.shape, dtype=np.uint8)
    solves = np.zeros(groups, dtype=np.int64)
    spans = min(groups, 4 * get_num_threads())
    _palettize_groups(bits, KEY_VALUES, 1 << nbits, spans, tables, indices, solves)
    if np.any(solves < 0):
        raise ValueError("weights contain NaN or infinity")
    if passes is not None:
        passes.extend(solves.tolist())
    return tables.astype(np.float16).astype(weight.dtype), indices.reshape(weight.shape)


def palettize_blockwise(data: np.ndarray, nbits: int, block_sizes: list[int], channel_axis: int | None,
                        passes: list | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Grouped-channel palettization in the layout coremltools and coreai-opt store: (indices uint8 shaped
    like `data`, tables [..., 2**nbits, 1] with the groups on `channel_axis` and 1 elsewhere).

    block_sizes as their `blockwise_compress` takes them (the one axis whose block is neither 0 nor the
    axis length is the grouped one); None where the group size does not divide the channels.
    """
    group_size = 0
    for axis, block_size in enumerate(block_sizes):
        if block_size not in (0, data.shape[axis]):
            channel_axis, group_size = axis, block_size
    channel_axis = 0 if channel_axis is None else channel_axis % data.ndim
    group_size = group_size or data.shape[channel_axis]
    if data.shape[channel_axis] % group_size:
        return None
    tables, indices = palettize_groups(np.swapaxes(data, 0, channel_axis), nbits, group_size, passes)
    lut = tables.reshape([len(tables)] + [1] * (data.ndim - 1) + [1 << nbits, 1])
    return np.swapaxes(indices, 0, channel_axis), np.swapaxes(lut, 0, channel_axis)


def kmeans_1d(values: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """One group: (lut of 2**nbits entries in `values`' dtype, sorted; uint8 indices shaped like `values`)."""
    values = np.asarray(values)
    _check(values, nbits)
    tables, indices = palettize_groups(values.reshape(1, -1), nbits, 1)
    return tables[0], indices.reshape(values.shape)


class KMeansLutFunction:
    """`lut_function` for `OpPalettizerConfig(mode="custom", ...)`: exact k-means at `nbits`.

    quant.coreml's palettizer recognises it and clusters a whole matrix's groups at once in parallel;
    coremltools' own per-group loop calls it group by group. A module-level class: it pickles.
    """

    def __init__(self, nbits: int):
        if not 1 <= nbits <= 8:
            raise ValueError(f"nbits must be in 1..8, got {nbits}")
        self.nbits = nbits

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return kmeans_1d(values, self.nbits)

    def __repr__(self) -> str:
        return f"KMeansLutFunction(nbits={self.nbits})"


def lut_function(nbits: int) -> KMeansLutFunction:
    """The callable to pass as `OpPalettizerConfig(mode="custom", lut_function=lut_function(4))`."""
    return KMeansLutFunction(nbits)
