"""The brain's decisions acted on: the outer loop of a ride with the whole brain.

``Pilot(sc, schedule, brain)`` is a ``follow.Navigator`` whose perception is the brain's — the
vision CNN and the CANN that the brain's scheduler serves (``brain.Brain``), not networks of its
own — and whose behaviour is chosen each control step by the neural state machine's state:

- **idle** at the start: the bicycle stands on its **stand** (a launcher that holds the frame
  upright and the handlebar straight; the balance network's torque does nothing while it is
  down). A bicycle cannot balance at rest, and the balance network is trained from 2.5 m/s;
- **ride**: from the stand the drive accelerates to ``V_LAUNCH`` and the stand lets go; then
  pure pursuit on the path shifted by the spoken lane (``left``/``right``: ``LANE`` metres
  each, at most ``LANE_MAX``), keeping clear of what the obstacle map holds (``avoid.plan``
  around that lane), at the cruise speed (the scenario's, ``SPEED_STEP`` up or down per spoken
  ``faster``/``slower``, within ``CRUISE``);
- **avoid**: the same planner, slowed to ``follow.V_BLOCKED`` (the careful mode the state
  machine enters when something is in the way ahead);
- **follow**: pursuit of the person at the CANN's bearing and the CNN's distance, keeping
  ``suite.FOLLOW_DISTANCE``; while the tracker has no estimate, or the obstacle map says the
  way is blocked (the state machine needs a few frames to move to avoid, and a second lost
  there is the metres the swerve needs), the path with the planner's offset at the person's
  last speed (the state machine leaves follow on "lost"); coming up on the person from afar (an
  errand's bicycle arrives at cruise speed) it closes in at most ``V_CLOSE`` faster than the
  slowest speed measured for them over the last ``follow.CLOSE_WINDOW_S``: the CNN's distance
  swings by metres for a second or so and the speed estimate with it (docs/bicycle.md, round 10);
- in all three riding states the speed is held to at most ``V_SIGHT``: the CNN maps a cone
  reliably only ~6 m ahead, which at 4 m/s is about the distance a swerve round it needs, and
  every crash of round 15's errand rides began above it (docs/bicycle.md, round 17); a spoken
  "faster" raises the cruise set point, and the bicycle rides it up to that limit;
- **stop-requested** and **idle** after riding (the ``brake`` enable): brake along the path;
  below ``V_STAND`` the stand comes down and holds the bicycle until it rests (a later "go"
  launches it again); while it still rolls, the stand steers it off a roll-out that would
  come near what the map holds (``_roll_out``).

``perception="truth"``: the brain's glue reads each frame's ground-truth labels instead of the
CNN's output (the CNN still runs): a diagnostic that separates the behaviour from the vision, as
``follow.Navigator``'s.

What is heard and done is kept: ``commands()`` gives each heard command with the time it was
obeyed — the state machine reached the state it asks for (go, stop, follow), or the pilot
applied the set point (faster, slower, left, right) — or why not.
"""
from __future__ import annotations

import math

import numpy as np

from . import avoid, collide, vision
from .brain import SEEN_FRAMES, SEEN_OFF, SEEN_ON
from .follow import A_BRAKE, BRAKE, V_BLOCKED, V_MAX, V_MIN, Navigator
from .nsm import STATES
from .sim import PHI, PSI, X, Y
from .suite import FOLLOW_DISTANCE

V_LAUNCH = 3.0            # the stand lets go at this speed [m/s] (the balance network's envelope starts at 2.5)
V_LAUNCH_REF = 3.6        # the speed loop's target while launching [m/s]
V_STAND = 2.0             # braking: the stand comes down below this speed [m/s]
LAUNCH_CLEAR = 8.0        # the stand lets go only with this much clear way straight ahead (``_launch_clear``) [m]
STAND_STEER = math.radians(30.0)  # the handlebar on the stand while turning to a clear way (``_turn_to_launch``)
V_CREEP = 1.0             # rolling speed while turning on the stand [m/s]
V_ROLL = 0.3              # rolling onto the stand: the roll-out is steered only above this speed (``_roll_out``) [m/s]
TURN_MAX = math.radians(60.0)     # the stand turns at most this far from the path's direction
TURN_STEP = math.radians(5.0)
TURN_AFTER = 2.0          # ... once the way ahead has stayed blocked this long (a false sighting clears sooner) [s]
LANE, LANE_MAX = 1.5, 3.0  # a spoken left/right moves the lane by LANE, at most LANE_MAX from the path [m]
SPEED_STEP = 1.0          # a spoken faster/slower [m/s]
CRUISE = (3.0, 7.0)       # cruise speeds a spoken command can set (within the trained envelope) [m/s]
V_CLOSE = 2.0             # following: at most this much faster than the person's slowest recent speed [m/s]
V_SIGHT = 4.0             # riding, following and avoiding never faster: a cone is mapped reliably only ~6 m ahead [m/s]
DIST_VALID = 12.0         # the CNN's distance says little beyond this: the person's speed is measured nearer
PERSON_MEMORY_S = 20.0    # how long a person seen ahead is kept in mind [s] ...
FORGET_RANGE = 10.0       # ... unless where they should be is in plain view, this near [m],
FORGET_S = 1.0            # and the CNN sees nobody there for this long [s] (``_forget_person``)
OBEY_S = 0.5              # a command counts as obeyed when done within this of being heard [s]
RIDING = ("ride", "follow", "avoid")
NSM_WORDS = {"go": RIDING, "stop": ("stop_requested", "idle"), "follow": ("follow",)}
SET_POINT_WORDS = ("faster", "slower", "left", "right")


class Pilot(Navigator):
    """The outer loop of a ride with ``brain`` (module docstring): called once per control step
    like a Navigator, (t, true state for the camera and scoring, measured speed, dt) -> (desired
    lean, target speed); ``stand`` says whether the stand holds the bicycle."""

    def __init__(self, sc, schedule, brain, perception: str = "cnn"):
        if perception not in ("cnn", "truth"):
            raise ValueError(f"pilot perception must be 'cnn' or 'truth', got {perception!r}")
        super().__init__(sc, "avoid", schedule, perception="truth")
        self.brain = brain
        self.truth_labels = perception == "truth"
        self._labels = None
        if self.truth_labels:   # a diagnostic: the brain reads the frame's labels instead of its CNN's output
            brain.percept_override = lambda: self._labels
        self.tracker = brain.track          # the CANN's readout (panels and metrics read it)
        brain.heading = lambda: math.degrees(self.est.pose[2])   # the ring's world frame (follow._track)
        self.stand = True
        self.speed_offset, self.lane = 0.0, 0.0
        self.state = "idle"
        self._frames_seen, self._heard_seen = 0, 0
        self._pending = []                  # records of heard go/stop/follow not yet obeyed
        self.log = []                       # {"t", "word", "obeyed_s", "note"} per heard command
        self.stand_changes = []             # (t, "down" | "up")
        self.emergency = []                 # times the pilot braked to its stand before an obstacle (_stopping)
        self.stand_steer, self._turn_sign = 0.0, 0   # the handlebar on the stand (_turn_to_launch)
        self._blocked_since = None          # since when the stand has waited for a clear way ahead
        self.turns = []                     # [start, end] of each turn on the stand
        self._roll_sign = 0                 # the side the roll-out onto the stand steers to (_roll_out)
        self.roll_steers = []               # times a roll-out onto the stand began to steer
        self._braking = False
        self._truth = None                  # the labels of the last camera frame (scoring only)
        self._person = None                 # (arc length along the path, time) where the person was last seen
        self._near_run = 0                  # frames running with the person read nearer than DIST_VALID
        self._unseen_since = None           # since when the person kept in mind is not where they should be
        self.forgotten = []                 # times the person kept in mind was dropped (_forget_person)

    # the ride's camera frame: truth for the metrics, taken where the frame was rendered
    def saw(self, t: float, state, frame) -> None:
        args = (state[X], state[Y], state[PSI], state[PHI], t, frame)
        if self.truth_labels:
            _, self._labels, self._truth = self.labeller.sample(*args)
        else:
            self._truth = self.labeller.person(*args)

    def __call__(self, t: float, state, speed_meas: float, dt: float) -> tuple[float, float]:
        b = self.brain
        x, y, h = self.est.pose
        self.pose_err.append(math.hypot(x - state[X], y - state[Y]))
        self.v_now, self.t_end = speed_meas, t + dt
        if b.frames != self._frames_seen:
            self._frames_seen = b.frames
            self._perceive(t)
        if b.state in STATES:                 # ("none"/"several" for a tick mid-transition: keep the last)
            self.state = b.state
        st = self.state
        self._hear(t)
        v = max(speed_meas, 0.5)
        person = False                            # the desired lean pursues the person (Navigator._slew)
        if st not in RIDING:                      # brake (idle after riding, stop-requested)
            lean, v_ref = self._path(x, y, h, v), 0.0
        elif st == "follow" and self.bearing is not None and self.blocked <= 0:
            lean, v_ref = self._follow_person(v)
            person = True
        else:   # the path with the planner's offset: also following, when something is in the way
            if not self.stand and not self._braking:
                self._last_line(t, speed_meas)
            lean = self._path(x, y, h, v)
            if st == "follow":                    # no estimate, or blocked: the person's last speed
                v_ref = min(V_MAX, max(V_MIN, self.v_person))
            else:
                v_ref = self.cruise(t)
            if st == "avoid" or self.blocked > 0:
                v_ref = min(v_ref, V_BLOCKED)
            v_ref = min(v_ref, self._keep_distance(t, x, y))
        if st in RIDING:
            v_ref = min(v_ref, V_SIGHT)
        if self._braking and st in RIDING:
            v_ref = 0.0
        # the stand: down when the bicycle must go slower than it can balance, up from V_LAUNCH
        if self.stand:
            self.stand_steer = 0.0
            clear = v_ref >= V_MIN and self._launch_clear(x, y, h)
            if v_ref < V_MIN or clear:
                self._blocked_since = None
            elif self._blocked_since is None:
                self._blocked_since = t
            if clear:
                lean, v_ref = 0.0, max(v_ref, V_LAUNCH_REF)
                self._turn_sign = 0
                if speed_meas >= V_LAUNCH:
                    self._stand(t, False)
            elif (self._blocked_since is not None and t - self._blocked_since >= TURN_AFTER
                  and self._turn_to_launch(x, y, h)):
                lean, v_ref = 0.0, V_CREEP
                self.stand_steer = self._turn_sign * STAND_STEER
                if not self.turns or self.turns[-1][1] is not None:
                    self.turns.append([round(t, 3), None])
            else:
                lean, v_ref = 0.0, 0.0
                self._turn_sign = 0
                self._roll_out(t, x, y, h, speed_meas)
            if self.turns and self.turns[-1][1] is None and self._turn_sign == 0:
                self.turns[-1][1] = round(t, 3)
        elif v_ref < V_MIN and speed_meas <= V_STAND:
            self._stand(t, True)
            self._braking = False
            self._roll_out(t, x, y, h, speed_meas)
        self.est.step(speed_meas, self.gyro.read(state), dt)
        return self._slew(lean, dt, person), v_ref

    def _follow_person(self, v: float) -> tuple[float, float]:
        """Following the person in sight: ``Navigator._follow``'s lean and speed, the speed also
        capped by ``_approach`` and by V_CLOSE above the person's slowest recent speed."""
        lean, v_ref = self._follow(v)
        return lean, min(v_ref, self._approach(self.distance), self.v_person_low() + V_CLOSE)

    def _last_line(self, t: float, speed: float) -> None:
        """When the planned trajectory touches what the map holds nearer than the bicycle can
        stop (``Navigator._stopping``): take the nearest offset whose trajectory does not
        (``Navigator._swerve``), or, if there is none, brake onto the stand — no swerve is left,
        and a stop is not a crash (errand seed 20: stopping behind a person, it rolled into a
        cone it could not steer round). (Braking whenever the planned one touched stopped the
        bicycle in front of boxes it would have passed, and the stand, which launches only
        straight ahead, kept it there: round 8 in docs/bicycle.md.)"""
        if not self._swerve(t, speed):
            self._braking = True
            self.emergency.append(round(t, 3))

    def _launch_clear(self, x: float, y: float, h: float) -> bool:
        """Whether the stand may let the bicycle go: nothing the map holds in the straight
        corridor ahead (half width avoid.CLEARANCE, LAUNCH_CLEAR long). Off the stand the
        bicycle rides straight until V_LAUNCH — it cannot steer round anything before — and a
        launch towards a cone 3 m ahead (the bicycle had stopped behind a person the CNN saw in
        it) ran into it. Waiting, the map keeps updating: a false sighting clears, an obstacle
        does not, and the bicycle stays on its stand."""
        return self._corridor_clear(self._stand_cells(x, y, h, LAUNCH_CLEAR + avoid.CLEARANCE), x, y, h)

    def _stand_cells(self, x: float, y: float, h: float, radius: float) -> np.ndarray:
        """What the stand must not launch or turn into: the map's occupied cells within
        ``radius``, and points along each sector the last frame reads as saturated (something
        nearer than vision.SECTOR_NEAR, where the map takes no update: avoid.SATURATED), from
        just beyond the front wheel out to SECTOR_NEAR — on the stand the bicycle may stand that
        near to something the map never placed (a box 4 m ahead of where it started)."""
        cells = self.map.occupied(x, y, radius)
        p = self.percept
        if p is None:
            return cells
        sat = np.asarray(p.sectors) >= avoid.SATURATED
        if p.explained is not None:
            sat &= ~np.asarray(p.explained, bool)
        if not sat.any():
            return cells
        cx, cy = vision.camera_xy(self.labeller.spec, x, y, h)
        edges = np.radians(vision.SECTORS)
        a = np.concatenate([np.linspace(edges[k], edges[k + 1], 3) for k in np.flatnonzero(sat)]) + h
        b = self.sc.bicycle     # from just beyond the front wheel (nearer would already touch) out to SECTOR_NEAR
        near = b.w + b.rF - self.labeller.spec.mount_forward + collide.HALF_WIDTH
        d = np.arange(near, vision.SECTOR_NEAR + 0.01, 0.25)
        pts = np.stack([cx + np.outer(np.cos(a), d).ravel(), cy + np.outer(np.sin(a), d).ravel()], axis=1)
        return np.concatenate([cells, pts])

    @staticmethod
    def _corridor_clear(cells, x: float, y: float, h: float, length: float = LAUNCH_CLEAR,
                        half: float = avoid.CLEARANCE) -> bool:
        """No cell in the corridor from (x, y) along heading h, ``length`` long and ``half`` wide
        on each side."""
        if not len(cells):
            return True
        dx, dy = cells[:, 0] - x, cells[:, 1] - y
        ahead = dx * math.cos(h) + dy * math.sin(h)
        side = -dx * math.sin(h) + dy * math.cos(h)
        return not np.any((ahead > 0) & (ahead < length) & (np.abs(side) < half))

    def _stand_k(self) -> float:
        """The curvature [1/m] of the stand's arc: handlebar at STAND_STEER, a kinematic bicycle."""
        b = self.sc.bicycle
        return STAND_STEER * math.cos(b.lam) / b.w

    def _stand_arc(self, x: float, y: float, h: float, sign: int, dpsi):
        """(x, y, heading) of the rear wheel after the stand has turned the bicycle by ``dpsi``
        [rad, scalar or array] on its arc to the left (``sign`` 1) or right (-1)."""
        k, ph = self._stand_k(), h + sign * np.asarray(dpsi, float)
        return x + sign * (np.sin(ph) - math.sin(h)) / k, y - sign * (np.cos(ph) - math.cos(h)) / k, ph

    def _footprint_gaps(self, cells, px, py, ph) -> np.ndarray:
        """The rear wheel, the frame's middle and the front wheel of the bicycle at each pose
        (arrays) to the nearest of ``cells`` [m], (poses, 3); inf beyond avoid.CLEARANCE of them all."""
        b = self.sc.bicycle
        along = np.array([0.0, 0.5, 1.0]) * (b.w + b.rF)
        px, py, ph = (np.atleast_1d(np.asarray(a, float)) for a in (px, py, ph))
        pts = np.stack([px[:, None] + along * np.cos(ph)[:, None], py[:, None] + along * np.sin(ph)[:, None]], axis=2)
        return avoid.nearest(cells, pts.reshape(1, -1, 2))[0].reshape(-1, 3)

    def _roll_out(self, t: float, x: float, y: float, h: float, v: float) -> None:
        """The stand is down and the bicycle still rolls (above V_ROLL). The stand comes down at
        up to V_STAND, ~1.8 m from a stop at follow.BRAKE, and with the handlebar straight the
        bicycle rolled on into a cone (errand seed 110, round 16) and a tall box's corner (339,
        round 17). So: when the straight roll-out — the stop plus the front wheel's reach,
        avoid.CONTACT to each side — holds something the map holds, steer (``stand_steer``) at
        STAND_STEER to the side whose arc over the roll-out keeps clearer, if it beats rolling
        straight. Clearer: less intrusion within CONTACT summed along the roll-out (a line along
        the map's grid is never nearer than half a cell to a cell centre: the nearest alone says
        little), then the larger nearest clearance. Once begun, the turn goes on while its arc
        keeps as clear as rolling straight: what is beside the bicycle leaves the camera's view
        and the corridor (339's handlebar went straight again, and it touched the box)."""
        self.stand_steer = 0.0
        if v <= V_ROLL:
            self._roll_sign = 0
            return
        reach, stop = self.sc.bicycle.w + self.sc.bicycle.rF, v * v / (2.0 * BRAKE)
        cells = self._stand_cells(x, y, h, stop + reach + avoid.CLEARANCE)
        if not self._roll_sign and self._corridor_clear(cells, x, y, h, length=stop + reach, half=avoid.CONTACT):
            return
        s = np.linspace(0.0, stop, max(2, int(math.ceil(stop / 0.1)) + 1))   # along the roll-out [m]

        def clearance(px, py, ph):   # larger is clearer
            g = self._footprint_gaps(cells, px, py, ph)
            return -np.maximum(avoid.CONTACT - g, 0.0).sum(), min(g.min(), avoid.CLEARANCE)

        straight = clearance(x + s * math.cos(h), y + s * math.sin(h), np.full_like(s, h))
        arcs = {sign: clearance(*self._stand_arc(x, y, h, sign, s * self._stand_k())) for sign in (1, -1)}
        sign = self._roll_sign or max(arcs, key=arcs.get)
        if arcs[sign] > straight or (self._roll_sign and arcs[sign] >= straight):
            if self._roll_sign == 0:
                self.roll_steers.append(round(t, 3))
            self._roll_sign = sign
            self.stand_steer = sign * STAND_STEER

    def _turn_to_launch(self, x: float, y: float, h: float) -> bool:
        """When the way straight ahead is not clear (stopped in front of an obstacle): whether
        the stand can turn the bicycle — handlebar at STAND_STEER, rolling at V_CREEP, a
        kinematic arc — to a heading with LAUNCH_CLEAR of clear way, within TURN_MAX of the
        path's direction, without the arc bringing the rear wheel, the front wheel or the
        point between nearer than avoid.CONTACT to what the map holds (or nearer than they
        are now). The side that needs the smaller turn is taken (the planner's on a tie) and
        kept while it stays possible. Sets ``_turn_sign``. (Before, the bicycle waited on its
        stand until the map cleared: 16-20 s twice in 100 errand rides, round 8.)"""
        b = self.sc.bicycle
        reach = b.w + b.rF
        cells = self._stand_cells(x, y, h, LAUNCH_CLEAR + avoid.CLEARANCE + reach + 2.0 / self._stand_k())
        if not len(cells):
            return False
        path_h = self.sc.path.heading(self.sc.path.project(x, y)[0])
        floor = np.minimum(self._footprint_gaps(cells, x, y, h), avoid.CONTACT)
        best = None
        for sign in ((self._turn_sign,) if self._turn_sign else (1, -1)):
            for k in range(1, int(TURN_MAX * 2 / TURN_STEP) + 1):
                dpsi = k * TURN_STEP
                px, py, ph = (float(a) for a in self._stand_arc(x, y, h, sign, dpsi))
                if abs((ph - path_h + math.pi) % (2 * math.pi) - math.pi) > TURN_MAX:
                    break
                if np.any(self._footprint_gaps(cells, px, py, ph) < floor):
                    break
                if self._corridor_clear(cells, px, py, ph):
                    if best is None or k < best[0] or (k == best[0] and sign * self.offset > 0):
                        best = (k, sign)
                    break
        self._turn_sign = 0 if best is None else best[1]
        return best is not None

    def _forget_person(self, t: float, p) -> None:
        """Drop the person kept in mind (``_keep_distance``) when the place they should be is
        in plain view — within FORGET_RANGE of the camera, inside the field of view with 5° to
        spare, no occupied cell of the map in between — and the CNN has seen no person for
        FORGET_S. A person read at 8 m who was 35 m away and running on (errand seed 2, round 8)
        had kept the bicycle on its stand for 17 s, waiting behind an empty road."""
        if self._person is None or (p.bearing is not None and p.visible >= SEEN_OFF):
            self._unseen_since = None
            return
        x, y, h = self.est.pose
        spec = self.labeller.spec
        cx, cy = vision.camera_xy(spec, x, y, h)
        s_p = self._person[0] + max(self.v_person, 0.0) * (t - self._person[1])
        px, py = self.sc.path.point(s_p)
        d = math.hypot(px - cx, py - cy)
        sight = math.atan2(py - cy, px - cx)
        off = abs((sight - h + math.pi) % (2 * math.pi) - math.pi)
        if not (d < FORGET_RANGE and math.degrees(off) < spec.hfov_deg / 2 - 5.0):
            self._unseen_since = None
            return
        # something the map holds on the line of sight may hide them
        if not self._corridor_clear(self.map.occupied(cx, cy, d), cx, cy, sight, length=d, half=0.5):
            self._unseen_since = None
            return
        if self._unseen_since is None:
            self._unseen_since = t
        elif t - self._unseen_since >= FORGET_S:
            self._person, self._unseen_since = None, None
            self.forgotten.append(round(t, 3))

    def _keep_distance(self, t: float, x: float, y: float) -> float:
        """A speed limit that keeps FOLLOW_DISTANCE behind the person last seen ahead, wherever
        they are now by their last speed (the person may be hidden, or out of view on a bend):
        riding and avoiding never run into someone the camera saw."""
        if self._person is None or t - self._person[1] > PERSON_MEMORY_S:
            return math.inf
        s_p = self._person[0] + max(self.v_person, 0.0) * (t - self._person[1])
        gap = s_p - self.sc.path.project(x, y)[0]
        if not -2.0 < gap < 30.0:
            return math.inf
        return min(V_MAX, max(V_MIN, self.v_person + 1.0 * (gap - FOLLOW_DISTANCE)), self._approach(gap))

    def _approach(self, gap: float) -> float:
        """The fastest speed from which braking at A_BRAKE still stops closing in at
        FOLLOW_DISTANCE behind a person moving at their measured speed; below V_MIN the
        stand comes down (the bicycle waits behind a person who stops)."""
        return max(self.v_person, 0.0) + math.sqrt(2.0 * A_BRAKE * max(0.0, gap - FOLLOW_DISTANCE))

    def cruise(self, t: float) -> float:
        lo, hi = CRUISE
        return min(hi, max(lo, self.sc.target_speed(t) + self.speed_offset))

    def _stand(self, t, down: bool) -> None:
        self.stand, self._roll_sign = down, 0
        self.stand_changes.append((round(t, 3), "down" if down else "up"))
        if down:
            self.offset = 0.0

    # perception from the brain ------------------------------------------------------------
    def _perceive(self, t):
        b = self.brain
        p = self.percept = b.percept
        self._plan(p, centre=self.lane)
        est = self._track(t, math.degrees(self.est.pose[2]))
        self._range(p, speed_within=DIST_VALID)
        # where the person is, along the path: only once the CNN has read them nearer than
        # DIST_VALID in SEEN_FRAMES frames running (a person 70 m ahead, a pixel or two, is
        # read at 11-20 m now and then, and the bicycle stopped behind that place for good)
        near = p.bearing is not None and p.visible >= SEEN_ON and p.distance < DIST_VALID
        self._near_run = self._near_run + 1 if near else 0
        if est is not None and near and self._near_run >= SEEN_FRAMES:
            x, y, h = self.est.pose
            a = h + math.radians(est)
            self._person = (self.sc.path.project(x + self.distance * math.cos(a), y + self.distance * math.sin(a))[0], t)
        self._forget_person(t, p)
        if self._truth is not None and self.sc.target is not None:
            tb, td, pix = self._truth
            self.frames.append((t, tb, pix >= vision.MIN_PIXELS, np.nan if est is None else est, td))

    # commands -----------------------------------------------------------------------------
    def _hear(self, t):
        heard = self.brain.heard
        while self._heard_seen < len(heard):
            th, word = heard[self._heard_seen]
            self._heard_seen += 1
            rec = {"t": th, "word": word, "obeyed_s": None, "note": ""}
            self.log.append(rec)
            if word in NSM_WORDS:
                self._pending.append(rec)
            elif word in SET_POINT_WORDS:
                self._set_point(rec, t)
            else:
                rec["note"] = "not a command"
        for rec in list(self._pending):
            if self.state in NSM_WORDS[rec["word"]]:
                rec["obeyed_s"] = round(t - rec["t"], 4)
                self._pending.remove(rec)
            elif t - rec["t"] > OBEY_S:
                rec["note"] = f"state stayed {self.state}"
                self._pending.remove(rec)

    def _set_point(self, rec, t):
        word = rec["word"]
        if word in ("faster", "slower"):
            before = self.cruise(t)
            self.speed_offset += SPEED_STEP if word == "faster" else -SPEED_STEP
            lo, hi = CRUISE
            base = self.sc.target_speed(t)
            self.speed_offset = min(hi - base, max(lo - base, self.speed_offset))
            rec["note"] = f"cruise {before:.1f} -> {self.cruise(t):.1f} m/s"
        else:
            before = self.lane
            self.lane = max(-LANE_MAX, min(LANE_MAX, self.lane + (LANE if word == "left" else -LANE)))
            rec["note"] = f"lane {before:+.1f} -> {self.lane:+.1f} m"
        rec["obeyed_s"] = round(t - rec["t"], 4)

    def commands(self) -> dict:
        obeyed = [r for r in self.log if r["obeyed_s"] is not None and r["obeyed_s"] <= OBEY_S]
        return {"heard": [[r["t"], r["word"]] for r in self.log],
                "obeyed": [[r["t"], r["word"], r["obeyed_s"]] for r in obeyed],
                "not_obeyed": [[r["t"], r["word"], r["note"]] for r in self.log if r not in obeyed],
                "log": self.log}

    def metrics(self) -> dict:
        out = super().metrics()
        out["pilot"] = {"stand": self.stand_changes, "lane_m": self.lane, "speed_offset": self.speed_offset,
                        "emergency_stops": self.emergency,
                        "stand_turns": self.turns, "stand_roll_steers": self.roll_steers,
                        "person_forgotten": self.forgotten}
        return out
