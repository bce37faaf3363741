"""Closed-loop runs: a scenario, a balance controller, the path and speed loops, metrics.

Per control step (default 100 Hz): read the noisy sensors, let the path follower choose a
desired lean, ask the balance controller for a steer torque, let the speed loop choose a
drive torque, advance the physics by one control step (RK4 at physics_hz). Gusts start at
control-step boundaries. Optional: the 64x48 camera frame at ``camera_hz`` (rendered as a
vision network would need it) and a video.

Two ways to close the loop:
- ``run(sc, controller)``: a Python callable ``obs -> torque`` stepped directly (the LQR
  teacher, or a network through ``tr.Runtime.step``);
- ``run_stream(sc, graph, backend)``: the network runs in ``tr.stream.Scheduler`` with the
  bicycle as a ``SimulationSource`` and the steer motor as a sink.

A controller whose answer needs ``delay_steps`` control periods (the SNN: T ticks) acts that
many steps late, in both ways, so the physics never sees a torque before it was computed.
"""
from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .collide import Collider
from .control import GainSchedule, LQRTeacher, PathFollower, SpeedController
from .sim import PHI, PSI, V, X, Y, Bicycle
from .world import Scenario

_SCHEDULES: dict = {}
OBS_NAMES = ("lean", "lean_rate", "steer", "steer_rate", "speed", "lean_desired")


def schedule_for(params, dt: float) -> GainSchedule:
    """The teacher's gain schedule for a bicycle and control period (cached)."""
    from .model import matrices

    key = (params, round(dt, 9))
    if key not in _SCHEDULES:
        _SCHEDULES[key] = GainSchedule(matrices(params), dt)
    return _SCHEDULES[key]


def teacher_for(sc: Scenario) -> LQRTeacher:
    return LQRTeacher(schedule_for(sc.bicycle, 1.0 / sc.control_hz), sc.limits.steer_torque)


@dataclass
class RunResult:
    scenario: str
    controller: str
    seed: int
    duration: float
    fell: bool
    fall_time: float | None
    max_lean_deg: float
    rms_path_error: float
    max_path_error: float
    rms_heading_error_deg: float
    rms_lean_error_deg: float        # true lean minus the desired lean: how well balance follows
    mean_speed: float
    gusts: int
    torque_saturated: float          # fraction of steps at the steer torque limit
    latency_us: dict                 # wall time from sensor read to torque, per control step
    wall_s: float
    real_time_factor: float
    delay_steps: int = 0
    camera_frames: int = 0
    collisions: int = 0              # 1 if the ride ended in a crash (not a fall), else 0
    crash_time: float | None = None
    crashed_into: str | None = None  # "cone 3", "box 7" or "person"
    closest_obstacle: dict | None = None  # the smallest gap to an obstacle: gap_m, t, speed, what (None: none within 3 m)
    video: str | None = None
    stream: dict | None = None       # the scheduler's report (run_stream only)
    brain: dict | None = None        # rides with the whole brain (brain.Brain.summary)
    target: dict | None = None       # follow rides: visible_fraction, lost_s, distance_rms_m, bearing errors
    vision: dict | None = None       # rides with a navigator: latency_ms_p99 of the vision network
    pose_drift_m: dict | None = None  # dead reckoning against the true pose
    traces: dict = field(default_factory=dict, repr=False)

    def summary(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "traces"}
        return json.loads(json.dumps(d, default=float))


class ClosedLoop:
    """The bicycle side of the loop: ``observe()`` gives the controller's inputs at the current
    control step, ``act(u)`` applies a steer torque for one step. Keeps the metrics."""

    def __init__(self, sc: Scenario, *, camera_hz: float = 0.0, camera=None, video=None,
                 keep_traces: bool = False, nav=None):
        self.sc = sc
        self.nav = nav            # follow.Navigator: outer loops from perception and dead reckoning
        self.v_ref = None
        self.dt = 1.0 / sc.control_hz
        self.bike = Bicycle(sc.bicycle, physics_hz=sc.physics_hz, limits=sc.limits, noise=sc.noise,
                            seed=sc.seed)
        self.bike.reset(**sc.initial)
        sc.path.restart()
        self.follower = PathFollower(sc.path, schedule_for(sc.bicycle, self.dt))
        self.speed = SpeedController(self.bike.m_eff, sc.bicycle.rR, self.bike.resistance,
                                     torque_limit=sc.limits.drive_torque)
        self.gusts = sc.gusts.schedule(sc.duration, np.random.default_rng([sc.seed, 1]))
        self.n = int(round(sc.duration * sc.control_hz))
        self.k = 0
        self.lat_err = np.zeros(self.n)
        self.head_err = np.zeros(self.n)
        self.lean_err = np.zeros(self.n)
        self.speed_sum = 0.0
        self.latency = np.zeros(self.n)
        self.sat = 0
        self.trace = np.zeros((self.n, 14)) if (keep_traces or video is not None) else None
        self.camera, self.video = camera, video
        self.cam_period = 1.0 / camera_hz if camera_hz > 0 else math.inf
        self.next_cam = 0.0
        self.next_vid = 0.0
        self.frames = 0
        self.trail = []
        self._gi, self._active = 0, []
        self._obs = None
        self._t_obs = 0.0
        self.name = "controller"  # shown in the video
        self.collider = Collider(sc)
        self.crash = None         # (time, what) of the crash that ended the ride
        self.closest = None       # (gap, time, speed, what): the nearest the footprint came to an obstacle

    @property
    def done(self) -> bool:
        return self.k >= self.n or self.bike.fallen or self.crash is not None

    def observe(self) -> np.ndarray:
        """Sensors at step k, desired lean from the path loop; also camera and video frames."""
        sc, bike, s, k = self.sc, self.bike, self.bike.state, self.k
        t = k * self.dt
        while self._gi < len(self.gusts) and self.gusts[self._gi][0] <= t + 1e-12:
            t0, imp = self.gusts[self._gi]
            self._active.append((t0 + sc.gusts.duration, imp / sc.gusts.duration))
            self._gi += 1
        self._active = [(end, tq) for end, tq in self._active if end > t + 1e-12]
        bike.gust_torque = sum(tq for _, tq in self._active)
        meas = bike.sense()
        m = meas.tolist()  # plain floats from here on: the same values, cheaper arithmetic
        st = s.tolist()
        if self.nav is not None:
            lean_d, self.v_ref = self.nav(t, s, meas[4], self.dt)
            s0, lat = sc.path.project(st[X], st[Y])     # scored on the true pose
        else:
            lean_d, lat, s0 = self.follower(st[X], st[Y], st[PSI], m[4])
        self.lat_err[k] = lat
        ph = sc.path.heading(s0)
        self.head_err[k] = math.atan2(math.sin(st[PSI] - ph), math.cos(st[PSI] - ph))
        self.lean_err[k] = st[PHI] - lean_d
        self.speed_sum += st[V]
        obs = np.array((m[0], m[1], m[2], m[3], m[4], lean_d))
        if t >= self.next_cam - 1e-12:
            if self.camera is not None:
                self.last_frame = (t, self.camera.frame(s[X], s[Y], s[PSI], s[PHI], t))
                self.frames += 1
                if hasattr(self.nav, "saw"):   # a navigator fed the ride's own frames (pilot.Pilot)
                    self.nav.saw(t, s, self.last_frame[1])
            self.next_cam += self.cam_period
        self._obs = obs
        self._t_obs = time.perf_counter()
        return obs

    def act(self, u: float, latency: float | None = None) -> None:
        """Apply steer torque ``u`` for step k. ``latency``: wall seconds from the sensor read to
        the torque that the controller computed from it (default: since this step's read)."""
        sc, bike, s, k = self.sc, self.bike, self.bike.state, self.k
        t = k * self.dt
        self.latency[k] = latency if latency is not None else time.perf_counter() - self._t_obs
        if abs(u) >= sc.limits.steer_torque:
            self.sat += 1
        drive = self.speed(float(self._obs[4]), sc.target_speed(t) if self.v_ref is None else self.v_ref, self.dt)
        if self.trace is not None:
            self.trace[k, :8] = (t, s[PHI], s[1], u, self._obs[5], self.lat_err[k], s[V], bike.gust_torque)
            self.trace[k, 8:] = self._obs
            if self.video is not None and t >= self.next_vid - 1e-12:
                self._video_frame(t, k)
                self.next_vid += 1.0 / self.video.fps
        bike.step(u, drive, self.dt)
        if getattr(self.nav, "stand", False):   # the pilot's stand is down (pilot.Pilot)
            bike.hold_upright(parked=self.v_ref is not None and self.v_ref <= 0,
                              steer=getattr(self.nav, "stand_steer", 0.0))
        self.k += 1
        if not bike.fallen:
            st = s.tolist()
            hits = self.collider.hits(st[X], st[Y], st[PSI], self.k * self.dt)
            if hits:
                h = hits[0]
                self.crash = (self.k * self.dt, h if h == "person" else f"{sc.obstacles[h].kind} {h}")
            gap, i = self.collider.clearance(st[X], st[Y], st[PSI])
            if i is not None and (self.closest is None or gap < self.closest[0]):
                self.closest = (gap, self.k * self.dt, st[V], f"{sc.obstacles[i].kind} {i}")

    def _overlay(self):
        if self.nav is None:
            return None
        from .panels import draw_nav

        return lambda cam, dbg, mp, mapview, x, y, spec: draw_nav(cam, dbg, mp, mapview, self.nav, x, y, spec)

    def _video_frame(self, t, k):
        s, tr = self.bike.state, self.trace[:k + 1]
        self.trail.append((s[X], s[Y]))
        self.video.add(t, s[X], s[Y], s[PSI], s[PHI], tr[:, 0],
                       [("lean", tr[:, 1], 0.3, (0, 220, 255)), ("steer", tr[:, 2], 0.3, (255, 200, 0)),
                        ("torque/10", tr[:, 3] / 10, 0.6, (120, 255, 120)),
                        ("lean_d", tr[:, 4], 0.3, (200, 120, 255))],
                       self.trail[-400:], f"{self.name}  t={t:5.1f}s  v={s[V]:.2f}m/s  "
                                          f"lean={math.degrees(s[PHI]):+.1f}deg", overlay=self._overlay())

    def result(self, name: str, wall: float, delay_steps: int = 0, stream=None, keep_traces=False) -> RunResult:
        m = max(self.k, 1)
        dt, bike = self.dt, self.bike
        sim_t = self.k * dt
        lat_us = self.latency[:m] * 1e6
        res = RunResult(
            scenario=self.sc.name, controller=name, seed=self.sc.seed, duration=sim_t, fell=bike.fallen,
            fall_time=sim_t if bike.fallen else None, max_lean_deg=math.degrees(bike.max_lean),
            rms_path_error=float(np.sqrt(np.mean(self.lat_err[:m] ** 2))),
            max_path_error=float(np.max(np.abs(self.lat_err[:m]))),
            rms_heading_error_deg=math.degrees(float(np.sqrt(np.mean(self.head_err[:m] ** 2)))),
            rms_lean_error_deg=math.degrees(float(np.sqrt(np.mean(self.lean_err[:m] ** 2)))),
            mean_speed=self.speed_sum / m,
            gusts=sum(1 for g in self.gusts if g[0] < sim_t), torque_saturated=self.sat / m,
            latency_us={"mean": float(lat_us.mean()), "p50": float(np.percentile(lat_us, 50)),
                        "p99": float(np.percentile(lat_us, 99)), "max": float(lat_us.max())},
            wall_s=wall, real_time_factor=sim_t / wall if wall > 0 else math.inf, delay_steps=delay_steps,
            camera_frames=self.frames, video=getattr(self.video, "path", None), stream=stream,
            collisions=int(self.crash is not None), crash_time=self.crash[0] if self.crash else None,
            crashed_into=self.crash[1] if self.crash else None,
            closest_obstacle=(dict(zip(("gap_m", "t", "speed", "what"), self.closest))
                              if self.closest is not None else None))
        if self.nav is not None:
            for key, val in self.nav.metrics().items():
                setattr(res, key, val)
        if keep_traces and self.trace is not None:
            names = ("t", "lean", "steer", "torque", "lean_d", "path_error", "speed", "gust")
            res.traces = {k: self.trace[:m, i] for i, k in enumerate(names)}
            res.traces["obs"] = self.trace[:m, 8:]
        return res


def run(sc: Scenario, controller, name: str = "controller", *, camera_hz: float = 0.0, camera=None,
        video=None, keep_traces: bool = False, nav=None) -> RunResult:
    """Ride ``sc`` with ``controller(obs) -> steer torque``, obs = (lean, lean rate, steer, steer
    rate, speed, desired lean). A controller with ``delay_steps`` > 0 acts that many steps late."""
    loop = ClosedLoop(sc, camera_hz=camera_hz, camera=camera, video=video, keep_traces=keep_traces, nav=nav)
    loop.name = name
    delay = int(getattr(controller, "delay_steps", 0))
    if hasattr(controller, "reset"):
        controller.reset()
    pending = deque([0.0] * delay)
    wall0 = time.perf_counter()
    while not loop.done:
        obs = loop.observe()
        t_obs = time.perf_counter()
        u = float(controller(obs))
        latency = time.perf_counter() - t_obs
        pending.append(u)
        loop.act(pending.popleft(), latency)
    return loop.result(name, time.perf_counter() - wall0, delay, keep_traces=keep_traces)


def run_stream(sc: Scenario, graph, backend: str = "reference", name: str | None = None, *,
               camera_hz: float = 0.0, camera=None, video=None, keep_traces: bool = False,
               clock: str = "sim", nav=None, record=None, options: dict | None = None,
               brain=None) -> RunResult:
    """Ride ``sc`` with a balance network in ``tr.stream.Scheduler``: the bicycle is a
    ``SimulationSource`` at the control rate feeding input ``obs``; the output ``torque`` goes
    to the steer motor through a sink. A command that appears at stream time t acts from the
    first control step that starts at or after t. ``clock="wall"`` rides in real time.
    ``record``: an MCAP path; the scheduler records the IMU/encoder samples and the network's
    outputs, and the ride adds its camera frames, the steer torque applied and the true state
    (docs/bicycle.md). ``options``: the backend's options; default on numba ``compiled=True``,
    whose generated loop runs the 16 SNN ticks of a control step in one call (compiled once per
    graph and machine, then cached; docs/numba-backend.md). ``brain``: a ``brain.Brain`` whose
    networks the same scheduler serves at their own rates (its tick then is the brain's); the
    bicycle source also gives them the camera frames."""
    import tianrt as tr

    loop = ClosedLoop(sc, camera_hz=camera_hz, camera=camera, video=video, keep_traces=keep_traces, nav=nav)
    loop.name = name = name or f"{graph.name}/{backend}"
    dt = loop.dt
    ticks_per_step = int(round(dt / graph.dt))
    if abs(ticks_per_step * graph.dt - dt) > 1e-9 * dt:
        raise ValueError(f"graph {graph.name!r}: its tick ({graph.dt:g} s) must divide the control period "
                         f"({dt:g} s)")
    delay = int(graph.metadata.get("delay_steps", 0))
    commands = deque()          # (stream time the command appeared, torque, latency [s])
    reads = deque(maxlen=8)     # (stream time, perf_counter) of the latest sensor reads
    state = {"u": 0.0, "latency": None, "error": None}

    def advance(t):
        # the scheduler marks a source that raises as failed and goes on (a device may die); the
        # ride's own simulation raising is a bug: end the ride and raise it once the loop stops
        try:
            return step(t)
        except Exception as exc:  # noqa: BLE001 - re-raised after the scheduler has closed
            state["error"] = exc
            return tr.stream.END

    def step(t):
        if loop.k > 0 or t > 0:
            # apply, over the step that ended at t, the newest command that existed when it began
            t_begin = t - dt
            while commands and commands[0][0] <= t_begin + 1e-9:
                _, state["u"], state["latency"] = commands.popleft()
            loop.act(state["u"], state["latency"])
            if rec is not None:
                rec.log("/bicycle/steer_torque", [state["u"]], t_begin)
        if loop.done:
            return tr.stream.END
        obs = loop.observe()
        if rec is not None:
            rec.log("/bicycle/true_state", np.asarray(loop.bike.state, np.float64), t)
            ft = getattr(loop, "last_frame", None)
            if ft is not None and abs(ft[0] - t) < 1e-9:
                rec.log("/bicycle/camera", ft[1], t)
        reads.append((t, time.perf_counter()))
        if brain is None:
            return obs
        ft = getattr(loop, "last_frame", None)
        if ft is not None and abs(ft[0] - t) < 1e-9:
            return {"obs": obs, **brain.frame_input(ft[1])}
        return {"obs": obs}

    def motor(value, t):
        now = time.perf_counter()
        src = next((p for ts, p in reversed(reads) if ts <= t + 1e-9), now)  # the read it answers
        commands.append((t, float(value[0]), now - src))

    if options is None:
        options = {"compiled": True} if backend == "numba" else {}
    rt = tr.Runtime(graph, backend=backend, **options)
    if brain is None:
        sched = tr.stream.Scheduler(rt, clock=clock)
    else:
        sched = tr.stream.Scheduler({"balance": rt, **brain.runtimes}, clock=clock, dt=brain.dt)
    rec = sched.record(record) if record else None
    sched.add_source(tr.stream.SimulationSource(advance, rate_hz=sc.control_hz, name="bicycle"),
                     to="obs" if brain is None else {"obs": "balance.obs", "frame": "vision.frame"})
    sched.add_sink("torque", motor)
    if brain is not None:
        brain.attach(sched, ended=lambda: loop.done or state["error"] is not None)
    wall0 = time.perf_counter()
    report = sched.run(until_end=True)
    wall = time.perf_counter() - wall0
    if state["error"] is not None:
        raise state["error"]
    rep = {k: report[k] for k in ("ticks", "time_s", "step_s", "overhead_per_tick_s", "outputs") if k in report}
    res = loop.result(name, wall, delay, stream=json.loads(json.dumps(rep, default=float)), keep_traces=keep_traces)
    if brain is not None:
        summary = brain.summary()
        if hasattr(nav, "commands"):   # a pilot acting on the brain: what it heard and obeyed
            summary["commands"] = nav.commands()
        res.brain = json.loads(json.dumps(summary, default=float))
    return res
