"""The world a bicycle rides in, read from a scenario description (JSON).

A scenario holds the bicycle (parameters and initial state), the path to follow (waypoints),
the target speed over time, gusts, sensor noise, limits, and the scene the camera sees: lanes
(painted edge and dashed centre lines on the ground), obstacles (cones and boxes) and a target
person walking along a polyline. ``load_scenario`` / ``parse_scenario`` check every field and
raise ``ScenarioError`` naming the field and saying what is expected. The format is in
docs/bicycle.md.
"""
from __future__ import annotations

import bisect
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path as FsPath

import numpy as np

from tianrt import TianrtError

from . import params as params_mod
from . import speech as speech_mod
from .sim import Limits, Noise, njit


class ScenarioError(TianrtError, ValueError):
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
        # the per-step queries on plain floats (bisect on a list, no numpy scalars): the same
        # values as searchsorted on the arrays, a few times cheaper at one query per call
        self._s = self.s.tolist()
        self._pu = [(float(a), float(b), float(c), float(d)) for (a, b), (c, d) in zip(p, self.unit)]
        self._head = [math.atan2(u[1], u[0]) for u in self.unit]

    def point(self, s: float) -> tuple[float, float]:
        if s <= 0:
            i = 0
        elif s >= self.total:
            i = len(self._head) - 1
        else:
            i = bisect.bisect_right(self._s, s) - 1
        d = s - self._s[i]
        px, py, ux, uy = self._pu[i]
        return float(px + ux * d), float(py + uy * d)

    def heading(self, s: float) -> float:
        i = min(max(bisect.bisect_right(self._s, s) - 1, 0), len(self._head) - 1)
        return self._head[i]

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
        s, lat, i = _project_window(self.p, self.unit, self.len, self.s, float(x), float(y), lo, hi)
        return s, lat, int(i)


@njit(cache=True)
def _project_window(p, u, length, arc, x, y, lo, hi):
    """Nearest point of segments lo..hi-1 to (x, y): (arc length, signed lateral offset,
    segment); the first segment extends backwards when lo == 0, the last forwards when hi
    is the last segment. Scalar form of the array expressions it replaced (same values)."""
    n = length.shape[0]
    best, bk, ba, bc = np.inf, 0, 0.0, 0.0
    for k in range(lo, hi):
        rx = x - p[k, 0]
        ry = y - p[k, 1]
        along = rx * u[k, 0] + ry * u[k, 1]
        a = min(max(along, 0.0), length[k])
        if k == 0:
            a = min(along, length[0])            # before the start: extend the first segment
        if k == n - 1 and hi == n:
            a = max(along, 0.0)                  # past the end: extend the last segment
        dx = rx - a * u[k, 0]
        dy = ry - a * u[k, 1]
        d2 = dx * dx + dy * dy
        if d2 < best:
            best, bk, ba, bc = d2, k, a, u[k, 0] * ry - u[k, 1] * rx
    sign = 1.0 if bc >= 0 else -1.0
    return arc[bk] + ba, sign * math.sqrt(best), bk


def interp(x: float, xp: list, fp: list) -> float:
    """``np.interp(x, xp, fp)`` for one float x and increasing knots given as lists: the same
    steps as numpy's (the value at a knot, else the slope times the offset from the knot
    below plus its value), so the same result, without numpy's call overhead."""
    if x != x:
        return x
    if x > xp[-1]:
        return float(fp[-1])
    if x < xp[0]:
        return float(fp[0])
    j = bisect.bisect_right(xp, x) - 1
    if j == len(xp) - 1 or xp[j] == x:
        return float(fp[j])
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    r = slope * (x - xp[j]) + fp[j]
    if r != r:  # numpy tries from the other knot, then a flat segment
        r = slope * (x - xp[j + 1]) + fp[j + 1]
        if r != r and fp[j] == fp[j + 1]:
            r = fp[j]
    return float(r)


# -- scenario fields ---------------------------------------------------------------------------

# Ranges of the scenario fields (docs/bicycle.md, docs/limits.md). The physics is the
# linearised Whipple model (Meijaard et al. 2007): its small-angle terms sin(lean) ~ lean and
# cos(lean) ~ 1 are off by 4.7 % and 13 % at 30 degrees and grow fast beyond, where the linear
# model keeps "recovering" from leans (53 degrees, uncontrolled) that topple a real bicycle;
# so a fall is declared at 30 degrees at the latest.
MAX_FALL_LEAN_DEG = 30.0
MIN_DURATION, MAX_DURATION = 0.1, 3600.0   # seconds: at least ten control steps, at most an hour
MAX_COORD = 1e5                            # |x|, |y| of any point [m]
MAX_POINTS = 100_000                       # points in a path, lane or speed profile
MAX_ITEMS = 10_000                         # gust events, obstacles, lanes
MAX_GUST_IMPULSE = 100.0                   # N m s: far past what knocks the benchmark bicycle over
MAX_GUST_RATE = 10.0                       # random gusts per second
MAX_FILE_BYTES = 16 << 20                  # a scenario file
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

def _num(d: dict, key: str, where: str, default=None, lo=None, hi=None, lo_open=False, why: str = "") -> float:
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
        raise ScenarioError(f"field '{name}' must be <= {hi}{f' ({why})' if why else ''}, got {v}")
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


def _is_num(c) -> bool:
    return isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)


def _points(v, name: str, min_len: int = 2, pair: str = "[x, y]", bound: float = MAX_COORD) -> np.ndarray:
    ok = isinstance(v, list) and min_len <= len(v) <= MAX_POINTS and all(
        isinstance(q, list) and len(q) == 2 and all(_is_num(c) for c in q) for q in v)
    if not ok:
        raise ScenarioError(f"field '{name}' must be a list of {min_len} to {MAX_POINTS} {pair} pairs of "
                            "finite numbers")
    a = np.asarray(v, float)
    if np.abs(a).max() > bound:
        i = int(np.argmax(np.abs(a).max(axis=1)))
        raise ScenarioError(f"field '{name}[{i}]' = {v[i]}: values must be within +-{bound:g}")
    return a


@dataclass
class Obstacle:
    kind: str            # "cone" or "box"
    x: float
    y: float
    size: float          # cone base diameter or box side [m]
    height: float
    yaw: float = 0.0

    @property
    def reach(self) -> float:
        """Half the obstacle's widest extent on the ground [m], whatever its yaw: half a cone's
        base, about half a box's diagonal (1.4 times half its side)."""
        return self.size / 2 * (1.4 if self.kind == "box" else 1.0)


@dataclass
class Target:
    """A person walking along a polyline at constant speed, starting at ``start`` seconds; or,
    with ``timing`` ([[t, s], ...] knots, s non-decreasing), at arc length s(t), linear between
    knots (equal s at two knots: the person stands still)."""
    path: Polyline
    speed: float
    start: float = 0.0
    height: float = 1.75
    timing: np.ndarray | None = None

    def arc(self, t: float) -> float:
        if self.timing is not None:
            s = float(np.interp(t, self.timing[:, 0], self.timing[:, 1]))
        else:
            s = max(0.0, t - self.start) * self.speed
        return min(s, self.path.total)

    def position(self, t: float) -> tuple[float, float, float]:
        s = self.arc(t)
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
    look: dict = field(default_factory=dict)   # world.look: lighting, colours, ground texture
    speech: object = None                      # speech.Speech: timed spoken commands (or None)

    def target_speed(self, t: float) -> float:
        knots = self.__dict__.get("_knots")
        if knots is None or knots[0] is not self.speed_profile:
            sp = self.speed_profile
            knots = self.__dict__["_knots"] = (sp, sp[:, 0].tolist(), sp[:, 1].tolist())
        return interp(t, knots[1], knots[2])


TOP = ("name", "duration", "seed", "control_hz", "physics_hz", "bicycle", "speed_profile", "path", "gusts",
       "noise", "limits", "world", "speech")


def parse_scenario(d, source: str = "<dict>") -> Scenario:
    try:
        return _parse(d, source)
    except ScenarioError as exc:
        raise ScenarioError(f"scenario {source}: {exc}") from None


def _parse(d, source) -> Scenario:
    if not isinstance(d, dict):
        raise ScenarioError(f"the top level must be a JSON object, got {type(d).__name__}")
    _known(d, TOP, "")
    name = d.get("name")
    if name is None:
        stem = FsPath(source).stem if source != "<dict>" else "scenario"
        name = stem if NAME_RE.fullmatch(stem) else "scenario"
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ScenarioError(f"field 'name' must be 1 to 64 letters, digits, '.', '_' or '-' (it names the "
                            f"output files), starting with a letter or digit; got {name!r}")
    duration = _num(d, "duration", "", 20.0, lo=MIN_DURATION, hi=MAX_DURATION)
    seed = d.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ScenarioError(f"field 'seed' must be an integer in [0, 2**63), got {seed!r}")
    control_hz = _num(d, "control_hz", "", 100.0, lo=100.0, hi=200.0)
    physics_hz = _num(d, "physics_hz", "", 1000.0, lo=1000.0, hi=20000.0)
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
    initial["steer"] = _num(b, "steer", "bicycle", 0.0, lo=-0.5, hi=0.5)
    for k in ("lean_rate", "steer_rate"):
        initial[k] = _num(b, k, "bicycle", 0.0, lo=-10.0, hi=10.0)
    for k in ("x", "y"):
        initial[k] = _num(b, k, "bicycle", 0.0, lo=-MAX_COORD, hi=MAX_COORD)

    path = d.get("path")
    if path is None:
        raise ScenarioError("field 'path' is required: a list of [x, y] waypoints to follow")
    pl = Polyline(_points(path, "path"), "path")
    initial["heading"] = _num(b, "heading", "bicycle", pl.heading(0.0), lo=-2 * math.pi, hi=2 * math.pi)

    sp = d.get("speed_profile", [[0.0, initial["speed"]]])
    spa = _points(sp, "speed_profile", 1, pair="[t, speed]", bound=MAX_DURATION)
    if np.any(spa[:, 0] < 0):
        raise ScenarioError("field 'speed_profile' times must be >= 0 s")
    if np.any(np.diff(spa[:, 0]) <= 0):
        raise ScenarioError("field 'speed_profile' must have strictly increasing times")
    if np.any(spa[:, 1] < 0) or np.any(spa[:, 1] > 15):
        raise ScenarioError("field 'speed_profile' speeds must be within [0, 15] m/s")

    g = _obj(d, "gusts", "")
    _known(g, ("rate_hz", "impulse", "duration", "events"), "gusts")
    imp = g.get("impulse", [4.0, 12.0])
    if not (isinstance(imp, list) and len(imp) == 2 and all(_is_num(c) for c in imp)
            and 0 <= imp[0] <= imp[1] <= MAX_GUST_IMPULSE):
        raise ScenarioError(f"field 'gusts.impulse' must be [min, max] with 0 <= min <= max <= "
                            f"{MAX_GUST_IMPULSE:g} (N m s), got {imp!r}")
    events = g.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_ITEMS:
        raise ScenarioError(f"field 'gusts.events' must be a list of at most {MAX_ITEMS} [t, impulse] pairs")
    for i, e in enumerate(events):
        if not (isinstance(e, list) and len(e) == 2 and all(_is_num(c) for c in e)):
            raise ScenarioError(f"field 'gusts.events[{i}]' must be a [t, impulse] pair of finite numbers, "
                                f"got {e!r}")
        if not 0 <= e[0] <= MAX_DURATION:
            raise ScenarioError(f"field 'gusts.events[{i}]': time {e[0]!r} must be within [0, {MAX_DURATION:g}] s")
        if abs(e[1]) > MAX_GUST_IMPULSE:
            raise ScenarioError(f"field 'gusts.events[{i}]': impulse {e[1]!r} must be within "
                                f"+-{MAX_GUST_IMPULSE:g} N m s")
    gusts = Gusts(_num(g, "rate_hz", "gusts", 0.0, lo=0.0, hi=MAX_GUST_RATE), tuple(float(c) for c in imp),
                  _num(g, "duration", "gusts", 0.2, lo=0.0, lo_open=True, hi=5.0),
                  [list(map(float, e)) for e in events])

    n = _obj(d, "noise", "")
    _known(n, ("lean", "lean_rate", "steer", "steer_rate", "speed"), "noise")
    dn = Noise()
    noise = Noise(**{k: _num(n, k, "noise", getattr(dn, k), lo=0.0, hi=1.0) for k in
                     ("lean", "lean_rate", "steer", "steer_rate", "speed")})

    lim = _obj(d, "limits", "")
    _known(lim, ("steer_angle_deg", "steer_torque", "drive_torque", "fall_lean_deg"), "limits")
    limits = Limits(steer_angle=math.radians(_num(lim, "steer_angle_deg", "limits", 45.0, lo=0, lo_open=True, hi=90)),
                    steer_torque=_num(lim, "steer_torque", "limits", 5.0, lo=0, lo_open=True, hi=100),
                    drive_torque=_num(lim, "drive_torque", "limits", 40.0, lo=0, lo_open=True, hi=500),
                    fall_lean=math.radians(_num(lim, "fall_lean_deg", "limits", 30.0, lo=0, lo_open=True,
                                                hi=MAX_FALL_LEAN_DEG, why="the linearised model's range")))

    w = _obj(d, "world", "")
    _known(w, ("lanes", "obstacles", "target", "look"), "world")
    look = _look(_obj(w, "look", "world"))
    lanes = []
    raw_lanes = w.get("lanes", "path")
    if raw_lanes == "path":
        lanes.append(Lane(pl.p.copy(), 3.0))
    elif isinstance(raw_lanes, list) and len(raw_lanes) <= MAX_ITEMS:
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
    if not isinstance(raw_obs, list) or len(raw_obs) > MAX_ITEMS:
        raise ScenarioError(f"field 'world.obstacles' must be a list of at most {MAX_ITEMS} objects")
    for i, o in enumerate(raw_obs):
        where = f"world.obstacles[{i}]"
        if not isinstance(o, dict):
            raise ScenarioError(f"field '{where}' must be an object with kind, x, y")
        _known(o, ("kind", "x", "y", "size", "height", "yaw"), where)
        kind = o.get("kind", "cone")
        if kind not in ("cone", "box"):
            raise ScenarioError(f"field '{where}.kind' must be \"cone\" or \"box\", got {kind!r}")
        obstacles.append(Obstacle(kind, _num(o, "x", where, lo=-MAX_COORD, hi=MAX_COORD),
                                  _num(o, "y", where, lo=-MAX_COORD, hi=MAX_COORD),
                                  _num(o, "size", where, 0.4 if kind == "cone" else 1.0, lo=0.05, hi=20),
                                  _num(o, "height", where, 0.7 if kind == "cone" else 1.0, lo=0.05, hi=20),
                                  math.radians(_num(o, "yaw", where, 0.0, lo=-360, hi=360))))
    target = None
    t = w.get("target")
    if t is not None:
        if not isinstance(t, dict):
            raise ScenarioError("field 'world.target' must be an object with 'path' and 'speed'")
        _known(t, ("path", "speed", "start", "height", "timing"), "world.target")
        timing = None
        if "timing" in t:
            timing = _points(t["timing"], "world.target.timing", 2, pair="[t, s]")
            if np.any(np.diff(timing[:, 0]) <= 0) or np.any(np.diff(timing[:, 1]) < 0) or timing[0, 1] < 0:
                raise ScenarioError("field 'world.target.timing' must have strictly increasing times and "
                                    "non-decreasing arc lengths >= 0")
        target = Target(Polyline(_points(t.get("path"), "world.target.path"), "world.target.path"),
                        _num(t, "speed", "world.target", 1.3, lo=0.0, hi=10.0),
                        _num(t, "start", "world.target", 0.0, lo=0.0, hi=MAX_DURATION),
                        _num(t, "height", "world.target", 1.75, lo=0.5, hi=2.5), timing)
    try:
        spoken = speech_mod.parse(d.get("speech"), duration)
    except speech_mod.SpeechError as exc:
        raise ScenarioError(str(exc)) from None
    return Scenario(name, duration, int(seed), control_hz, physics_hz, bp, initial, spa, pl, gusts, noise,
                    limits, lanes, obstacles, target, source, look, spoken)


LOOK_DEFAULT = {"light": 1.0, "ground": [96, 112, 96], "clothing": [60, 40, 200], "texture": 0.0,
                "texture_seed": 0, "shading": 0.0}


def _look(d: dict) -> dict:
    """world.look: ``light`` (brightness factor 0.3-2), ``ground`` and ``clothing`` (BGR 0-255),
    ``texture`` (contrast of ground patches, 0-1), ``texture_seed`` (where they lie and where
    the sun is) and ``shading`` (0-1: how much box faces and the person are shaded by the sun)."""
    _known(d, tuple(LOOK_DEFAULT), "world.look")
    out = {"light": _num(d, "light", "world.look", 1.0, lo=0.3, hi=2.0),
           "texture": _num(d, "texture", "world.look", 0.0, lo=0.0, hi=1.0),
           "shading": _num(d, "shading", "world.look", 0.0, lo=0.0, hi=1.0)}
    seed = d.get("texture_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ScenarioError(f"field 'world.look.texture_seed' must be an integer in [0, 2**63), got {seed!r}")
    out["texture_seed"] = seed
    for k in ("ground", "clothing"):
        v = d.get(k, LOOK_DEFAULT[k])
        if not (isinstance(v, list) and len(v) == 3 and all(_is_num(c) and 0 <= c <= 255 for c in v)):
            raise ScenarioError(f"field 'world.look.{k}' must be a [b, g, r] colour of numbers 0-255, got {v!r}")
        out[k] = [float(c) for c in v]
    return out


def read_scenario_file(path):
    """The JSON value in a scenario file: a regular file of at most MAX_FILE_BYTES, UTF-8 JSON."""
    path = FsPath(path)

    def fail(problem):
        return ScenarioError(f"scenario {path}: cannot read the file: {problem}")
    try:  # non-blocking open and fstat: a FIFO or device is refused, never read
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail("not a regular file (a directory, FIFO or device); give a JSON file")
        if st.st_size > MAX_FILE_BYTES:
            raise fail(f"{st.st_size} bytes, more than the {MAX_FILE_BYTES >> 20} MiB a scenario may have")
        os.set_blocking(fd, True)
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise fail(f"more than the {MAX_FILE_BYTES >> 20} MiB a scenario may have")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"scenario {path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}") from None
    except RecursionError:
        raise ScenarioError(f"scenario {path}: JSON nested too deeply to read") from None


def load_scenario(path) -> Scenario:
    """Read and check a scenario JSON file."""
    return parse_scenario(read_scenario_file(path), str(path))
