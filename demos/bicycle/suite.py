"""The scenario suite: seeded scenarios built as JSON-able dicts (so they can be written out,
edited and read back with ``world.load_scenario``).

- ``straight``: a straight lane, constant speed, gusts.
- ``s_curve``: sinuous waypoints (curvature kept rideable at the speed), gusts.
- ``speed_changes``: straight-ish path, the target speed stepping between 3 and 7 m/s.
- ``gust_suite``: the acceptance set: S-curves, speed changes within 3-7 m/s and gusts.
"""
from __future__ import annotations

import math

import numpy as np

KINDS = ("straight", "s_curve", "speed_changes", "gust_suite", "demo")


def _s_path(rng, length: float, amp: float, wavelength: float, step: float = 2.0):
    xs = np.arange(0.0, length + step, step)
    phase = rng.uniform(0, 2 * math.pi)
    ramp = np.clip(xs / 40.0, 0, 1)  # start straight, then weave
    ys = amp * ramp * (np.sin(2 * math.pi * xs / wavelength + phase) - math.sin(phase))
    return [[round(float(x), 3), round(float(y), 3)] for x, y in zip(xs, ys)]


def _world(rng, path, n_cones=6, n_boxes=2, target=True):
    p = np.asarray(path)
    obstacles = []
    for i in range(n_cones + n_boxes):
        j = int(rng.integers(10, len(p) - 1))
        d = p[min(j + 1, len(p) - 1)] - p[j - 1]
        nrm = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9)
        side = rng.choice([-1, 1]) * rng.uniform(2.5, 6.0)
        x, y = p[j] + nrm * side
        kind = "cone" if i < n_cones else "box"
        obstacles.append({"kind": kind, "x": round(float(x), 2), "y": round(float(y), 2),
                          **({"size": 1.2, "height": 1.0, "yaw": float(rng.uniform(0, 90))} if kind == "box" else {})})
    w = {"lanes": "path", "obstacles": obstacles}
    if target:
        # a person walking along the right-hand side of the lane, starting ~80 m ahead
        s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
        j = min(int(np.searchsorted(s, min(80.0, s[-1] / 2))), len(p) - 2)
        idx = list(range(j, len(p), 5))
        if idx[-1] != len(p) - 1:
            idx.append(len(p) - 1)
        d = np.gradient(p, axis=0)
        nrm = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.hypot(d[:, 0], d[:, 1])[:, None]
        walk = p[idx] + nrm[idx] * 2.2
        w["target"] = {"path": [[round(float(x), 2), round(float(y), 2)] for x, y in walk], "speed": 1.4}
    return w


def make(kind: str, seed: int = 0, duration: float = 60.0) -> dict:
    """One scenario as a dict (see world.parse_scenario)."""
    if kind not in KINDS:
        raise ValueError(f"unknown scenario kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, 7])
    if kind == "straight":
        v = float(rng.uniform(3, 7))
        length = v * duration + 60
        path = [[0.0, 0.0], [round(length, 1), 0.0]]
        return {"name": f"straight-{seed}", "duration": duration, "seed": seed,
                "bicycle": {"speed": v}, "speed_profile": [[0.0, v]], "path": path,
                "gusts": {"rate_hz": 0.25, "impulse": [4.0, 12.0]},
                "world": _world(rng, [[float(x), 0.0] for x in np.linspace(0, length, 40)])}
    if kind in ("s_curve", "gust_suite", "demo"):
        speeds = rng.uniform(3, 7, size=4) if kind != "s_curve" else np.full(4, rng.uniform(3, 7))
        v_max = float(speeds.max())
        # Keep the path's peak curvature below what a 12 degree lean rides at the top speed.
        kappa_max = 9.81 * math.tan(math.radians(12)) / v_max ** 2
        wavelength = float(rng.uniform(60, 110))
        amp = min(float(rng.uniform(3, 8)), kappa_max * (wavelength / (2 * math.pi)) ** 2)
        length = v_max * duration + 80
        path = _s_path(rng, length, amp, wavelength)
        knots = np.linspace(0, duration, len(speeds) + 1)[:-1]
        profile = [[round(float(t), 2), round(float(s), 3)] for t, s in zip(knots, speeds)]
        return {"name": f"{kind.replace('_', '-')}-{seed}", "duration": duration, "seed": seed,
                "bicycle": {"speed": float(speeds[0])}, "speed_profile": profile, "path": path,
                "gusts": {"rate_hz": 0.25 if kind != "demo" else 0.15, "impulse": [4.0, 12.0]},
                "world": _world(rng, path)}
    # speed_changes: steps between 3 and 7 m/s on a gentle curve
    seq = [3.0, 7.0, 4.0, 6.0, 3.5, 5.0]
    knots = []
    for i, v in enumerate(seq):
        t0 = duration * i / len(seq)
        knots += [[round(t0, 2), v], [round(t0 + duration / len(seq) * 0.9, 2), v]]
    path = _s_path(rng, 7 * duration + 80, 2.0, 150.0)
    return {"name": f"speed-changes-{seed}", "duration": duration, "seed": seed, "bicycle": {"speed": 3.0},
            "speed_profile": knots, "path": path, "gusts": {"rate_hz": 0.2, "impulse": [4.0, 10.0]},
            "world": _world(rng, path)}
