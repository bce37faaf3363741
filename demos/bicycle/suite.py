"""The scenario suite: seeded scenarios built as JSON-able dicts (so they can be written out,
edited and read back with ``world.load_scenario``).

- ``straight``: a straight lane, constant speed, gusts.
- ``s_curve``: sinuous waypoints (curvature kept rideable at the speed), gusts.
- ``speed_changes``: straight-ish path, the target speed stepping between 3 and 7 m/s.
- ``gust_suite``: the acceptance set: S-curves, speed changes within 3-7 m/s and gusts.
- ``follow``: a person jogs ahead along a winding route (stops, turns) past tall boxes that hide
  them for a moment; the path is the person's route, the bicycle starts behind them.
- ``obstacles``: a gently curving lane with boxes and cones on it and beside it, some in
  clusters (reaching at most ~1.5 m from the path), always leaving the other side free to 3.6 m.
- ``errand``: the whole brain's scenario (the default demo): the bicycle stands on its stand
  until a spoken "go", rides a winding lane past a box and a cluster of cones on it, hears
  "faster", comes up behind a person who waits on the lane and then jogs on (stopping now and
  then, passing tall boxes at bends that hide them for a moment) and follows them, until a
  spoken "stop" brings it back onto its stand.

Every kind gets a seeded ``world.look`` (lighting, ground colour and texture, clothing).
"""
from __future__ import annotations

import math

import numpy as np

KINDS = ("straight", "s_curve", "speed_changes", "gust_suite", "demo", "follow", "obstacles", "errand")
FOLLOW_DISTANCE = 5.0   # the follower's set distance to the person [m]


def look(seed: int) -> dict:
    """A seeded appearance: light, ground colour and texture, clothing (world.look)."""
    rng = np.random.default_rng([seed, 11])
    g = rng.uniform(70, 140)
    ground = [g * rng.uniform(0.85, 1.05), g * rng.uniform(0.95, 1.15), g * rng.uniform(0.85, 1.05)]
    clothing = [rng.uniform(0, 255) for _ in range(3)]
    if rng.random() < 0.5:   # dark or light clothes, half the time
        clothing = [c * 0.35 for c in clothing] if rng.random() < 0.5 else [150 + c * 0.4 for c in clothing]
    return {"light": round(float(rng.uniform(0.6, 1.3)), 3), "ground": [round(float(c), 1) for c in ground],
            "clothing": [round(float(c), 1) for c in clothing], "texture": round(float(rng.uniform(0.1, 0.5)), 3),
            "texture_seed": int(rng.integers(0, 2 ** 31)), "shading": round(float(rng.uniform(0.3, 0.7)), 3)}


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
    d = _make(kind, seed, duration)
    d.setdefault("world", {})["look"] = look(seed)
    return d


def _make(kind, seed, duration):
    rng = np.random.default_rng([seed, 7])
    if kind == "follow":
        return _follow(rng, seed, duration)
    if kind == "obstacles":
        return _obstacles(rng, seed, duration)
    if kind == "errand":
        return _errand(rng, seed, duration)
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


def _winding(rng, length: float, step: float = 1.0, max_kappa: float = 0.06):
    """A route of random gentle turns: curvature changes in random pieces of 10-25 m."""
    pts, x, y, h, s = [[0.0, 0.0]], 0.0, 0.0, 0.0, 0.0
    kappa, left = 0.0, 15.0
    while s < length:
        if left <= 0:
            kappa = float(rng.uniform(-max_kappa, max_kappa)) if rng.random() < 0.7 else 0.0
            kappa = float(np.clip(kappa - 0.02 * h, -max_kappa, max_kappa))  # drift back towards +x
            left = float(rng.uniform(10, 25))
        h += kappa * step
        x, y = x + step * math.cos(h), y + step * math.sin(h)
        pts.append([round(x, 3), round(y, 3)])
        s += step
        left -= step
    return pts


def _follow(rng, seed, duration):
    v = float(rng.uniform(3.0, 4.0))              # jogging speed; the bicycle keeps its distance
    length = v * duration + 80
    route = _winding(rng, length)
    p = np.asarray(route)
    s_cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
    # timing: the person starts FOLLOW_DISTANCE + 2 m ahead, jogs, stops 0.6-1 s twice or three times
    knots, t, s = [[0.0, FOLLOW_DISTANCE + 2.0]], 0.0, FOLLOW_DISTANCE + 2.0
    for _ in range(int(rng.integers(2, 4))):
        run = float(rng.uniform(0.13, 0.3) * duration)
        t, s = t + run, s + v * run
        knots.append([round(t, 3), round(s, 3)])
        t += float(rng.uniform(0.6, 1.0))
        knots.append([round(t, 3), round(s, 3)])
    knots.append([round(t + duration + 10, 3), round(s + v * (duration + 10), 3)])
    # tall boxes beside the route on the inside of bends: they hide the person for a moment
    obstacles, last = [], -30.0
    d = np.gradient(p, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.hypot(d[:, 0], d[:, 1])[:, None]
    head = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    curv = np.gradient(head) / np.maximum(np.gradient(s_cum), 1e-9)
    for i in range(40, len(p) - 5):
        if s_cum[i] - last < 35 or abs(curv[i]) < 0.03:
            continue
        side = float(np.sign(curv[i]))              # the inside of the bend
        off = float(rng.uniform(2.2, 3.0))
        x, y = p[i] + nrm[i] * side * off
        obstacles.append({"kind": "box", "x": round(float(x), 2), "y": round(float(y), 2), "size": 1.4,
                          "height": 2.2, "yaw": round(float(rng.uniform(0, 90)), 1)})
        last = s_cum[i]
    for _ in range(6):                            # cones well off the route, for the scenery
        j = int(rng.integers(10, len(p) - 1))
        x, y = p[j] + nrm[j] * rng.choice([-1, 1]) * rng.uniform(4.0, 7.0)
        obstacles.append({"kind": "cone", "x": round(float(x), 2), "y": round(float(y), 2)})
    world = {"lanes": [{"points": route, "width": 4.0}], "obstacles": obstacles,
             "target": {"path": route, "speed": v, "timing": knots}}
    return {"name": f"follow-{seed}", "duration": duration, "seed": seed, "bicycle": {"speed": v},
            "speed_profile": [[0.0, v]], "path": route, "gusts": {"rate_hz": 0.1, "impulse": [2.0, 6.0]},
            "world": world}


def _frame(path):
    """(points, arc length at each, tangents, unit left normals) of a polyline's points."""
    p = np.asarray(path)
    s_cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
    d = np.gradient(p, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.hypot(d[:, 0], d[:, 1])[:, None]
    return p, s_cum, d, nrm


def _placer(p, s_cum, nrm, obstacles):
    """put(kind, s, lat, **fields): an obstacle at arc length s, lat metres left of the path."""
    def put(kind, s, lat, **kw):
        j = min(int(np.searchsorted(s_cum, s)), len(p) - 1)
        x, y = p[j] + nrm[j] * lat
        obstacles.append({"kind": kind, "x": round(float(x), 2), "y": round(float(y), 2), **kw})
    return put


def _lane_obstacles(rng, put, s: float, end: float) -> None:
    """Every 22-35 m from s to end: a box, a cone or a cluster of cones on the lane (one side left
    free to 3.6 m), and half the time something beside it on the free side."""
    while s < end:
        what = rng.random()
        free = rng.choice([-1.0, 1.0])            # the side left free
        if what < 0.35:                           # a box on the path
            put("box", s, -free * rng.uniform(0.0, 0.6), size=round(float(rng.uniform(0.8, 1.2)), 2),
                height=round(float(rng.uniform(0.8, 1.4)), 2), yaw=round(float(rng.uniform(0, 90)), 1))
        elif what < 0.65:                         # a single cone on the path
            put("cone", s, -free * rng.uniform(0.0, 0.8))
        else:                                     # a cluster of 2-4 cones across one side
            for k in range(int(rng.integers(2, 5))):
                put("cone", s + rng.uniform(-1.0, 1.0), -free * (0.45 * k - 0.2 + rng.uniform(-0.15, 0.15)))
        if rng.random() < 0.5:                    # something near the path on the far side
            put("cone" if rng.random() < 0.6 else "box", s + rng.uniform(-3, 3), free * rng.uniform(4.5, 5.5))
        s += float(rng.uniform(22, 35))


def _obstacles(rng, seed, duration):
    v = float(rng.uniform(3.0, 4.5))
    length = v * duration + 80
    path = _s_path(rng, length, float(rng.uniform(1, 3)), float(rng.uniform(80, 140)))
    p, s_cum, d, nrm = _frame(path)
    obstacles = []
    put = _placer(p, s_cum, nrm, obstacles)

    _lane_obstacles(rng, put, 35.0, length - 20)
    return {"name": f"obstacles-{seed}", "duration": duration, "seed": seed, "bicycle": {"speed": v},
            "speed_profile": [[0.0, v]], "path": path, "gusts": {"rate_hz": 0.1, "impulse": [2.0, 6.0]},
            "world": {"lanes": [{"points": path, "width": 6.0}], "obstacles": obstacles}}


def add_lane_obstacles(d: dict, rng, start: float = 20.0) -> dict:
    """Scenario dict ``d`` with boxes and cones on its path as in ``obstacles`` (from ``start`` m
    to 20 m before the end), e.g. to vary training scenes; ``d`` is changed and returned."""
    p, s_cum, _, nrm = _frame(d["path"])
    put = _placer(p, s_cum, nrm, d.setdefault("world", {}).setdefault("obstacles", []))
    _lane_obstacles(rng, put, start, float(s_cum[-1]) - 20)
    return d


ERRAND_WORDS = ("go", "faster", "stop")


def _errand(rng, seed, duration):
    """The timeline scales with ``duration`` (that of a 30 s ride for shorter ones, cut short): go at 0.8-1.5 s, faster at 9-13 %, the
    person waits 75-85 m down the lane until 30 % of the ride, stop 7-9 s before the end; the
    words in motor and wind noise at 10-20 dB SNR."""
    ride_s, duration = float(duration), max(float(duration), 30.0)   # a shorter ride is cut from this one
    cruise = float(rng.uniform(3.3, 3.8))
    v = float(rng.uniform(3.0, 3.5))               # the person's jogging speed (as in ``follow``)
    length = 7.0 * duration + 120
    route = _winding(rng, length, max_kappa=0.045)
    p, s_cum, d, nrm = _frame(route)
    obstacles = []
    put = _placer(p, s_cum, nrm, obstacles)

    free = rng.choice([-1.0, 1.0])
    put("box", float(rng.uniform(28, 34)), -free * rng.uniform(0.0, 0.5), size=1.0, height=1.1,
        yaw=round(float(rng.uniform(0, 90)), 1))
    s1, side = float(rng.uniform(50, 56)), rng.choice([-1.0, 1.0])
    for k in range(int(rng.integers(2, 4))):
        put("cone", s1 + rng.uniform(-0.8, 0.8), -side * (0.45 * k - 0.2 + rng.uniform(-0.1, 0.1)))
    # the person: waits at s0, then jogs with one or two short stops
    s0, t0 = float(rng.uniform(75, 85)), 0.3 * duration
    knots, t, s = [[0.0, s0], [round(t0, 3), s0]], t0, s0
    for _ in range(int(rng.integers(1, 3))):
        run = float(rng.uniform(0.15, 0.25) * duration)
        t, s = t + run, s + v * run
        knots.append([round(t, 3), round(s, 3)])
        t += float(rng.uniform(0.6, 1.0))
        knots.append([round(t, 3), round(s, 3)])
    knots.append([round(t + duration + 10, 3), round(s + v * (duration + 10), 3)])
    head = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    curv = np.gradient(head) / np.maximum(np.gradient(s_cum), 1e-9)
    last = s0
    for i in range(len(p) - 5):                   # tall boxes inside bends beyond the person's start
        if s_cum[i] < s0 + 20 or s_cum[i] - last < 35 or abs(curv[i]) < 0.03:
            continue
        off = float(rng.uniform(2.2, 3.0))
        x, y = p[i] + nrm[i] * float(np.sign(curv[i])) * off
        obstacles.append({"kind": "box", "x": round(float(x), 2), "y": round(float(y), 2), "size": 1.4,
                          "height": 2.2, "yaw": round(float(rng.uniform(0, 90)), 1)})
        last = s_cum[i]
    for _ in range(6):                            # cones well off the lane, for the scenery
        j = int(rng.integers(10, len(p) - 1))
        x, y = p[j] + nrm[j] * rng.choice([-1, 1]) * rng.uniform(4.5, 7.0)
        obstacles.append({"kind": "cone", "x": round(float(x), 2), "y": round(float(y), 2)})
    t_go, t_faster = float(rng.uniform(0.8, 1.5)), float(rng.uniform(0.09, 0.13) * duration)
    speech = {"commands": [[round(t_go, 2), "go"], [round(t_faster, 2), "faster"],
                           [round(duration - float(rng.uniform(7.0, 9.0)), 2), "stop"]],
              "snr_db": round(float(rng.uniform(10, 20)), 1), "noise": ["motor", "wind"]}
    world = {"lanes": [{"points": route, "width": 4.0}], "obstacles": obstacles,
             "target": {"path": route, "speed": v, "timing": knots}}
    speech["commands"] = [c for c in speech["commands"] if c[0] < ride_s]
    return {"name": f"errand-{seed}", "duration": ride_s, "seed": seed, "bicycle": {"speed": 0.0},
            "speed_profile": [[0.0, round(cruise, 3)]], "path": route, "gusts": {"rate_hz": 0.1, "impulse": [2.0, 6.0]},
            "world": world, "speech": speech}
