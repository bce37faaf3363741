"""The world a bicycle rides in, read from a scenario description (JSON).

A scenario holds the bicycle (parameters and initial state), the path to follow (waypoints),
the target speed over time, gusts, sensor noise, limits, and the scene the camera sees: lanes
(painted edge and dashed centre lines on the ground), obstacles (cones and boxes) and a target
person walking along a polyline. ``load_scenario`` / ``parse_scenario`` check every field and
raise ``ScenarioError`` naming the field and saying what is expected. The format is in
docs/bicycle.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import numpy as np

from . import params as params_mod
from .sim import Limits, Noise


class ScenarioError(ValueError):
    """A bad scenario file or object; the message names the field."""


# -- geometry ----------------------------------------------------------------------------------

class Polyline:
    """A 2-D polyline with arc-length queries; beyond the ends it extends straight."""

    def __init__(self, points, where: str = "path"):
        p = np.asarray(points, dtype=float)
        if p.ndim != 2 or p.shape[1] != 2 or len(p) < 2:
            raise ScenarioError(f"{where}: expected a list of at least two [x, y] points, got shape {p.shape}")
        seg = np.diff(p, axis=0)
        length = np.hypot(seg[:, 0], seg[:, 1])
        if np.any(length <= 1e-9):
            i = int(np.argmax(length <= 1e-9))
            raise ScenarioError(f"{where}: points {i} and {i + 1} coincide; consecutive points must differ")
        self.p, self.seg, self.len = p, seg, length
        self.s = np.concatenate([[0.0], np.cumsum(length)])
        self.unit = seg / length[:, None]
        self.total = float(self.s[-1])
        self._hint = 0

    def point(self, s: float) -> tuple[float, float]:
        if s <= 0:
            i = 0
        elif s >= self.total:
            i = len(self.len) - 1
        else:
            i = int(np.searchsorted(self.s, s, side="right")) - 1
        d = s - self.s[i]
        return float(self.p[i, 0] + self.unit[i, 0] * d), float(self.p[i, 1] + self.unit[i, 1] * d)

    def heading(self, s: float) -> float:
        i = int(np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.len) - 1))
        return float(math.atan2(self.unit[i, 1], self.unit[i, 0]))

    def restart(self) -> None:
        """Forget the previous projection (call at the start of a ride)."""
        self._hint = 0

    def project(self, x: float, y: float, window: int = 12) -> tuple[float, float]:
        """(arc length of the nearest point, signed lateral offset: positive to the right of the
        path's direction, as y is to the right of x). Searches a window of segments around the
        previous answer first (paths are followed forward), the whole path if that is > 5 m off."""
        n = len(self.len)
        lo, hi = max(0, self._hint - 5), min(n, self._hint + window)
        s, lat, i = self._project(x, y, lo, hi)
        if abs(lat) > 5.0:  # far from the local window: search the whole path
            s, lat, i = self._project(x, y, 0, n)
        self._hint = i
        return s, lat

    def _project(self, x, y, lo, hi):
        p, u, L = self.p[lo:hi], self.unit[lo:hi], self.len[lo:hi]
        rx, ry = x - p[:, 0], y - p[:, 1]
        along = rx * u[:, 0] + ry * u[:, 1]
        a = np.clip(along, 0, L)
        if lo == 0:
            a[0] = min(along[0], L[0])            # before the start: extend the first segment
        if hi == len(self.len):
            a[-1] = max(along[-1], 0.0)           # past the end: extend the last segment
        cross = u[:, 0] * ry - u[:, 1] * rx
        dist2 = (rx - a * u[:, 0]) ** 2 + (ry - a * u[:, 1]) ** 2
        k = int(np.argmin(dist2))
        sign = 1.0 if cross[k] >= 0 else -1.0
        return float(self.s[lo + k] + a[k]), sign * float(math.sqrt(dist2[k])), lo + k


# -- scenario fields ---------------------------------------------------------------------------

def _num(d: dict, key: str, where: str, default=None, lo=None, hi=None, lo_open=False) -> float:
    name = f"{where}.{key}" if where else key
    if key not in d:
        if default is None:
            raise ScenarioError(f"field '{name}' is required (a number)")
        return float(default)
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScenarioError(f"field '{name}' must be a finite number, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ScenarioError(f"field '{name}' must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise ScenarioError(f"field '{name}' must be <= {hi}, got {v}")
    return float(v)


def _obj(d, key: str, where: str) -> dict:
    name = f"{where}.{key}" if where else key
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise ScenarioError(f"field '{name}' must be an object {{...}}, got {type(v).__name__}")
    return v


def _known(d: dict, allowed, where: str) -> None:
    extra = sorted(set(d) - set(allowed))
    if extra:
        raise ScenarioError(f"unknown field(s) {', '.join(repr(f'{where}.{e}' if where else e) for e in extra)}; "
                            f"allowed here: {', '.join(sorted(allowed))}")


def _points(v, name: str, min_len: int = 2) -> np.ndarray:
    ok = isinstance(v, list) and len(v) >= min_len and all(
        isinstance(q, list) and len(q) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                   and math.isfinite(c) for c in q) for q in v)
    if not ok:
        raise ScenarioError(f"field '{name}' must be a list of at least {min_len} [x, y] number pairs")
    return np.asarray(v, float)


@dataclass
class Obstacle:
    kind: str            # "cone" or "box"
    x: float
    y: float
    size: float          # cone base diameter or box side [m]
    height: float
    yaw: float = 0.0


@dataclass
class Target:
    """A person walking along a polyline at constant speed, starting at ``start`` seconds."""
    path: Polyline
    speed: float
    start: float = 0.0
    height: float = 1.75

    def position(self, t: float) -> tuple[float, float, float]:
        s = max(0.0, t - self.start) * self.speed
        s = min(s, self.path.total)
        x, y = self.path.point(s)
        return x, y, self.path.heading(s)


@dataclass
class Lane:
    points: np.ndarray
    width: float


@dataclass
class Gusts:
    rate_hz: float = 0.2                 # mean rate of random gusts (Poisson)
    impulse: tuple = (4.0, 12.0)         # lean-torque impulse range [N m s], random sign
    duration: float = 0.2                # each gust is a constant lean torque for this long [s]
    events: list = field(default_factory=list)  # explicit [t, impulse] pairs, added to random ones

    def schedule(self, duration: float, rng: np.random.Generator) -> list[tuple[float, float]]:
        ev = [(float(t), float(j)) for t, j in self.events]
        t = 0.0
        while self.rate_hz > 0:
            t += rng.exponential(1.0 / self.rate_hz)
            if t >= duration:
                break
            mag = rng.uniform(*self.impulse) * (1 if rng.random() < 0.5 else -1)
            ev.append((t, mag))
        return sorted(ev)


@dataclass
class Scenario:
    name: str
    duration: float
    seed: int
    control_hz: float
    physics_hz: float
    bicycle: params_mod.BicycleParams
    initial: dict
    speed_profile: np.ndarray            # (n, 2): [t, v] knots, linear between, held after
    path: Polyline
    gusts: Gusts
    noise: Noise
    limits: Limits
    lanes: list
    obstacles: list
    target: Target | None
    source: str = "<dict>"

    def target_speed(self, t: float) -> float:
        sp = self.speed_profile
        return float(np.interp(t, sp[:, 0], sp[:, 1]))


TOP = ("name", "duration", "seed", "control_hz", "physics_hz", "bicycle", "speed_profile", "path", "gusts",
       "noise", "limits", "world")


def parse_scenario(d, source: str = "<dict>") -> Scenario:
    try:
        return _parse(d, source)
    except ScenarioError as exc:
        raise ScenarioError(f"scenario {source}: {exc}") from None


def _parse(d, source) -> Scenario:
    if not isinstance(d, dict):
        raise ScenarioError(f"the top level must be a JSON object, got {type(d).__name__}")
    _known(d, TOP, "")
    name = d.get("name", FsPath(source).stem if source != "<dict>" else "scenario")
    if not isinstance(name, str):
        raise ScenarioError(f"field 'name' must be a string, got {name!r}")
    duration = _num(d, "duration", "", 20.0, lo=0, lo_open=True)
    seed = d.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ScenarioError(f"field 'seed' must be a non-negative integer, got {seed!r}")
    control_hz = _num(d, "control_hz", "", 100.0, lo=100.0, hi=200.0)
    physics_hz = _num(d, "physics_hz", "", 1000.0, lo=1000.0)
    if abs(physics_hz / control_hz - round(physics_hz / control_hz)) > 1e-9:
        raise ScenarioError(f"field 'physics_hz' ({physics_hz:g}) must be a whole multiple of "
                            f"'control_hz' ({control_hz:g})")

    b = _obj(d, "bicycle", "")
    _known(b, ("params", "speed", "lean", "steer", "lean_rate", "steer_rate", "heading", "x", "y"), "bicycle")
    try:
        bp = params_mod.from_dict(b.get("params", "benchmark"), "bicycle.params")
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    initial = {"speed": _num(b, "speed", "bicycle", 5.0, lo=0.0, hi=15.0),
               "lean": _num(b, "lean", "bicycle", 0.0, lo=-0.5, hi=0.5)}
    for k in ("steer", "lean_rate", "steer_rate", "x", "y"):
        initial[k] = _num(b, k, "bicycle", 0.0)

    path = d.get("path")
    if path is None:
        raise ScenarioError("field 'path' is required: a list of [x, y] waypoints to follow")
    pl = Polyline(_points(path, "path"), "path")
    initial["heading"] = _num(b, "heading", "bicycle", pl.heading(0.0))

    sp = d.get("speed_profile", [[0.0, initial["speed"]]])
    if not (isinstance(sp, list) and sp and all(isinstance(q, list) and len(q) == 2 for q in sp)):
        raise ScenarioError("field 'speed_profile' must be a list of [t, speed] pairs")
    spa = _points(sp, "speed_profile", 1)
    if np.any(np.diff(spa[:, 0]) <= 0):
        raise ScenarioError("field 'speed_profile' must have strictly increasing times")
    if np.any(spa[:, 1] < 0) or np.any(spa[:, 1] > 15):
        raise ScenarioError("field 'speed_profile' speeds must be within [0, 15] m/s")

    g = _obj(d, "gusts", "")
    _known(g, ("rate_hz", "impulse", "duration", "events"), "gusts")
    imp = g.get("impulse", [4.0, 12.0])
    if not (isinstance(imp, list) and len(imp) == 2 and all(isinstance(c, (int, float)) for c in imp)
            and 0 <= imp[0] <= imp[1]):
        raise ScenarioError(f"field 'gusts.impulse' must be [min, max] with 0 <= min <= max (N m s), got {imp!r}")
    events = g.get("events", [])
    if events and not all(isinstance(e, list) and len(e) == 2 and all(isinstance(c, (int, float)) for c in e)
                          for e in events):
        raise ScenarioError("field 'gusts.events' must be a list of [t, impulse] pairs")
    gusts = Gusts(_num(g, "rate_hz", "gusts", 0.0, lo=0.0), tuple(float(c) for c in imp),
                  _num(g, "duration", "gusts", 0.2, lo=0.0, lo_open=True), [list(map(float, e)) for e in events])

    n = _obj(d, "noise", "")
    _known(n, ("lean", "lean_rate", "steer", "steer_rate", "speed"), "noise")
    dn = Noise()
    noise = Noise(**{k: _num(n, k, "noise", getattr(dn, k), lo=0.0) for k in
                     ("lean", "lean_rate", "steer", "steer_rate", "speed")})

    lim = _obj(d, "limits", "")
    _known(lim, ("steer_angle_deg", "steer_torque", "drive_torque", "fall_lean_deg"), "limits")
    limits = Limits(steer_angle=math.radians(_num(lim, "steer_angle_deg", "limits", 45.0, lo=0, lo_open=True, hi=90)),
                    steer_torque=_num(lim, "steer_torque", "limits", 5.0, lo=0, lo_open=True),
                    drive_torque=_num(lim, "drive_torque", "limits", 40.0, lo=0, lo_open=True),
                    fall_lean=math.radians(_num(lim, "fall_lean_deg", "limits", 30.0, lo=0, lo_open=True, hi=90)))

    w = _obj(d, "world", "")
    _known(w, ("lanes", "obstacles", "target"), "world")
    lanes = []
    raw_lanes = w.get("lanes", "path")
    if raw_lanes == "path":
        lanes.append(Lane(pl.p.copy(), 3.0))
    elif isinstance(raw_lanes, list):
        for i, ln in enumerate(raw_lanes):
            where = f"world.lanes[{i}]"
            if not isinstance(ln, dict):
                raise ScenarioError(f"field '{where}' must be an object with 'points' and 'width'")
            _known(ln, ("points", "width"), where)
            pts = _points(ln.get("points"), f"{where}.points")
            Polyline(pts, f"{where}.points")
            lanes.append(Lane(pts, _num(ln, "width", where, 3.0, lo=0.5, hi=20)))
    else:
        raise ScenarioError("field 'world.lanes' must be \"path\" (one lane along the path) or a list of lanes")
    obstacles = []
    raw_obs = w.get("obstacles", [])
    if not isinstance(raw_obs, list):
        raise ScenarioError("field 'world.obstacles' must be a list of objects")
    for i, o in enumerate(raw_obs):
        where = f"world.obstacles[{i}]"
        if not isinstance(o, dict):
            raise ScenarioError(f"field '{where}' must be an object with kind, x, y")
        _known(o, ("kind", "x", "y", "size", "height", "yaw"), where)
        kind = o.get("kind", "cone")
        if kind not in ("cone", "box"):
            raise ScenarioError(f"field '{where}.kind' must be \"cone\" or \"box\", got {kind!r}")
        obstacles.append(Obstacle(kind, _num(o, "x", where), _num(o, "y", where),
                                  _num(o, "size", where, 0.4 if kind == "cone" else 1.0, lo=0.05, hi=20),
                                  _num(o, "height", where, 0.7 if kind == "cone" else 1.0, lo=0.05, hi=20),
                                  math.radians(_num(o, "yaw", where, 0.0))))
    target = None
    t = w.get("target")
    if t is not None:
        if not isinstance(t, dict):
            raise ScenarioError("field 'world.target' must be an object with 'path' and 'speed'")
        _known(t, ("path", "speed", "start", "height"), "world.target")
        target = Target(Polyline(_points(t.get("path"), "world.target.path"), "world.target.path"),
                        _num(t, "speed", "world.target", 1.3, lo=0.0, hi=5.0),
                        _num(t, "start", "world.target", 0.0, lo=0.0),
                        _num(t, "height", "world.target", 1.75, lo=0.5, hi=2.5))
    return Scenario(name, duration, int(seed), control_hz, physics_hz, bp, initial, spa, pl, gusts, noise,
                    limits, lanes, obstacles, target, source)


def load_scenario(path) -> Scenario:
    """Read and check a scenario JSON file."""
    path = FsPath(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"scenario {path}: cannot read the file ({exc.strerror})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}") from None
    return parse_scenario(d, str(path))
