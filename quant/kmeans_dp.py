"""The two exact solvers behind quant.kmeans: the best k runs of n sorted weighted values.

A run [j, i) of the sorted distinct values costs its squared error around its weighted mean,
cost(j, i) = Σw·x² - (Σw·x)² / Σw, O(1) from prefix sums (w, wx, wxx). That cost is concave Monge
(the quadrangle inequality holds), which both solvers rely on.

- `penalized_bounds` (used first): Lagrangian relaxation. For a price λ per run, the best partition
  into any number of runs is one pass with a monotone queue, ~n log n costs and independent of k.
  The least error g(r) in r runs is convex in r for Monge costs, so if that partition has exactly k
  runs it is an optimal k-run partition: for any k-run Q, g + λk <= cost(Q) + λk. That is the
  certificate; λ is searched (runs ≈ C·λ^(-1/3) for smooth densities, then bisection) until it holds.
- `layered_bounds` (the fallback when no λ gives exactly k runs, where g is locally linear):
  D[m][i] = min_j D[m-1][j] + cost(j, i) layer by layer, each layer by divide and conquer on the
  monotone best j, ~10 costs a row: O(k·n log n) at worst.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_SOLVES = 24  # λ tries before the layered fallback; each is one penalized pass
PANTER_DITE = 2.72  # g(k) ≈ 2.72·σ²N/k² for a Gaussian: the first λ guess, g(k-1) - g(k) ≈ 2·g(k)/k


@njit(cache=True, inline="always", error_model="numpy")
def _cost(w, wx, wxx, j, i):
    """Squared error of the run of distinct values [j, i) around its weighted mean (i > j)."""
    total = wx[i] - wx[j]
    return wxx[i] - wxx[j] - total * total / (w[i] - w[j])


# --- Lagrangian: a price per run ----------------------------------------------------------------


@njit(cache=True, inline="always", error_model="numpy")
def _price(best, w, wx, wxx, j, i, lam):
    return best[j] + _cost(w, wx, wxx, j, i) + lam


@njit(cache=True, error_model="numpy")
def _penalized(w, wx, wxx, lam, best, runs, start_of, queue, begins):
    """best[i] = min over j < i of best[j] + cost(j, i) + lam; fills start_of[i] (that j) and runs[i].

    Monge: once a later start j2 is better than j1 for some end i, it stays better for every larger i.
    So the candidates form a queue, each best on an interval of ends; a new candidate removes those it
    beats from their first end on and, against the last it does not, binary-searches where it takes over.
    """
    n = len(w) - 1
    best[0], runs[0] = 0.0, 0
    queue[0], begins[0] = 0, 1
    head, tail = 0, 1
    for i in range(1, n + 1):
        while tail - head > 1 and begins[head + 1] <= i:
            head += 1
        j = queue[head]
        best[i], start_of[i], runs[i] = _price(best, w, wx, wxx, j, i, lam), j, runs[j] + 1
        if i == n:
            break
        while tail > head:
            last = queue[tail - 1]
            first = max(begins[tail - 1], i + 1)
            if _price(best, w, wx, wxx, i, first, lam) <= _price(best, w, wx, wxx, last, first, lam):
                tail -= 1  # i is at least as good from last's first end on: last never wins again
                continue
            low, high = first + 1, n + 1  # the first end where i is at least as good, n + 1: none
            while low < high:
                middle = (low + high) // 2
                if _price(best, w, wx, wxx, i, middle, lam) <= _price(best, w, wx, wxx, last, middle, lam):
                    high = middle
                else:
                    low = middle + 1
            if low <= n:
                queue[tail], begins[tail] = i, low
                tail += 1
            break
        else:
            queue[tail], begins[tail] = i, i + 1
            tail += 1


@njit(cache=True, error_model="numpy")
def _backtrack(start_of, n, k):
    bounds = np.empty(k + 1, dtype=np.int64)
    bounds[k] = n
    for m in range(k, 0, -1):
        bounds[m - 1] = start_of[bounds[m]]
    return bounds


@njit(cache=True, error_model="numpy")
def penalized_bounds(w, wx, wxx, k, lam):
    """(bounds of an optimal k-run partition or an empty array, the λ that certified it, passes run).

    lam: the first price to try (<= 0: a Panter–Dite guess from the total error)."""
    n = len(w) - 1
    if lam <= 0:
        lam = PANTER_DITE * _cost(w, wx, wxx, 0, n) * 2.0 / k**3
    best, runs = np.empty(n + 1), np.empty(n + 1, dtype=np.int64)
    start_of, queue, begins = np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.int64)
    low, high = 0.0, np.inf  # prices known to give more than k runs / fewer than k
    for solve in range(1, MAX_SOLVES + 1):
        _penalized(w, wx, wxx, lam, best, runs, start_of, queue, begins)
        found = runs[n]
        if found == k:
            return _backtrack(start_of, n, k), lam, solve
        if found > k:
            low = lam
        else:
            high = lam
        guess = lam * (found / k) ** 3  # runs ≈ C·λ^(-1/3)
        if not low < guess < high:
            guess = np.sqrt(low * high) if low > 0 and high < np.inf else (low * 4 if high == np.inf else high / 4)
        if high < np.inf and high - low <= 1e-12 * high:
            break  # no price gives k runs: g is linear around k
        lam = guess
    return np.empty(0, dtype=np.int64), lam, MAX_SOLVES


# --- layered dynamic programme ----------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _layer(previous, floor, w, wx, wxx, first_column, low, high, best, argbest):
    """best[i] = min over j >= first_column of previous[j] + cost(j, i) for rows i in [low, high], and
    argbest[i] its leftmost best j.

    The best j never decreases with i (Monge), so rows are solved coarse to fine: a row at stride s
    searches only between the best j of its neighbours at stride 2s. It is never below floor[i]
    either, the best j with one run fewer (a bound Ckmeans.1d.dp also uses).
    """
    stride = 1
    while stride * 2 <= high - low + 1:
        stride *= 2
    while stride >= 1:
        for i in range(low + stride - 1, high + 1, 2 * stride):
            start = max(first_column, floor[i], argbest[i - stride] if i - stride >= low else 0)
            stop = min(i - 1, argbest[i + stride] if i + stride <= high else i - 1)
            value, at = np.inf, start
            for j in range(start, stop + 1):
                here = previous[j] + _cost(w, wx, wxx, j, i)
                if here < value:
                    value, at = here, j
            best[i], argbest[i] = value, at
        stride //= 2


@njit(cache=True, error_model="numpy")
def layered_bounds(w, wx, wxx, k):
    """Run boundaries (k+1 positions, 0..n) of the optimal k runs of n > k distinct values."""
    n = len(w) - 1
    previous = np.full(n + 1, np.inf)
    for i in range(1, n + 1):
        previous[i] = _cost(w, wx, wxx, 0, i)
    choices = np.zeros((k, n + 1), dtype=np.int32)  # choices[m - 1][i]: where the m-th run starts
    current = np.full(n + 1, np.inf)
    for m in range(2, k + 1):  # m runs over the first i values: i from m to n - (k - m)
        low = m if m < k else n  # the last layer is only needed at n
        _layer(previous, choices[m - 2], w, wx, wxx, m - 1, low, n - (k - m), current, choices[m - 1])
        previous, current = current, previous
    bounds = np.empty(k + 1, dtype=np.int64)
    bounds[k] = n
    for m in range(k, 1, -1):
        bounds[m - 1] = choices[m - 1][bounds[m]]
    bounds[0] = 0
    return bounds
