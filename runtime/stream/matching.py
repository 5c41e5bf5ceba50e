"""Assignment for the tracker, in plain numpy (scipy is not a runtime dependency); overlap is :mod:`maskrt.runtime.boxes`."""

from __future__ import annotations

import numpy as np


def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of rows to columns (Hungarian method, O(n^3)).

    Like ``scipy.optimize.linear_sum_assignment``: returns ``(rows, cols)`` index arrays with
    ``min(N, M)`` pairs, rows sorted ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D array")
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    transposed = n_rows > n_cols
    c = cost.T if transposed else cost
    n, m = c.shape  # n <= m
    # shortest augmenting paths with potentials (1-based arrays, column 0 is the virtual start)
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row assigned to column j (0 = none)
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = c[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    cols = np.flatnonzero(p[1:])
    rows = p[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def match(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Optimal matching that only keeps pairs with ``cost <= max_cost``.

    Returns:
        (pairs, unmatched_rows, unmatched_cols).
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return [], list(range(n)), list(range(m))
    big = max_cost + 1e6
    gated = np.where(np.isfinite(cost) & (cost <= max_cost), cost, big)
    rows, cols = linear_assignment(gated)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if gated[r, c] <= max_cost]
    used_r = {r for r, _ in pairs}
    used_c = {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in used_r], [c for c in range(m) if c not in used_c]
