"""Placement of cores on the mesh: greedy start plus pairwise-swap improvement.

The objective is traffic x hops: sum over core pairs of the values they exchange per tick
times their Manhattan distance, plus each core's traffic with the host link (attached
west of core (0, 0)) times its distance to it. ``random_cost`` gives the baseline the
mapping report and bench/ compare against.
"""
from __future__ import annotations

import numpy as np


def _grid(rows: int, cols: int) -> np.ndarray:
    return np.array([(r, c) for r in range(rows) for c in range(cols)], dtype=np.int64)


def _dist(grid: np.ndarray) -> np.ndarray:
    return np.abs(grid[:, None, :] - grid[None, :, :]).sum(-1)


def cost(traffic: np.ndarray, host: np.ndarray, slots: np.ndarray, rows: int, cols: int) -> float:
    """Traffic x hops of an assignment ``slots[core] = grid slot index``."""
    grid = _grid(rows, cols)
    pos = grid[slots]
    d = np.abs(pos[:, None, :] - pos[None, :, :]).sum(-1)
    hd = pos.sum(1) + 1
    return float((np.triu(traffic, 1) * d).sum() + (host * hd).sum())


def random_cost(traffic, host, rows, cols, seeds: int = 20, seed: int = 0) -> float:
    """Mean cost of ``seeds`` uniformly random placements (the baseline)."""
    n, total = len(traffic), rows * cols
    out = [cost(traffic, host, np.random.default_rng(seed + s).permutation(total)[:n], rows, cols)
           for s in range(seeds)]
    return float(np.mean(out))


def place(traffic: np.ndarray, host: np.ndarray, rows: int, cols: int, order=None,
          max_passes: int = 30) -> tuple[np.ndarray, dict]:
    """Assign each core a slot; ``traffic`` is a symmetric (n, n) matrix of values per tick,
    ``host`` (n,) the values each core exchanges with the host. Returns (slots, stats)."""
    n, total = len(traffic), rows * cols
    if n > total:
        raise ValueError(f"{n} cores do not fit a {rows}x{cols} mesh")
    grid = _grid(rows, cols)
    D = _dist(grid)
    hdist = grid.sum(1) + 1
    slots = np.full(n, -1, dtype=np.int64)
    free = np.ones(total, dtype=bool)
    for i in (range(n) if order is None else order):
        placed = np.flatnonzero(slots >= 0)
        c = hdist * host[i]
        if len(placed):
            c = c + (traffic[i, placed][None, :] * D[:, slots[placed]]).sum(1)
        if not c[free].any() and len(placed):  # unconnected core: next to the last placed one
            c = D[:, slots[placed[-1]]].astype(float)
        c = np.where(free, c, np.inf) + 1e-9 * hdist  # ties: nearer the host port
        s = int(np.argmin(c))
        slots[i], free[s] = s, False
    greedy = cost(traffic, host, slots, rows, cols)
    occ = np.full(total, -1, dtype=np.int64)
    occ[slots] = np.arange(n)
    passes = 0
    traffic = traffic.astype(np.float64)
    C = traffic @ D[:, slots].T + host[:, None] * hdist[None, :]  # (n, total): cost of i at slot x
    ar = np.arange(total)
    for passes in range(1, max_passes + 1):
        improved = False
        for a in range(n):
            pa = slots[a]
            has = occ >= 0
            bb = np.where(has, occ, 0)
            swap = C[bb, pa] - C[bb, ar] + 2 * traffic[a, bb] * D[pa]
            delta = C[a] - C[a, pa] + np.where(has & (bb != a), swap, 0.0)
            delta[pa] = 0.0
            p = int(np.argmin(delta))
            if delta[p] < -1e-9:
                other = occ[p]
                occ[pa], occ[p] = other, a
                slots[a] = p
                C += np.outer(traffic[:, a], D[:, p] - D[:, pa])
                if other >= 0:
                    slots[other] = pa
                    C += np.outer(traffic[:, other], D[:, pa] - D[:, p])
                improved = True
        if not improved:
            break
    final = cost(traffic, host, slots, rows, cols)
    return slots, {"greedy_cost": greedy, "improved_cost": final, "passes": passes}
