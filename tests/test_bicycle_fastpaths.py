"""The bicycle loop's per-step queries on plain floats against the numpy expressions they
replaced (the loop runs them ~100 times per simulated second): equal values, bit for bit."""
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from tianrt.demos.bicycle import world

floats = st.floats(-200.0, 200.0, allow_nan=False)


def numpy_project(pl, x, y, lo, hi):
    """world.Polyline._project as it was written on arrays."""
    p, u, L = pl.p[lo:hi], pl.unit[lo:hi], pl.len[lo:hi]
    rx, ry = x - p[:, 0], y - p[:, 1]
    along = rx * u[:, 0] + ry * u[:, 1]
    a = np.clip(along, 0, L)
    if lo == 0:
        a[0] = min(along[0], L[0])
    if hi == len(pl.len):
        a[-1] = max(along[-1], 0.0)
    cross = u[:, 0] * ry - u[:, 1] * rx
    dist2 = (rx - a * u[:, 0]) ** 2 + (ry - a * u[:, 1]) ** 2
    k = int(np.argmin(dist2))
    sign = 1.0 if cross[k] >= 0 else -1.0
    return float(pl.s[lo + k] + a[k]), sign * float(math.sqrt(dist2[k])), lo + k


@settings(derandomize=True, deadline=None, max_examples=60)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12), x=floats, y=floats, s=st.floats(-50, 600))
def test_polyline_queries_equal_the_array_forms(seed, n, x, y, s):
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.uniform(1.0, 40.0, size=(n, 2)) * rng.choice([-1, 1], size=(n, 2)), axis=0)
    pl = world.Polyline(pts)
    for lo, hi in ((0, pl.len.size), (0, max(1, pl.len.size // 2)), (pl.len.size // 2, pl.len.size)):
        assert pl._project(x, y, lo, hi) == numpy_project(pl, x, y, lo, hi)
    i = int(np.clip(np.searchsorted(pl.s, s, side="right") - 1, 0, len(pl.len) - 1))
    assert pl.heading(s) == float(math.atan2(pl.unit[i, 1], pl.unit[i, 0]))
    j = 0 if s <= 0 else (len(pl.len) - 1 if s >= pl.total else int(np.searchsorted(pl.s, s, side="right")) - 1)
    d = s - pl.s[j]
    assert pl.point(s) == (float(pl.p[j, 0] + pl.unit[j, 0] * d), float(pl.p[j, 1] + pl.unit[j, 1] * d))


@settings(derandomize=True, deadline=None, max_examples=60)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 8), x=st.floats(-5, 80))
def test_interp_equals_numpy(seed, n, x):
    rng = np.random.default_rng(seed)
    xp = np.cumsum(rng.uniform(0.1, 10.0, size=n)) - 1.0
    fp = rng.uniform(0.0, 15.0, size=n)
    for q in [x, *xp.tolist()]:  # knots exactly, and anywhere
        assert world.interp(q, xp.tolist(), fp.tolist()) == float(np.interp(q, xp, fp))
