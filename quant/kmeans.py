"""Fast, deterministic 1-D k-means for palettizing weights, one look-up table per channel group.

coremltools' `mode="kmeans"` clusters each group with its bundled exact 1-D k-means (kmeans1d) for
float16 groups of 10,000+ values and with scikit-learn's KMeans otherwise; both take 20-1,300 ms a
group. This module gets within ~1e-4 of the exact error 7-15x faster (see quant/bench_kmeans.py).

Each group's values are scalars, and float16 has at most 65,536 distinct ones, so we cluster the
*histogram*: the sorted distinct values, each weighted by how often it occurs. That is exactly
k-means on the raw values, not an approximation: the squared error Σ (v - c(v))² of an assignment
only depends on each distinct value through (value, count), the best centroid of a cluster (its
mean) is the count-weighted mean of its distinct values, and equal values always share a cluster
because a value's nearest centroid does not depend on which copy of it we look at.

In 1-D an optimal clustering is a set of contiguous runs of the sorted values, so a clustering is
k+1 boundary positions, and with prefix sums of (count, count·v, count·v²) any run's size, mean and
squared error cost O(1). On that representation:

1. allocation: an exact dynamic programme (DP) picks the best k runs whose boundaries lie on a
   grid of ~16 candidate positions per centroid (quantiles, an equal-width grid and an asinh grid
   for the tails). For many centroids the grid is cut into regions, each solved for every number
   of runs, and a knapsack shares the k runs between regions. This settles how many centroids
   each part of the distribution gets, which is what local methods get wrong;
2. joint moves: a small exact DP over a window of candidate positions around every boundary moves
   all boundaries at once, first on the grid, then after Lloyd's iterations (assignment by
   `searchsorted` on centroid midpoints) on every distinct value, until nothing moves. A real
   histogram's counts are noisy, and Lloyd alone stops in shallow dips that joint moves leave.

Up to `DENSE_LIMIT` distinct values the DP runs on every position and is the exact optimum.
Beyond, the result is not guaranteed optimal: on weight-like float16 groups its squared error is
within ~1e-4 (4 bits) to ~1e-3 (8 bits) of the exact optimum, and far below a single k-means++ run.

Finally the centroids are rounded to the weight's dtype (the table is stored as float16) and
polished there: re-assign every value to its nearest stored centroid, re-round the means. Neither
step can raise the error, so the error we report is the error of the stored table.

Nothing is random: the same group always gives the same table.
"""

from __future__ import annotations

import numpy as np

DENSE_LIMIT = 320  # positions up to which an exact DP over all of them (dense k·n² work) is cheap
GRID_POSITIONS_PER_CLUSTER = 16  # resolution of the grid that decides the allocation of centroids
GRID_MIN_POSITIONS = 256
ALLOCATION_SLACK = 4  # a region may take up to this many times its even share of the runs
# Moves tried per boundary and round, in grid steps and then in distinct values: fine steps
# nearby and coarse steps further out, so one small DP round can also make long joint moves.
GRID_WINDOW = np.union1d(np.arange(-8, 9), np.union1d(np.arange(-32, 33, 4), np.arange(-64, 65, 16)))
VALUE_WINDOW = np.union1d(np.arange(-8, 9), np.arange(-64, 65, 8))
MAX_LLOYD_ITERATIONS = 300
MAX_WINDOW_ROUNDS = 50
MAX_POLISH_ROUNDS = 8


def kmeans_1d(values: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster `values` into 2**nbits centroids; returns (lut, indices).

    `lut` has exactly 2**nbits entries in `values.dtype`, sorted (padded by repeating the last
    centroid when there are fewer distinct values); `indices` is uint8 with `values`' shape and
    `lut[indices]` is the palettized weight.
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        raise TypeError(f"kmeans_1d palettizes floating-point weights, got {values.dtype}")
    if not 1 <= nbits <= 8:
        raise ValueError(f"nbits must be in 1..8 for uint8 indices, got {nbits}")
    if values.size == 0:
        raise ValueError("cannot palettize an empty weight")
    if not np.all(np.isfinite(values)):
        raise ValueError("weights contain NaN or infinity")

    k = 1 << nbits
    distinct, counts, inverse = _histogram(values)
    if len(distinct) <= k:
        lut, cluster_of_distinct = distinct, np.arange(len(distinct))
    else:
        lut, cluster_of_distinct = _cluster_histogram(distinct, counts, k, values.dtype)
    lut = np.concatenate([lut, np.repeat(lut[-1:], k - len(lut))]).astype(values.dtype)
    indices = cluster_of_distinct.astype(np.uint8)[inverse].reshape(values.shape)
    return lut, indices


class KMeansLutFunction:
    """`lut_function` for `OpPalettizerConfig(mode="custom", ...)`: histogram k-means at `nbits`.

    A module-level class rather than a closure so that it pickles (configs may be sent to worker
    processes).
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


# --- histogram of distinct values -------------------------------------------------------------


def _float16_key_values() -> np.ndarray:
    """The value of every order-preserving float16 key (see `_float16_keys`), as float64."""
    keys = np.arange(1 << 16, dtype=np.uint32)
    bits = np.where(keys & 0x8000, keys & 0x7FFF, 0xFFFF - keys).astype(np.uint16)
    with np.errstate(invalid="ignore"):
        return bits.view(np.float16).astype(np.float64)


_FLOAT16_KEY_VALUES = _float16_key_values()


def _float16_keys(values: np.ndarray) -> np.ndarray:
    """float16 bit patterns remapped so that integer order is float order (negatives reversed)."""
    canonical = np.ravel(values).astype(np.float16) + np.float16(0)  # -0.0 + 0 is +0.0: one zero
    bits = canonical.view(np.uint16)
    return np.where(bits & 0x8000, 0xFFFF - bits, bits | 0x8000).astype(np.uint16)


def _histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct values as float64, their counts, index of each element's distinct value)."""
    if values.dtype == np.float16:
        # Counting over the 65,536 possible keys takes linear time: no sort of the group.
        keys = _float16_keys(values)
        counts = np.bincount(keys, minlength=1 << 16)
        present = np.flatnonzero(counts)
        rank = np.zeros(1 << 16, dtype=np.intp)
        rank[present] = np.arange(len(present))
        return _FLOAT16_KEY_VALUES[present], counts[present].astype(np.float64), rank[keys]
    distinct, inverse, counts = np.unique(
        np.ravel(values).astype(np.float64) + 0.0, return_inverse=True, return_counts=True
    )
    return distinct, counts.astype(np.float64), inverse.ravel()


class _PrefixSums:
    """Cumulative count, count·x and count·x² over the sorted values: O(1) statistics per run.

    Values are centred on their weighted mean first, which keeps the x² sums small and the
    subtraction in the squared-error formula accurate.
    """

    def __init__(self, values: np.ndarray, counts: np.ndarray):
        self.center = np.dot(counts, values) / counts.sum()
        self.x = values - self.center
        self.w = np.concatenate([[0.0], np.cumsum(counts)])
        self.wx = np.concatenate([[0.0], np.cumsum(counts * self.x)])
        self.wxx = np.concatenate([[0.0], np.cumsum(counts * self.x * self.x)])

    def means(self, starts, stops):
        """Centred means of runs [start, stop); runs must be non-empty."""
        return (self.wx[stops] - self.wx[starts]) / (self.w[stops] - self.w[starts])

    def sse(self, starts, stops):
        """Squared error of each run [start, stop) around its own mean (0 for an empty run)."""
        weight = self.w[stops] - self.w[starts]
        total = self.wx[stops] - self.wx[starts]
        squares = self.wxx[stops] - self.wxx[starts]
        with np.errstate(invalid="ignore", divide="ignore"):
            error = squares - np.where(weight > 0, total * total / weight, 0.0)
        return np.maximum(error, 0.0)


# --- the pipeline -----------------------------------------------------------------------------


def _cluster_histogram(distinct, counts, k, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(centroids in `dtype`, cluster of each distinct value), for more than k distinct values."""
    sums = _PrefixSums(distinct, counts)
    every_position = np.arange(len(distinct) + 1)
    if len(every_position) <= DENSE_LIMIT:
        choices, _ = _optimal_splits(sums, k, every_position)
        return _polish_in_dtype(sums, _split_with(choices, k, len(distinct)), dtype)

    grid = _grid_positions(sums, k)
    bounds = _allocate(sums, k, grid)
    bounds = _refine_in_windows(sums, bounds, grid, GRID_WINDOW)
    bounds = _lloyd(sums, bounds, k)
    bounds = _refine_in_windows(sums, bounds, every_position, VALUE_WINDOW)
    return _polish_in_dtype(sums, bounds, dtype)


def _grid_positions(sums: _PrefixSums, k: int) -> np.ndarray:
    """Candidate boundaries for the allocation pass, 3 grids in one.

    Equal-count quantiles resolve the dense middle, an equal-width value grid keeps outliers
    visible, and equal steps of asinh(x / spread) cover the tails in between, where heavy-tailed
    weights need many centroids.
    """
    n = len(sums.x)
    steps = max(GRID_POSITIONS_PER_CLUSTER * k, GRID_MIN_POSITIONS) // 3
    quantiles = np.linspace(0, sums.w[-1], steps + 1)
    by_count = np.searchsorted(sums.w[1:], quantiles, side="right")
    by_value = np.searchsorted(sums.x, np.linspace(sums.x[0], sums.x[-1], steps + 1))
    q1, q3 = np.minimum(by_count[[steps // 4, 3 * steps // 4]], n - 1)
    squashed = np.arcsinh(sums.x / max(sums.x[q3] - sums.x[q1], 1e-12))
    by_squashed = np.searchsorted(squashed, np.linspace(squashed[0], squashed[-1], steps + 1))
    grid = np.unique(np.clip(np.concatenate([[0, n], by_count, by_value, by_squashed]), 0, n))
    return grid if len(grid) > 2 * k else np.arange(n + 1)


def _allocate(sums: _PrefixSums, k: int, grid: np.ndarray) -> np.ndarray:
    """Near-optimal k runs with boundaries on `grid`, deciding how many centroids go where.

    The exact DP costs k·len(grid)², so the grid is cut into regions of at most DENSE_LIMIT
    positions. Each region's DP gives its best error for every number of runs, and a knapsack
    over regions shares the k runs out. Only runs crossing a region border are ruled out, which
    the window refinement that follows repairs.
    """
    regions = -(-(len(grid) - 1) // (DENSE_LIMIT - 1))
    cuts = np.round(np.linspace(0, len(grid) - 1, regions + 1)).astype(int)
    most_runs = min(k, int(np.ceil(ALLOCATION_SLACK * k / regions)) + 2)
    tables = [
        _optimal_splits(sums, min(most_runs, stop - start), grid[start : stop + 1])
        for start, stop in zip(cuts[:-1], cuts[1:])
    ]
    runs_per_region = _share_runs([errors for _, errors in tables], k)
    bounds = [grid[[0]]]
    for start, stop, (choices, _), runs in zip(cuts[:-1], cuts[1:], tables, runs_per_region):
        bounds.append(grid[start + _split_with(choices, runs, stop - start)[1:]])
    return np.concatenate(bounds)


def _share_runs(errors_by_region: list[np.ndarray], k: int) -> list[int]:
    """How many runs each region gets (at least one) so that the summed error is least."""
    best = np.full(k + 1, np.inf)  # best[t]: least error of the regions so far in t runs
    best[0] = 0.0
    choices = []
    for errors in errors_by_region:
        runs = np.arange(1, len(errors) + 1)[None, :]
        used_before = np.arange(k + 1)[:, None] - runs
        total = np.where(used_before >= 0, best[np.maximum(used_before, 0)] + errors, np.inf)
        choice = np.argmin(total, axis=1)
        best = total[np.arange(k + 1), choice]
        choices.append(choice + 1)
    shares, remaining = [], k
    for choice in reversed(choices):
        shares.append(int(choice[remaining]))
        remaining -= shares[-1]
    return shares[::-1]


def _optimal_splits(sums: _PrefixSums, most_runs: int, positions: np.ndarray):
    """Exact DP over boundaries among `positions` (sorted; the first and last are fixed ends).

    Returns (choices, errors): errors[m-1] is the least error in m runs (m = 1..most_runs), and
    `_split_with(choices, m, len(positions) - 1)` recovers that split as indices into `positions`.
    """
    stops, starts = np.arange(len(positions))[:, None], np.arange(len(positions))[None, :]
    by_stop = np.where(starts < stops, sums.sse(positions[starts], positions[stops]), np.inf)
    best = by_stop[:, 0]  # best[b]: least error of the values before positions[b] in m runs
    choices, errors = [], [best[-1]]
    for _ in range(most_runs - 1):
        best, choice = _min_plus(best, by_stop)
        choices.append(choice)
        errors.append(best[-1])
    return choices, np.array(errors)


def _split_with(choices: list[np.ndarray], runs: int, last: int) -> np.ndarray:
    """The best `runs`-run split from `_optimal_splits`: runs+1 indices from 0 to `last`."""
    return _backtrack(choices[: runs - 1], last, first=0)


def _min_plus(previous: np.ndarray, by_stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """current[b] = min over a of previous[a] + by_stop[b, a], with the best a."""
    total = by_stop + previous  # rows are stops: contiguous for the argmin
    best = np.argmin(total, axis=1)
    return total[np.arange(len(total)), best], best


def _backtrack(choices: list[np.ndarray], last: int, first: int) -> np.ndarray:
    """Indices of the chosen chain, from `first` to `last`, given each step's best predecessor."""
    chain = [last]
    for choice in reversed(choices):
        chain.append(int(choice[chain[-1]]))
    chain.append(first)
    return np.array(chain[::-1])


def _refine_in_windows(sums, bounds, positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move all boundaries jointly, each to `positions` within `offsets` of it, until none moves.

    `bounds` must lie on `positions`; every round is an exact DP over the windows and includes
    the current boundaries, so the error never rises.
    """
    for _ in range(MAX_WINDOW_ROUNDS):
        at = np.searchsorted(positions, bounds[1:-1])
        windows = positions[np.clip(at[:, None] + offsets, 1, len(positions) - 2)]
        updated = _optimal_bounds_in_windows(sums, windows)
        if np.array_equal(updated, bounds):
            break
        bounds = updated
    return bounds


def _optimal_bounds_in_windows(sums: _PrefixSums, windows: np.ndarray) -> np.ndarray:
    """Best boundaries when the j-th inner boundary must be one of windows[j]: a chain of DPs."""
    n = len(sums.x)
    starts, stops = windows[:-1, None, :], windows[1:, :, None]
    run_costs = np.where(starts < stops, sums.sse(starts, stops), np.inf)  # [j, stop, start]
    error = sums.sse(0, windows[0])
    choices = []
    for by_stop in run_costs:
        error, choice = _min_plus(error, by_stop)
        choices.append(choice)
    last = int(np.argmin(error + sums.sse(windows[-1], n)))
    picked = _backtrack(choices, last, first=0)[1:]  # drop the placeholder before the first
    inner = windows[np.arange(len(windows)), picked]
    return np.concatenate([[0], inner, [n]])


# --- Lloyd on runs ----------------------------------------------------------------------------


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Run boundaries that give every value its nearest (sorted) centroid."""
    midpoints = (centroids[:-1] + centroids[1:]) / 2
    return np.concatenate([[0], np.searchsorted(x, midpoints), [len(x)]])


def _lloyd(sums: _PrefixSums, bounds: np.ndarray, k: int) -> np.ndarray:
    """Lloyd's iterations on runs until the assignment is stable, keeping k non-empty runs."""
    bounds = _fill_to_k(sums, np.unique(bounds), k)
    for _ in range(MAX_LLOYD_ITERATIONS):
        updated = _assign(sums.x, sums.means(bounds[:-1], bounds[1:]))
        if np.array_equal(updated, bounds):
            break
        # A centroid loses all its values when its mean falls in a gap; give it to the run that
        # gains most from a split instead of leaving it unused.
        bounds = _fill_to_k(sums, np.unique(updated), k)
    return bounds


def _fill_to_k(sums: _PrefixSums, bounds: np.ndarray, k: int) -> np.ndarray:
    """Split runs, best gain first, until there are k of them."""
    while len(bounds) - 1 < k:
        position = _best_split(sums, bounds)
        bounds = np.insert(bounds, np.searchsorted(bounds, position), position)
    return bounds


def _best_split(sums: _PrefixSums, bounds: np.ndarray) -> int:
    """Position of the single split of a run into two that lowers the error most."""
    positions = np.arange(1, len(sums.x))
    run = np.searchsorted(bounds, positions, side="right") - 1
    starts, stops = bounds[run], bounds[run + 1]
    gain = sums.sse(starts, stops) - sums.sse(starts, positions) - sums.sse(positions, stops)
    gain[positions == starts] = -np.inf  # already a boundary
    return int(positions[np.argmax(gain)])


# --- the stored table -------------------------------------------------------------------------


def _polish_in_dtype(sums: _PrefixSums, bounds: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Round centroids to `dtype`, then alternate nearest-assignment and re-rounded means.

    Given an assignment, the representable value nearest a cluster's mean is its best stored
    centroid; given centroids, the nearest one is each value's best. Neither step raises the error,
    and we end on an assignment, so every value maps to its nearest stored centroid.
    """
    for _ in range(MAX_POLISH_ROUNDS):
        bounds = np.unique(bounds)  # rounding can merge two centroids and empty a run
        lut = (sums.means(bounds[:-1], bounds[1:]) + sums.center).astype(dtype)
        nearest = _assign(sums.x, lut.astype(np.float64) - sums.center)
        if np.array_equal(nearest, bounds):
            break
        bounds = nearest
    return lut, np.repeat(np.arange(len(lut)), np.diff(nearest))
