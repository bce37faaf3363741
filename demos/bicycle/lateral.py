"""The bicycle's lateral motion under the path-pursuit law, and a model that predicts it.

The law (``follow.Navigator._path``): aim at the point ``lookahead(v, offset)`` metres down the
path, shifted sideways by the planner's offset; the pure-pursuit curvature to it,
``kappa = 2 sin(alpha) / distance``; the desired lean of that steady turn, at most
``max_lean(v)``, changed at most ``LEAN_SLEW`` per second.

The bicycle does not turn at once: the balance network must first lean it, and to lean it must
steer the other way for a moment, so the curvature it rides first moves *against* a change of
the desired lean and then follows it with a damped lag (~0.6 s). ``rollout`` predicts it with a
linear model fitted on a ride (docs/bicycle.md, round 8), one step per ``DT``:

    kappa_t = A1 kappa_{t-1} + A2 kappa_{t-2} + B1 u_{t-1} + B2 u_{t-2}

with u the curvature of the desired lean's steady turn (lean / gain) and each term the mean
over its DT window (B1 < 0: the counter-steer). The coefficients are fitted on the whole ride;
fitted on its first half only, the same model run free over the second explains 88 % of the
variance of the curvature there. ``rollout`` runs the law and
this response forward for each candidate offset from what the bicycle is doing now, so a
planner sees that reversing a swerve already under way takes longer than continuing it.
"""
from __future__ import annotations

import math

import numpy as np

from .sim import njit

LEAN_SLEW = math.radians(60.0)   # the desired lean from the path changes at most this fast [rad/s]
DT = 0.05                        # the response model's step [s]
A1, A2, B1, B2 = 1.792, -0.827, -0.167, 0.202   # its coefficients (module docstring); steady-state gain 1.01
REL_MAX = 0.5                    # heading against the path beyond which a rollout starts clipped [rad]


def max_lean(v: float) -> float:
    """Desired-lean limit [rad]: 15 degrees from 3 m/s, down to 8 at 2 m/s (slow leans saturate the steer)."""
    return math.radians(8.0 + 7.0 * min(1.0, max(0.0, v - 2.0)))


def lookahead(v: float, offset) -> np.ndarray | float:
    """Pursuit distance [m]: 1.6 v with an offset (a swerve is wanted soon), 2 v on the path, at least 5 m."""
    return np.where(np.asarray(offset) != 0, np.maximum(5.0, 1.6 * v), max(5.0, 2.0 * v))


def _path_frame(path, s):
    """Points and unit tangents of the path at arc lengths ``s`` (beyond the ends: straight on)."""
    i = np.clip(np.searchsorted(path.s, s, side="right") - 1, 0, len(path.len) - 1)
    u = path.unit[i]
    return path.p[i] + u * (s - path.s[i])[..., None], u


def rollout(path, s0: float, lat: float, v: float, offsets, *, gain: float, rel: float = 0.0,
            kappa=(0.0, 0.0), asked=(0.0, 0.0), horizon: float = 14.0, spacing: float = 0.5) -> np.ndarray:
    """(len(offsets), m, 2) world points the bicycle is predicted to pass, every ``spacing``
    metres of travel up to ``horizon``, riding the pursuit law to each offset at speed v.

    From (s0, lat) on the path with heading ``rel`` against it [rad, clipped to REL_MAX];
    ``kappa``: the curvature it turned at over the last two DT windows [1/m], latest first;
    ``asked``: the mean desired lean over the same windows [rad], latest first; ``gain``:
    desired lean per unit of curvature at v [rad m] (``GainSchedule.lean_for_curvature(v, 1)``).
    Speed is held at v; the path's own curvature enters the pursuit point and the heading."""
    offsets = np.asarray(offsets, float)
    v = max(float(v), 1.0)
    n = int(math.ceil(horizon / (v * DT))) + 1
    # the path's curvature along the way, from its headings 1 m apart
    grid = s0 + np.arange(-1.0, horizon + 2.0 * max(5.0, 2.0 * v) + 2.0, 1.0)
    _, u = _path_frame(path, grid)
    kp_grid = np.gradient(np.unwrap(np.arctan2(u[:, 1], u[:, 0])), grid)
    L = np.asarray(lookahead(v, offsets), float) * np.ones(len(offsets))
    track = _roll(offsets, L, float(s0), float(lat), float(np.clip(rel, -REL_MAX, REL_MAX)),
                  float(kappa[0]), float(kappa[1]), float(asked[0]), float(asked[1]), v, float(gain),
                  max_lean(v), n, float(grid[0]), kp_grid)
    at = np.arange(spacing, horizon + 1e-9, spacing) / (v * DT)    # in steps
    i = np.minimum(at.astype(int), n - 1)
    f = (at - i)[:, None, None]
    se = track[i] * (1 - f) + track[i + 1] * f                   # (m, K, 2)
    p, t = _path_frame(path, se[..., 0])
    pts = p + se[..., 1:2] * np.stack([-t[..., 1], t[..., 0]], axis=-1)
    return pts.transpose(1, 0, 2)


@njit(cache=True)
def _roll(offsets, L, s0, lat, rel, k1, k2, c1, c2, v, gain, m_lean, n, g0, kp):
    """(n + 1, len(offsets), 2) path coordinates (s, lat) of the rollout, one row per DT
    (``rollout``; ``kp``: the path's curvature every metre from ``g0``)."""
    out = np.empty((n + 1, len(offsets), 2))
    for o in range(len(offsets)):
        s, e, th = s0, lat, rel
        a1, a2, u1, u2, c = k1, k2, c1 / gain, c2 / gain, c1
        out[0, o, 0], out[0, o, 1] = s, e
        for j in range(n):
            dy = offsets[o] - e + 0.5 * _at(kp, s + L[o] - g0) * L[o] * L[o]
            alpha = math.atan2(dy, L[o]) - th
            want = min(max(gain * 2.0 * math.sin(alpha) / math.hypot(L[o], dy), -m_lean), m_lean)
            c = min(max(want, c - LEAN_SLEW * DT), c + LEAN_SLEW * DT)
            k = A1 * a1 + A2 * a2 + B1 * u1 + B2 * u2
            a2, a1, u2, u1 = a1, k, u1, c / gain
            th += v * DT * (k - _at(kp, s - g0))
            e += v * DT * math.sin(th)
            s += v * DT * math.cos(th)
            out[j + 1, o, 0], out[j + 1, o, 1] = s, e
    return out


@njit(cache=True)
def _at(values, x):
    """``values`` (one per metre) linearly interpolated at x metres, held beyond the ends."""
    if x <= 0.0:
        return values[0]
    i = int(x)
    if i >= len(values) - 1:
        return values[-1]
    f = x - i
    return values[i] * (1.0 - f) + values[i + 1] * f
