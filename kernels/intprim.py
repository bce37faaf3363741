"""Scalar integer primitives of chip mode (numba): saturation, rounding shifts,
requantisation, rounding, and the encoders' closed forms. docs/integer.md, bit for bit.
Shared by the elementwise kernels (intmath) and the layer kernels (intlayers)."""
from __future__ import annotations

import numpy as np
from ._jit import njit

from .limits import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN  # noqa: F401 (re-exported)


# -- scalar primitives -------------------------------------------------------------------------

@njit(cache=True)
def sat32(x):
    """min(max(x, -2^31), 2^31 - 1) on an int64: overflow saturates, never wraps."""
    return min(max(np.int64(x), np.int64(INT32_MIN)), np.int64(INT32_MAX))


@njit(cache=True)
def round_shift(x, n):
    """x / 2^n rounded half away from zero, for int64 x and 0 <= n <= 62:
    sign(x) * ((|x| + 2^(n-1)) >> n); n = 0 returns x. |x| must stay below 2^62."""
    x = np.int64(x)
    n = np.int64(n)
    if n <= 0:
        return x
    r = (abs(x) + (np.int64(1) << (n - 1))) >> n
    return -r if x < 0 else r  # a select, not a branch, in the compiled loops


@njit(cache=True)
def clamp(x, lo, hi):
    """min(max(x, lo), hi) on int64."""
    return min(max(np.int64(x), np.int64(lo)), np.int64(hi))


@njit(cache=True)
def requant(acc, m, n, lo, hi):
    """clamp(round_shift(acc * m, n), lo, hi): acc an int32 accumulator (int64 value),
    0 <= m < 2^15, 0 <= n <= 62; acc * m is exact in int64."""
    return clamp(round_shift(np.int64(acc) * np.int64(m), n), lo, hi)


@njit(cache=True)
def rescale(acc, m, n):
    """round_shift(sat32(acc) * m, n): an exact product sum moved to another scale (the
    feed-forward product of a q.SynRecurrent, before the recurrent one is added), without a
    clamp; 0 <= m < 2^15, 0 <= n <= 62, so the product stays below 2^46."""
    return round_shift(sat32(acc) * np.int64(m), n)


@njit(cache=True)
def round_half_away(y):
    """A float64 rounded to the nearest integer, halves away from zero, exactly (no
    floor(y + 0.5) double rounding). |y| must be below 2^62."""
    a = abs(y)
    f = np.floor(a)
    r = np.int64(f)
    if a - f >= 0.5:
        r += 1
    return -r if y < 0 else r


@njit(cache=True)
def latency_phase(x, full_scale, window):
    """Spike phase of q.LatencyEncoder for x in [1, D]: ((D - x)(W - 1) * 2 + D) // (2 D)."""
    d = np.int64(full_scale)
    return ((d - np.int64(x)) * (np.int64(window) - 1) * 2 + d) // (2 * d)


@njit(cache=True)
def rate_spike_count(x, full_scale, ticks):
    """Spikes q.RateEncoder emits for a value held ``ticks`` ticks from reset:
    floor((T x + floor(D/2)) / D) for x = clamp(q, 0, D), i.e. round half up of T x / D."""
    d = np.int64(full_scale)
    return (np.int64(ticks) * clamp(x, 0, d) + d // 2) // d


@njit(cache=True)
def _same_size(a, b):
    if a.size != b.size:
        raise ValueError("intmath: input and output sizes differ")
