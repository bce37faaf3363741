"""The vision network: a small CNN on the 64x48 grey camera frame that outputs, for the CANN
tracker and the obstacle avoider,

- ``code``: the person's bearing as a population code over 15 angle bins (-35 to 35 degrees,
  5 degrees apart, Gaussian of 5 degrees, zero when the person is not visible);
- ``visible``: 1 when at least ``MIN_PIXELS`` pixels of the person are in the frame;
- ``distance``: the person's log-distance log2(d / 5 m) / 2, clipped to [-1, 1] (1.25-20 m;
  1 when not visible, a label the training does not weigh): an error of a given size is the
  same *relative* error at every range, and the regression is not pulled towards "far" by the
  frames without a person (``train_vision`` masks them);
- ``sectors``: obstacle nearness over 7 angular sectors of 10 degrees ahead: min(1, 4 m / d)
  for the nearest obstacle whose angular extent overlaps the sector (0 when none within 15 m).

``decode`` turns an output into a ``Percept``, taking out the sector readings the person it
sees explains (``explain_person``: the network reports the person as something in the way too).

Labels come from the simulator's ground truth (``labels``); "visible" is measured in the
renderer itself: the pixels that change when the person is removed from the scene, so an
occluded person is not visible. ``train_vision`` regenerates the data set and the shipped
weights (``data/vision_cnn.tnr``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .render import CameraSpec, Scene, SensorCamera, camera_pose

BINS = np.arange(-35.0, 35.01, 5.0)        # bearing code centres [deg]
CODE_SIGMA = 5.0
SECTORS = np.arange(-35.0, 35.01, 10.0)    # sector edges [deg] (7 sectors)
SECTOR_RANGE = 15.0
SECTOR_NEAR = 4.0                          # sector value = min(1, SECTOR_NEAR / d)
OBSTACLE_AHEAD = 0.7                       # share of ``obstacles`` training poses placed before an obstacle
DIST_REF = 5.0                             # distance value = log2(d / DIST_REF) / DIST_OCTAVES
DIST_OCTAVES = 2.0                         # ... clipped to [-1, 1]: DIST_REF / 4 to DIST_REF * 4
DIST_SCALE = 20.0                          # the distance reported when nothing is seen [m]


def nearness(d: float, near: float) -> float:
    return min(1.0, near / max(d, 1e-6))


def distance_value(d: float) -> float:
    """The person's distance label for d metres (log scale, clipped to [-1, 1])."""
    return float(min(1.0, max(-1.0, math.log2(max(d, 1e-6) / DIST_REF) / DIST_OCTAVES)))


def distance_from_value(u: float) -> float:
    """Inverse of ``distance_value`` (metres; the output clipped to the label's range)."""
    return DIST_REF * 2.0 ** (DIST_OCTAVES * min(1.0, max(-1.0, float(u))))


def sector_value(d: float) -> float:
    """The sector label of an obstacle at d metres (thresholds in follow.py use this)."""
    return nearness(d, SECTOR_NEAR)
MIN_PIXELS = 4
N_OUT = len(BINS) + 2 + len(SECTORS) - 1   # 24
SLICES = {"code": slice(0, 15), "visible": slice(15, 16), "distance": slice(16, 17), "sectors": slice(17, 24)}


def camera_xy(spec: CameraSpec, x, y, heading):
    return x + spec.mount_forward * math.cos(heading), y + spec.mount_forward * math.sin(heading)


def bearing_code(bearing_deg: float, visible: bool) -> np.ndarray:
    if not visible:
        return np.zeros(len(BINS), np.float32)
    return np.exp(-(BINS - bearing_deg) ** 2 / (2 * CODE_SIGMA ** 2)).astype(np.float32)


def sectors_truth(obstacles, cx, cy, heading, xy=None) -> np.ndarray:
    """Proximity of the nearest obstacle per sector (ground truth). ``xy``: the obstacles'
    positions as an (n, 2) array, to skip the far ones quickly."""
    out = np.zeros(len(SECTORS) - 1, np.float32)
    if xy is not None and len(xy):
        near = np.flatnonzero(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) <= SECTOR_RANGE)
        obstacles = [obstacles[i] for i in near]
    for o in obstacles:
        dx, dy = o.x - cx, o.y - cy
        d = math.hypot(dx, dy)
        if d > SECTOR_RANGE or d < 1e-6:
            continue
        b = math.degrees(math.atan2(dy, dx) - heading)
        b = (b + 180) % 360 - 180
        half = math.degrees(math.atan2(o.reach, d))
        lo, hi = b - half, b + half
        for k in range(len(out)):
            if hi >= SECTORS[k] and lo <= SECTORS[k + 1]:
                out[k] = max(out[k], sector_value(d))
    return out


class Labeller:
    """Frames and their ground-truth labels for one scenario."""

    def __init__(self, sc, spec: CameraSpec | None = None):
        self.sc, self.spec = sc, spec or CameraSpec()
        self.scene = Scene(sc)
        self.cam = SensorCamera(self.scene, self.spec)
        self.xy = np.array([[o.x, o.y] for o in sc.obstacles], float).reshape(-1, 2)
        self.blind = None
        if sc.target is not None:
            self.blind = SensorCamera(Scene(sc), self.spec)
            self.blind.renderer.scene.target = None

    def person(self, x, y, heading, lean, t, frame=None):
        """(bearing [deg], distance [m], visible pixels) of the person seen from this pose."""
        if self.sc.target is None:
            return 0.0, DIST_SCALE, 0
        frame = self.cam.frame(x, y, heading, lean, t) if frame is None else frame
        pix = int(np.count_nonzero(np.abs(frame.astype(np.int16) - self.blind.frame(x, y, heading, lean, t)) > 2))
        cx, cy = camera_xy(self.spec, x, y, heading)
        tx, ty, _ = self.sc.target.position(t)
        b = math.degrees(math.atan2(ty - cy, tx - cx) - heading)
        return (b + 180) % 360 - 180, math.hypot(tx - cx, ty - cy), pix

    def sample(self, x, y, heading, lean, t, frame=None):
        frame = self.cam.frame(x, y, heading, lean, t) if frame is None else frame
        b, d, pix = self.person(x, y, heading, lean, t, frame)
        vis = pix >= MIN_PIXELS
        cx, cy = camera_xy(self.spec, x, y, heading)
        y_ = np.concatenate([bearing_code(b, vis), [float(vis)], [distance_value(d) if vis else 1.0],
                             sectors_truth(self.sc.obstacles, cx, cy, heading, self.xy)]).astype(np.float32)
        return frame, y_, (b, d, pix)


def normalise(frames) -> np.ndarray:
    """uint8 frames (n, 48, 64) -> float32 (n, 1, 48, 64) in [-1, 1] (as the graph's input)."""
    f = np.asarray(frames, np.float32)
    return ((f - 128.0) / 128.0)[:, None]


# -- decoding the network's output ---------------------------------------------------------------

@dataclass
class Percept:
    visible: float
    bearing: float | None       # degrees, right positive (None when not visible)
    distance: float
    sectors: np.ndarray
    code: np.ndarray
    explained: np.ndarray | None = None   # per sector: its reading was taken out as the person's (explain_person)


PERSON_MARGIN_DEG = 5.0    # the person's half-width at the follow distance plus the bearing's error
PERSON_NEARER = 0.7        # a sector reading nearer than this share of the person's distance is kept
# The person explains sector readings only when the CNN is this sure of them (as sure as the
# brain must be, frame by frame, to assert "person": brain.SEEN_ON). In the errand scenes'
# map replay (evaluate_nav.map_quality, seeds 700-707) 56 % of the frames that decode "the
# person" at a cone or box where no person is are below it, and 1.2 % of those that decode the
# true person within 15 m (round 13: cones hidden as the person were hit, errand seeds 108, 115).
EXPLAIN_VISIBLE = 0.7


def explain_person(sectors: np.ndarray, bearing: float, distance: float) -> np.ndarray:
    """The sectors with what the person explains taken out: a sector within PERSON_MARGIN_DEG
    of the person's bearing whose reading is not clearly nearer than the person (its distance
    SECTOR_NEAR / value >= PERSON_NEARER * distance) reads 0. The CNN, which may no longer tell
    a scene's kind from its lane, reports the person it sees as something in the way too; what
    stands beside the person in the same sector, or behind them, is lost with it (docs/bicycle.md)."""
    out = np.array(sectors, float)
    for k in range(len(out)):
        if SECTORS[k + 1] >= bearing - PERSON_MARGIN_DEG and SECTORS[k] <= bearing + PERSON_MARGIN_DEG:
            if out[k] > 0 and SECTOR_NEAR / out[k] >= PERSON_NEARER * distance:
                out[k] = 0.0
    return out


def decode(y: np.ndarray, threshold: float = 0.5, explain: bool = True) -> Percept:
    """The network's output (or, with ``explain=False``, labels) as a Percept; ``explain``: the
    person's own sector readings taken out (``explain_person``) when the person is seen with a
    visibility of at least EXPLAIN_VISIBLE."""
    y = np.asarray(y, float).reshape(-1)
    code = y[SLICES["code"]]
    vis = float(y[15])
    bearing = None
    if vis >= threshold and code.max() > 0.2:
        k = int(np.argmax(code))
        lo, hi = max(0, k - 1), min(len(BINS), k + 2)
        w = np.clip(code[lo:hi], 0, None)
        bearing = float((w * BINS[lo:hi]).sum() / max(w.sum(), 1e-9))
    dist = distance_from_value(y[16])
    sectors = np.clip(y[SLICES["sectors"]], 0, 1)
    explained = np.zeros(len(sectors), bool)
    if explain and bearing is not None and vis >= EXPLAIN_VISIBLE:
        kept = explain_person(sectors, bearing, dist)
        explained = (kept == 0) & (sectors > 0)
        sectors = kept
    return Percept(vis, bearing, dist, sectors, code, explained)


def load(path=None):
    """The shipped vision CNN (data/vision_cnn.tnr), a tr.Graph with input ``frame`` (1, 48, 64)."""
    from pathlib import Path

    import tianrt as tr

    return tr.load(path or Path(__file__).with_name("data") / "vision_cnn.tnr")


class Vision:
    """The CNN stepped one frame at a time in a tr.Runtime; keeps per-frame latencies."""

    def __init__(self, graph, backend: str = "reference"):
        import tianrt as tr

        self.graph = graph
        self.rt = tr.Runtime(graph, backend=backend)
        self.latency = []

    def __call__(self, frame: np.ndarray) -> Percept:
        t0 = time.perf_counter()
        out = self.rt.step({"frame": normalise(frame[None])[0]})
        self.latency.append(time.perf_counter() - t0)
        return decode(out["y"])


def arc_of(path, o) -> tuple[float, float]:
    """(arc length, distance [m]) of the path's vertex nearest to obstacle ``o``."""
    gap = np.hypot(path.p[:, 0] - o.x, path.p[:, 1] - o.y)
    i = int(np.argmin(gap))
    return float(path.s[i]), float(gap[i])


def poses(sc, kind: str, n: int, rng, near: float = 0.0):
    """n (x, y, heading, lean, t) camera poses for frames of scenario ``sc``. ``follow``: 2-15 m
    behind the person, or with probability ``near`` 2-6 m (where a follower stops behind it)."""
    out = []
    for _ in range(n):
        lean = float(rng.uniform(-0.15, 0.15))
        if kind == "follow":
            t = float(rng.uniform(0, sc.duration))
            s = sc.target.arc(t) - float(rng.uniform(2.0, 6.0) if near and rng.random() < near else rng.uniform(2.0, 15.0))
        elif sc.obstacles and rng.random() < OBSTACLE_AHEAD:
            # in front of an obstacle, as an avoider approaching it sees it (the rare, important case)
            o = sc.obstacles[int(rng.integers(len(sc.obstacles)))]
            t = 0.0
            s = arc_of(sc.path, o)[0] - float(rng.uniform(1.5, 15.0))
        else:
            t = 0.0
            s = float(rng.uniform(0, sc.path.total - 20))
        out.append(pose_near(sc, s, 1.5 if kind == "follow" else 2.5, lean, t, rng))
    return out


def pose_near(sc, s: float, lateral: float, lean: float, t: float, rng):
    """A camera pose (x, y, heading, lean, t) up to ``lateral`` m off the path at arc length s,
    heading off by 12 degrees RMS, and 15 % of the time by 30-70 degrees."""
    x, y = sc.path.point(s)
    h = sc.path.heading(s)
    lat = float(rng.uniform(-lateral, lateral))
    x, y = x - lat * math.sin(h), y + lat * math.cos(h)
    dh = float(rng.normal(0, math.radians(12)))
    if rng.random() < 0.15:
        dh = float(rng.choice([-1, 1]) * math.radians(rng.uniform(30, 70)))
    return x, y, h + dh, lean, t


def calibration_frames(n: int = 128, seed: int = 0) -> np.ndarray:
    """Frames from training scenarios (train_vision's seeds), normalised, for tr.quantize."""
    from . import suite, world

    out = []
    rng = np.random.default_rng([seed, 41])
    for i, kind in enumerate(("follow", "obstacles") * 2):
        sc = world.parse_scenario(suite.make(kind, 1000 + i, 60.0))
        lab = Labeller(sc)
        out += [lab.cam.frame(*p) for p in poses(sc, kind, n // 4, rng)]
    return normalise(np.stack(out))


def int8(graph):
    """The CNN quantised to int8 (tr.quantize, per-channel weights, calibrated on training frames)."""
    import tianrt as tr

    return tr.quantize(graph, {"frame": calibration_frames()}, name="vision-cnn-int8")
