"""Control from perception: the outer loops that read the camera (through the vision CNN and
the CANN tracker) and the dead-reckoned pose instead of the true state.

``Navigator(sc, mode)`` is called once per control step with the noisy sensors and returns the
desired lean (for the balance network) and the target speed (for the speed loop):

- every mode rides from the *estimated* pose (``estimate.DeadReckoning``); the true pose is
  passed in only to render the camera frame (that is the sensor) and to score;
- ``avoid`` (the ``obstacles`` kind and any waypoint ride): every frame the CNN's sectors go
  into an occupancy map in the estimated frame and a planner chooses a lateral offset from the
  path with clearance (``avoid.py``); pure pursuit on the path shifted by that offset, slower
  while something is in the way;
- ``follow``: pure pursuit on the person's estimated position (the CANN's bearing, the CNN's
  distance), the speed loop keeping ``suite.FOLLOW_DISTANCE``; when there is no estimate (no
  bump yet, the CANN's time-out ``cann.TIMEOUT_S`` after the last detection, or a bump behind)
  the bicycle rides the path from its estimated pose at the person's last speed; the seconds
  without an estimate are ``target.lost_s``.

The CANN works in the estimated world frame: ``cann.Readout`` takes the CNN's bearing with the
dead-reckoned heading and gives the estimate back relative to the camera (``_track``, shared
with ``pilot.Pilot``, whose readout is the brain's).

The perception is the CNN graph (float or int8) in a tr.Runtime at the camera rate, or
``perception="truth"`` (the labels themselves: a diagnostic that separates control from vision).
"""
from __future__ import annotations

import collections
import math
import time

import numpy as np

from . import avoid, cann, lateral, vision
from .estimate import DeadReckoning, YawGyro
from .sim import PHI, PSI, X, Y
from .suite import FOLLOW_DISTANCE

AVOID_RANGE = vision.sector_value(12.0)   # a sector reporting an obstacle closer than 12 m (accuracy metric)
NEAR_8M = vision.sector_value(8.0)        # following: boxes closer than this push the steering away
REPEL_GAIN = 2.4 / vision.SECTOR_NEAR     # rad per unit of sector value above NEAR_8M (1.2 when it was 2 m / d)
V_BLOCKED = 2.5           # m/s while something is in the way (the planned trajectory or the path)
V_MIN, V_MAX = 2.0, 6.0   # below ~2 m/s the 5 N m steer motor cannot hold the leans a person's turns need   # follow speed limits [m/s]
D_ALPHA, D_BETA = 0.3, 0.007  # alpha-beta filter of the person's distance [per frame] and speed [per frame, over the period]
EDGE_DEG = 30.0           # a person this far off the camera's axis (the view is +-35 deg) is cut by the frame: bearing only [deg]
REACQUIRE_S = 0.5         # unseen this long, the person's next reading starts the distance afresh [s]
V_PERSON_MAX = 6.0        # a running person [m/s]
K_FAR, K_NEAR = 0.8, 1.5  # speed set point per metre of distance error, too far / too near [1/s]
STOP_S, REACT_S = 1.0, 0.2   # the longest stop to allow for [s]; seeing it and starting to brake [s]
A_BRAKE = 1.0             # braking the speed loop can rely on before an obstacle [m/s^2] (40 N m on the rear wheel: ~1.3)
STOP_MARGIN = 0.3         # what a last-resort stop leaves between the front wheel and what is ahead [m]
BRAKE = 1.1               # the hub motor's braking [m/s^2] (40 N m on the rear wheel)
STOP_GAP = 1.8            # camera-to-person distance to keep after such a stop [m] (contact at ~1.4 m)
LEAN_SLEW = lateral.LEAN_SLEW    # the desired lean from the path changes at most this fast [rad/s]
SWITCH_S = 0.5            # ... and from the person's pursuit, for this long after taking over [s]
CLOSE_WINDOW_S = 2.0      # the person's slowest recent speed is taken over this long (v_person_low) [s]


_max_lean = lateral.max_lean


class Navigator:
    def __init__(self, sc, mode: str, schedule, *, perception="truth", backend: str = "reference",
                 camera_hz: float = 30.0):
        if mode not in ("avoid", "follow"):
            raise ValueError(f"navigator mode must be 'avoid' or 'follow', got {mode!r}")
        self.sc, self.mode, self.schedule = sc, mode, schedule
        self.est = DeadReckoning(sc.initial["x"], sc.initial["y"], sc.initial["heading"], sc.seed)
        from .sim import Bicycle  # noqa: F401  (the gyro uses the bicycle's linear model)
        from .model import matrices
        self.gyro = YawGyro(matrices(sc.bicycle), sc.seed)
        self.labeller = vision.Labeller(sc)
        self.vision = None if perception == "truth" else vision.Vision(perception, backend)
        # the CANN with its detection code as a current: in the rides it tracks the (noise-free,
        # slow) bearings better than the spiking-input graph that quantises (docs/bicycle.md)
        self.tracker = (cann.Tracker(backend=backend, graph=cann.build_graph(spike_input=False))
                        if mode == "follow" else None)
        self.period = 1.0 / camera_hz
        self.next_frame = 0.0
        self.offset, self.lat_est = 0.0, 0.0
        self.percept = None
        self.map = avoid.ObstacleMap() if mode == "avoid" else None
        self.blocked = 0.0        # penetration of the clearance by the planned trajectory or the path [m]
        self.contact = math.inf   # travel along the planned trajectory before it touches the map's obstacles [m]
        self.contacts = np.full(len(avoid.OFFSETS), math.inf)   # ... along each candidate's
        self._in_way = 0.0        # ... by staying at the centre, at the last plan
        self.swerves = []         # times the plan was changed to an offset that does not touch (_swerve)
        self.bearing, self.distance = None, FOLLOW_DISTANCE
        self.v_person = float(sc.initial["speed"])
        self._v_recent = collections.deque(maxlen=max(1, int(round(CLOSE_WINDOW_S * camera_hz))))
        self.last_d = None
        self._unseen = 10 ** 6    # frames without a reading (_range)
        self.frames = []          # per frame: t, true bearing, visible, estimate (or nan), true distance
        self.pose_err = []
        self.lost_time, self._est_t, self._had_estimate = 0.0, 0.0, False   # target.lost_s (_track)
        self.t_end = 0.0          # the end of the last control step [s]
        self.latency = []
        self._asked, self._turns = [], []   # desired leans and curvatures turned, last 2 lateral.DT [rad, 1/m]

    # one control step -------------------------------------------------------------------------
    def __call__(self, t: float, state, speed_meas: float, dt: float) -> tuple[float, float]:
        x, y, h = self.est.pose
        self.pose_err.append(math.hypot(x - state[X], y - state[Y]))
        self.v_now, self.t_end = speed_meas, t + dt
        if t >= self.next_frame - 1e-9:
            self._frame(t, state)
            self.next_frame += self.period
        v = max(speed_meas, 0.5)
        person = self.mode == "follow" and self.bearing is not None
        if person:
            lean, v_ref = self._follow(v)
        else:
            if self.mode == "avoid":
                self._swerve(t, speed_meas)
            lean = self._path(x, y, h, v)
            if self.mode == "avoid":   # slower while something is in the way or the plan is not clear
                v_ref = self.sc.target_speed(t) if self.blocked <= 0 else min(self.sc.target_speed(t), V_BLOCKED)
            else:
                v_ref = min(V_MAX, max(V_MIN, self.v_person))   # lost: keep the person's last speed
        self.est.step(speed_meas, self.gyro.read(state), dt)
        return self._slew(lean, dt, person), v_ref

    def _slew(self, lean: float, dt: float, person: bool = False) -> float:
        """The desired lean for the balance network. From the path (``person`` False) it changes
        at most LEAN_SLEW per second: the planner's offset moves the pursuit point by metres at
        once, and so does a change of behaviour, which stepped the desired lean by up to 20
        degrees within 0.1 s (at 3 m/s the integer SNN fell after such a step; with the limit,
        obstacles rides crash less). Pursuing the person it passes unchanged once SWITCH_S has
        passed since it took over: the person's bearing moves smoothly, and a limit there only
        delays the follower in the person's turns (docs/bicycle.md, round 6)."""
        self._person_s = self._person_s + dt if person and self._person_law else 0.0
        self._person_law = person
        if person and self._person_s >= SWITCH_S:
            self._lean = lean
        else:
            step = LEAN_SLEW * dt
            self._lean = min(self._lean + step, max(self._lean - step, lean))
        keep = 2 * max(1, int(round(lateral.DT / dt)))    # what the planner's rollout starts from
        self._asked = self._asked[-keep + 1:] + [self._lean]
        self._turns = self._turns[-keep + 1:] + [self.est.rate / max(self.v_now, 1.0)]
        return self._lean

    _lean, _person_law, _person_s = 0.0, False, 0.0

    def _frame(self, t, state):
        lab = self.labeller
        frame = lab.cam.frame(state[X], state[Y], state[PSI], state[PHI], t)
        truth = None
        if self.vision is None:
            _, y_true, truth = lab.sample(state[X], state[Y], state[PSI], state[PHI], t, frame)
            p = vision.decode(y_true, explain=False)
        else:
            t0 = time.perf_counter()
            p = self.vision(frame)
            self.latency.append(time.perf_counter() - t0)
        self.percept = p
        if self.map is not None:
            self._plan(p)
        if self.tracker is None:
            return
        tb, td, pix = truth or lab.person(state[X], state[Y], state[PSI], state[PHI], t, frame)
        hd = math.degrees(self.est.pose[2])
        self.tracker.update(p.bearing, hd)
        est = self._track(t, hd)
        self._range(p)
        self.frames.append((t, tb, pix >= vision.MIN_PIXELS, np.nan if est is None else est, td))

    def _track(self, t: float, hd: float) -> float | None:
        """The follower's estimate from this frame on: the tracker's bearing relative to the
        camera at the estimated heading ``hd`` [deg], or None (no bump, the time-out, or a bump
        behind). The ring tracks the person's bearing in the (estimated) world frame
        (``cann.Readout.prepare`` takes the heading): the camera's own turning — the bicycle
        weaves and leans into bends — then does not move the stimulus, and the bump only has to
        follow the person's motion (slow: metres at 5 m). Keeps the clock of ``target.lost_s``."""
        est = self.tracker.relative(hd)
        if est is not None and abs(est) > 90:   # the ring says "behind": not a usable target
            est = None
        if not self._had_estimate:
            self.lost_time += t - self._est_t
        self._est_t, self._had_estimate = t, est is not None
        self.bearing, self.heading_at_frame = est, hd
        return est

    def lost_s(self) -> float:
        """Seconds of the ride so far (to the end of the last control step) without an estimate."""
        return self.lost_time + (0.0 if self._had_estimate else max(0.0, self.t_end - self._est_t))

    def _range(self, p, speed_within: float = math.inf) -> None:
        """The person's distance and speed from this frame's percept: an alpha-beta filter on the
        CNN's distance, predicting with the bicycle's own measured speed (d' = v_person - v), so
        only the person's speed is estimated; without a measurement (unseen) it only predicts.
        Readings at or beyond ``speed_within`` move the distance but not the speed (a reading
        saturated at the CNN's range says nothing of how the person moves); readings beyond
        EDGE_DEG off the axis keep the track alive but move neither (the frame's edge cuts the
        person, and the CNN reads them metres too near or too far). The speed gain D_BETA is
        small because the CNN's distance error persists over frames (docs/bicycle.md, round 6).
        After REACQUIRE_S without a reading (and at the start) the next reading starts the track
        afresh: the prediction has run on the bicycle's own speed alone all that time (an errand
        ride saw its person first at 11-17 m with the prediction at 1 m, and braked to a stop)."""
        self.distance += (self.v_person - self.v_now) * self.period
        if p.bearing is not None and abs(p.bearing) > EDGE_DEG:
            self._unseen = 0
        elif p.bearing is None:
            self._unseen += 1
        elif self._unseen * self.period >= REACQUIRE_S:   # a new track: its first reading, not a prediction gone stale
            self.distance, self._unseen = p.distance, 0
        else:
            self._unseen = 0
            res = p.distance - self.distance
            self.distance += D_ALPHA * res
            if self.last_d is not None and p.distance < speed_within:
                self.v_person = min(V_PERSON_MAX, max(0.0, self.v_person + D_BETA * res / self.period))
            self.last_d = self.distance
        self.distance = max(0.5, self.distance)
        self._v_recent.append(self.v_person)

    v_now = 0.0
    heading_at_frame = 0.0   # the estimated heading [deg] when self.bearing was measured

    def _plan(self, p, centre: float = 0.0):
        """Map this frame's sectors from the estimated camera pose; re-plan the path offset
        (``centre``: the offset wanted when nothing is in the way, e.g. a spoken lane)."""
        x, y, h = self.est.pose
        cx, cy = vision.camera_xy(self.labeller.spec, x, y, h)
        self.map.update(cx, cy, h, p.sectors, unknown=p.explained)
        obst = self.map.occupied(x, y, avoid.HORIZON + 2.0)
        hold = self._in_way > 0 and self.offset != centre   # passing something: keep the side (avoid.plan)
        traj = self._trajectories()
        gap = avoid.nearest(obst, traj)
        self.offset, self.blocked, in_way = avoid.plan(obst, traj, self.offset, centre=centre, hold=hold, gap=gap)
        self.contacts = avoid.contact(obst, traj, gap=gap)
        self.contact = float(self.contacts[int(np.argmin(np.abs(avoid.OFFSETS - self.offset)))])
        self._in_way = in_way
        self.blocked = max(self.blocked, in_way)   # slow down while anything is in the way

    def _trajectories(self, offsets=avoid.OFFSETS) -> np.ndarray:
        """Where the bicycle would go from its estimated pose given each offset (``avoid.trajectories``)."""
        x, y, h = self.est.pose
        s0, lat = self.sc.path.project(x, y)
        rel = h - self.sc.path.heading(s0)
        v = max(self.v_now, 1.0)
        return avoid.trajectories(self.sc.path, s0, lat, v, offsets, gain=self.schedule.lean_for_curvature(v, 1.0),
                                  rel=math.atan2(math.sin(rel), math.cos(rel)),
                                  kappa=self._windows(self._turns), asked=self._windows(self._asked))

    def _windows(self, history) -> tuple[float, float]:
        """Means of the last two lateral.DT windows of a per-control-step history, latest first."""
        w = max(1, int(round(lateral.DT * self.sc.control_hz)))
        h = np.asarray(history[-2 * w:], float)
        if len(h) < 2 * w:
            h = np.concatenate([np.full(2 * w - len(h), h[0] if len(h) else 0.0), h])
        return float(h[w:].mean()), float(h[:w].mean())

    def _repel(self, sectors=range(1, 6)) -> float:
        """A steering bias [rad] away from obstacles the CNN sees within ~8 m in the given sectors
        (following: the five middle ones, as the person's route passes close to boxes on the
        inside of bends). A saturated sector (nearer than SECTOR_NEAR) counts as 2 m away."""
        s = self.percept.sectors if self.percept is not None else np.zeros(7)
        s = np.where(s >= avoid.SATURATED, vision.SECTOR_NEAR / 2.0, s)   # the unclipped value at 2 m
        centres = 0.5 * (vision.SECTORS[:-1] + vision.SECTORS[1:])
        bias = 0.0
        for k in sectors:
            push = max(0.0, float(s[k]) - NEAR_8M)
            if push > 0:
                side = -math.copysign(1.0, centres[k]) if centres[k] != 0 else (1.0 if s[:3].sum() > s[4:].sum() else -1.0)
                bias += side * REPEL_GAIN * push
        return max(-0.5, min(0.5, bias))

    def _path(self, x, y, h, v):
        path = self.sc.path
        s0, self.lat_est = path.project(x, y)
        L = float(lateral.lookahead(v, self.offset))
        px, py = path.point(s0 + L)
        if self.offset:
            ph = path.heading(s0 + L)
            px, py = px - self.offset * math.sin(ph), py + self.offset * math.cos(ph)
        return self._pursue(px - x, py - y, h, v)

    def _pursue(self, dx, dy, h, v, bias: float = 0.0):
        alpha = math.atan2(dy, dx) - h + bias
        alpha = math.atan2(math.sin(alpha), math.cos(alpha))
        kappa = 2.0 * math.sin(alpha) / max(math.hypot(dx, dy), 1e-6)
        lean = self.schedule.lean_for_curvature(v, kappa)
        m = _max_lean(v)
        return max(-m, min(m, lean))

    def _follow(self, v):
        # the bearing of the last frame, turned by the heading change since (world-fixed)
        b = math.radians(self.bearing) - (self.est.pose[2] - math.radians(self.heading_at_frame))
        d = max(self.distance, 2.0)
        alpha = b + self._repel()
        # pure pursuit towards the person, with a look-ahead of at least 1.6 s of travel: aiming at a
        # point only 5 m ahead at 4-6 m/s makes the loop (CANN, balance, lean) weave
        kappa = 2.0 * math.sin(alpha) / max(d, 1.6 * v, 5.0)
        lean = self.schedule.lean_for_curvature(v, kappa)
        m = _max_lean(v)
        return max(-m, min(m, lean)), self._follow_speed()

    def _follow_speed(self) -> float:
        """The speed set point: the person's estimated speed plus a gain on the distance error,
        stronger when too near than when too far (a bicycle brakes at only ~1.2 m/s^2 with its
        hub motor and cannot ride slower than V_MIN, so a person who stops costs it 2.5-3 m), and
        never faster than the speed from which such a stop leaves STOP_GAP to the person."""
        e = self.distance - FOLLOW_DISTANCE
        v = self.v_person + (K_FAR * e if e > 0 else K_NEAR * e)
        return min(V_MAX, max(V_MIN, min(v, self._v_safe())))

    def v_person_low(self) -> float:
        """The slowest of the person's speed estimates over the last CLOSE_WINDOW_S [m/s]: the
        CNN's distance swings by metres for a second or so, and the speed estimate with it."""
        return min(self._v_recent, default=self.v_person)

    def _swerve(self, t: float, speed: float) -> bool:
        """When the planned trajectory touches what the map holds nearer than the bicycle could
        stop (``_stopping``), take the nearest offset whose trajectory does not. False when there
        is none (the pilot then brakes onto its stand; without one the bicycle rides on). Every
        frame's plan may pick an offset that touches nearer than that: the planner weighs
        clearance along the whole horizon, and a cone mapped 3 m ahead lost to a side committed
        to further on (obstacles seed 203, docs/bicycle.md round 10)."""
        stop = self._stopping(speed)
        if self.contact >= stop:
            return True
        escape = self.contacts >= stop
        if not escape.any():
            return False
        k = int(np.argmin(np.where(escape, np.abs(avoid.OFFSETS - self.offset), np.inf)))
        self.offset, self.contact = float(avoid.OFFSETS[k]), float(self.contacts[k])
        if not self.swerves or t - self.swerves[-1] > 1.0:
            self.swerves.append(round(t, 3))
        return True

    def _stopping(self, v: float) -> float:
        """Travel [m] of the rear contact point (the pose) before the front wheel would touch
        what is ahead if the bicycle braked now: the reaction, braking at A_BRAKE, the wheelbase
        and front wheel ahead of the pose, and STOP_MARGIN. Nearer than this along the planned
        trajectory no stop is left, only a swerve."""
        b = self.sc.bicycle
        return v * REACT_S + v * v / (2.0 * A_BRAKE) + b.w + b.rF + STOP_MARGIN

    def _v_safe(self) -> float:
        """The largest speed from which, if the person stopped now for STOP_S, the bicycle
        (reaction REACT_S, then braking at BRAKE down to V_MIN) keeps STOP_GAP to them."""
        room = self.distance - STOP_GAP
        lo, hi = 0.0, V_MAX
        for _ in range(20):
            v = 0.5 * (lo + hi)
            tb = min(STOP_S - REACT_S, max(0.0, (v - V_MIN) / BRAKE))
            travel = v * REACT_S + v * tb - 0.5 * BRAKE * tb * tb + max(0.0, STOP_S - REACT_S - tb) * max(V_MIN, v - BRAKE * tb)
            lo, hi = (v, hi) if travel <= room else (lo, v)
        return lo

    # metrics ----------------------------------------------------------------------------------
    def metrics(self) -> dict:
        out = {"pose_drift_m": {"final": float(self.pose_err[-1]) if self.pose_err else 0.0,
                                "max": float(max(self.pose_err, default=0.0))}}
        if self.map is not None:
            out["swerves"] = list(self.swerves)
        if self.latency:
            lat = np.array(self.latency) * 1e3
            out["vision"] = {"latency_ms_p99": float(np.percentile(lat, 99)),
                             "latency_ms_p50": float(np.percentile(lat, 50)), "frames": len(lat)}
        else:
            out["vision"] = {"latency_ms_p99": 0.0, "latency_ms_p50": 0.0, "frames": 0}
        if self.tracker is not None and self.frames:
            f = self.frames
            vis = np.array([q[2] for q in f], bool)
            tb = np.array([q[1] for q in f])
            est = np.array([q[3] for q in f])
            dist = np.array([q[4] for q in f])
            err = np.abs(cann.wrap(est - tb))
            have = np.isfinite(est)
            occ = ~vis & (np.abs(tb) < 35)          # in the field of view but hidden
            out["target"] = {
                "visible_fraction": float(vis.mean()),
                "lost_s": float(self.lost_s()),
                "timeouts": int(self.tracker.timeouts),
                "distance_rms_m": float(np.sqrt(np.mean((dist - FOLLOW_DISTANCE) ** 2))),
                "bearing_error_deg": float(err[vis & have].mean()) if np.any(vis & have) else None,
                "bearing_error_occluded_deg": float(err[occ & have].mean()) if np.any(occ & have) else None,
                "occluded_s": float(occ.sum() * self.period),
            }
        return out
