"""The bicycle's brain as one deployable unit served by one ``tr.stream.Scheduler``: the
balance network, the neural state machine, the vision CNN, the CANN tracker and the voice SNN,
each a ``tr.Runtime`` stepped at its own tick, fed by sources at the sensors' rates, with the
host glue between them.

    brain = Brain(audio=track)                    # audio: 16 kHz samples, e.g. speech.mix(...)
    r = run_stream(sc, balance, "numba", camera_hz=30, camera=cam, brain=brain)
    r.brain["nsm"]["states"], r.brain["commands"]["heard"]

Rates (ticks per second): balance SNN 1600 (T = 16 per 10 ms control step), NSM 1000, CANN 600
(20 per camera frame), voice SNN 100 (10 ms frames), vision CNN 1000 (it computes only when a
frame arrives, 30 per second). The scheduler's tick is 1/24000 s, the largest that all of these
are whole multiples of (15, 24, 40, 240 ticks).

Sources: the bicycle (100 Hz: the balance network's observation, and the camera frame on the
control steps where one is rendered), the microphone (100 Hz: a 10 ms chunk of ``audio``
through the voice network's log-mel front end), the tracker's detection (30 Hz, 1/600 s after
each frame: ``cann.code`` of the CNN's decoded bearing in the world frame — plus the estimated
heading ``heading()`` when the frame was taken, as in the ride's follower — zeros when it sees
nobody) and the
state machine's events (1 kHz: one spike per tick on each event channel while that event is
asserted). Glue on the outputs: the voice readout goes through the voice demo's streaming decision rule
(``voice.stream.Online``; threshold 0.9, smoothing 20, hold 5 ticks on the bicycle); a heard
"go", "stop" or "follow" asserts that event for ``EVENT_S`` (the other words are set points for
the pilot); the CNN's percept asserts "person" (visibility >= SEEN_ON in SEEN_FRAMES frames
running), "lost" (below SEEN_OFF for LOST_S after being seen), "obstacle" (the centre sector
nearer than ``OBSTACLE_NEAR`` in NEAR_FRAMES frames running) and "done" (the five middle
sectors clear of DONE_CLEAR for DONE_HOLD after an obstacle); the CANN's frame outputs
(``count``, ``pv``) go through ``cann.Readout`` for the tracked bearing (world frame; none
after the readout's time-out); the NSM's spikes give
the state. ``pilot.Pilot`` acts on the state (docs/bicycle.md, The brain decides).
"""
from __future__ import annotations

import numpy as np

import tianrt as tr

from . import cann, nsm, vision

TICK = 1.0 / 24000.0
CAMERA_HZ = 30.0
EVENT_S = 0.1                 # how long a detected event is asserted to the NSM [s]
SEEN_FRAMES, LOST_S = 5, 0.5
SEEN_ON = 0.7         # "person": the CNN's visibility at least this for SEEN_FRAMES frames running ...
SEEN_OFF = 0.5        # ... "lost": below this for LOST_S after being seen (hysteresis: the CNN reads
                      # 0.4-0.65 on empty lanes stretching far ahead, docs/bicycle.md)
NEAR_FRAMES = 3       # "obstacle": the centre sector nearer than OBSTACLE_NEAR in this many frames running
OBSTACLE_NEAR = vision.sector_value(9.0)   # (12 m until the CNN's weak far readings on empty lanes
                      # made errand rides alternate ride and avoid ~5 times a ride; the map and the
                      # planner see farther, and steer and slow down in any state: docs/bicycle.md)
DONE_CLEAR = vision.sector_value(10.0)   # "done": the five middle sectors report nothing nearer than 10 m ...
DONE_HOLD = 1.0                          # ... for this long [s] after an obstacle
# the voice rule on the bicycle (voice.stream.Rule): on the audio of errand seeds 0-9 (30 spoken
# commands in motor and wind noise at 15 dB, 10 minutes) 0.7 / 20 / hold 1 heard all 30 with 1
# false command; 0.9 / 20 / hold 5 heard all 30 with none (docs/bicycle.md, The brain decides)
VOICE_THRESHOLD, VOICE_SMOOTHING, VOICE_HOLD = 0.9, 20, 5
# "stop" has a threshold of its own: a stop not heard leaves the bicycle riding, a false one
# stands it on its stand. At 0.9 the shipped network missed the shipped "stop" in 6 of errand
# seeds 0-59; with 0.7 it hears 539 of 540 words on seeds 0-179 and no false command, and none
# in 3 hours of the same noise without words (hear_errands --voices silent; docs/bicycle.md)
VOICE_STOP_THRESHOLD = 0.7


def voice_rule():
    """The voice detector's rule on the bicycle (``voice.stream.Rule``: the settings above and
    the rule's own refractory, 1.2 s)."""
    from tianrt.demos.voice.data import CLASSES
    from tianrt.demos.voice.stream import Rule
    return Rule(threshold=VOICE_THRESHOLD, k=VOICE_SMOOTHING, hold=VOICE_HOLD,
                per_class=((CLASSES.index("stop"), VOICE_STOP_THRESHOLD),))


def graphs(integer: bool = False) -> dict:
    """The brain's networks besides the balance network (name -> graph): float, or all four
    in integer mode (the voice SNN through ``voice.integer.quantized``)."""
    from tianrt.demos import voice
    from tianrt.demos.voice import integer as voice_int

    g = {"nsm": nsm.quantized() if integer else nsm.build(),
         "vision": vision.int8(vision.load()) if integer else vision.load(),
         "cann": cann.quantized() if integer else cann.build_graph(),
         "voice": voice_int.quantized() if integer else tr.load(str(voice.SHIPPED))}
    return g


class Brain:
    """The non-balance networks of the brain and their glue, for ``run.run_stream(..., brain=)``."""

    def __init__(self, audio=None, backend: str = "numba", nets: dict | None = None, runtimes: dict | None = None):
        from tianrt.demos.voice.frontend import HOP, VoiceFrontEnd
        from tianrt.demos.voice.stream import Online, softmax

        self.graphs = nets if nets is not None else graphs()
        # runtimes: prebuilt ones (name -> tr.Runtime of that graph, e.g. regions of one chip)
        given = dict(runtimes or {})
        self.runtimes = {k: given[k] if k in given else tr.Runtime(g, backend=backend) for k, g in self.graphs.items()}
        self.dt = TICK
        vg = self.graphs["voice"]
        self.classes = list(vg.metadata["classes"])
        self.hop = HOP
        self.audio = np.zeros(0, np.float32) if audio is None else np.asarray(audio, np.float32).reshape(-1)
        self.fe = VoiceFrontEnd(vg.metadata)
        self.decider = Online(voice_rule())
        self._softmax = softmax
        self.assert_until = np.full(len(nsm.EVENTS), -1.0)
        self.heard, self.events, self.states, self.bearings = [], [], [], []
        self.frames = self.visible_frames = 0
        self._seen_run, self._last_seen, self._obstacle, self._clear_since = 0, None, False, None
        self._on = set()
        self.track = cann.Readout()
        self.heading = lambda: 0.0   # the camera's estimated heading [deg] (pilot.Pilot: its dead reckoning)
        self._frame_heading = self.percept_heading = 0.0
        self.percept_override = None
        self._nsm_last = None
        self._near_run = 0
        self._frame_out = {}
        self.percept = None
        self._state, self._enables = None, None
        self.ended = lambda: False   # the ride's end (run_stream sets it): the brain's sources end with it

    # -- sources -------------------------------------------------------------------------------
    def _mic(self, t):
        if self.ended():
            return tr.stream.END
        k = int(round(t * 100))
        chunk = self.audio[k * self.hop:(k + 1) * self.hop]
        if len(chunk) < self.hop:
            chunk = np.concatenate([chunk, np.zeros(self.hop - len(chunk), np.float32)])
        return self.fe.push(chunk)

    def _detection(self, t):
        if self.ended():
            return tr.stream.END
        b = self.percept.bearing if self.percept is not None else None
        x, restart = self.track.prepare(b, self.percept_heading)   # the ring's frame: the world's
        if restart:   # the person is elsewhere, or the time-out: the ring starts again (cann.Readout)
            self.runtimes["cann"].reset()
        return x

    def _events(self, t):
        if self.ended():
            return tr.stream.END
        return (self.assert_until > t - 1e-9).astype(np.float32)

    def _assert(self, event: str, t: float) -> None:
        self.assert_until[nsm.EVENTS.index(event)] = t + EVENT_S
        self.events.append((round(t, 4), event))

    # -- sinks ---------------------------------------------------------------------------------
    def _voice(self, y, t):
        c = self.decider.update(self._softmax(np.asarray(y).reshape(-1)))
        if c is not None:
            word = self.classes[c]
            self.heard.append((round(t, 4), word))
            if word in ("go", "stop", "follow"):   # the state machine's; the rest are set points
                self._assert(word, t)

    def _level(self, event: str, on: bool, t: float) -> None:
        """A condition the NSM sees as an event held while it lasts (and ``EVENT_S`` after)."""
        if on:
            if event not in self._on:
                self.events.append((round(t, 4), event))
            self.assert_until[nsm.EVENTS.index(event)] = t + EVENT_S
            self._on.add(event)
        else:
            self._on.discard(event)

    def _vision(self, y, t):
        labels = self.percept_override is not None
        if labels:   # pilot.Pilot(perception="truth"): the frame's labels
            y = self.percept_override()
        p = vision.decode(y, explain=not labels)
        self.percept, self.percept_heading = p, self._frame_heading   # the heading of the frame it saw
        self.frames += 1
        seen = p.visible >= SEEN_OFF
        self.visible_frames += int(seen)
        self._seen_run = self._seen_run + 1 if p.visible >= SEEN_ON else 0
        if seen and (self._last_seen is not None or self._seen_run >= SEEN_FRAMES):
            self._last_seen = t
        self._level("person", self._seen_run >= SEEN_FRAMES, t)
        self._level("lost", not seen and self._last_seen is not None and t - self._last_seen >= LOST_S - 1e-9, t)
        s = p.sectors
        self._near_run = self._near_run + 1 if s[3] >= OBSTACLE_NEAR else 0
        near = self._near_run >= NEAR_FRAMES
        self._level("obstacle", near, t)
        if near:
            self._obstacle, self._clear_since = True, None
        elif self._obstacle:
            if np.max(s[1:6]) < DONE_CLEAR:
                self._clear_since = t if self._clear_since is None else self._clear_since
                if t - self._clear_since >= DONE_HOLD - 1e-9:
                    self._obstacle = False
                    self._assert("done", t)
            else:
                self._clear_since = None

    def _cann_count(self, counts, t):
        self._frame_out["count"] = (t, counts)
        self._cann_frame(t)

    def _cann_pv(self, pv, t):
        self._frame_out["pv"] = (t, pv)
        self._cann_frame(t)

    def _cann_frame(self, t):
        """Both of a frame's CANN outputs are in: the readout's tracked bearing."""
        c, p = self._frame_out.get("count"), self._frame_out.get("pv")
        if c is None or p is None or abs(c[0] - p[0]) > 1e-9:
            return
        self._frame_out.clear()
        self.track.absorb(c[1], p[1])
        if self.track.estimate is not None:
            self.bearings.append((round(t, 4), self.track.estimate))

    def _nsm(self, spikes, t):
        key = np.asarray(spikes).tobytes()
        if key == self._nsm_last:    # the same spikes as the last tick: the same state and enables
            return
        self._nsm_last = key
        d = nsm.decode(np.asarray(spikes).reshape(1, -1))
        s = int(d["state"][0])
        name = nsm.STATES[s] if s >= 0 else ("none" if s == -1 else "several")
        if name != self._state:
            self.states.append((round(t, 4), name))
            self._state = name
        self._enables = {k: int(d[f"enable:{k}"][0]) for k in nsm.ENABLES}

    # -- wiring --------------------------------------------------------------------------------
    def attach(self, sched, ended=None) -> None:
        """Add the brain's sources and sinks to a scheduler built with ``self.runtimes``;
        ``ended()`` says when the ride is over (the brain's sources end then)."""
        if ended is not None:
            self.ended = ended
        S = tr.stream.SimulationSource
        sched.add_source(S(self._mic, rate_hz=100.0, name="microphone"), to="voice.x")
        sched.add_source(S(self._detection, rate_hz=CAMERA_HZ, start=1.0 / 600.0, name="detection"),
                         to="cann.code")
        sched.add_source(S(self._events, rate_hz=1.0 / self.graphs["nsm"].dt, name="events"), to="nsm.events")
        sched.add_sink("voice.y", self._voice)
        sched.add_sink("vision.y", self._vision)
        sched.add_sink("pv", self._cann_pv)
        sched.add_sink("count", self._cann_count)
        sched.add_sink("nsm", self._nsm)

    @property
    def enables(self) -> dict | None:
        """The state machine's enable outputs ({name: 0/1}) at its last tick."""
        return self._enables

    @property
    def state(self) -> str | None:
        """The state machine's current state (None before its first tick)."""
        return self._state

    def frame_input(self, frame) -> dict:
        """The bicycle source's extra value on a control step with a new camera frame."""
        self.last_frame = frame
        self._frame_heading = float(self.heading())
        return {"frame": vision.normalise(frame[None])[0]}

    def summary(self) -> dict:
        out = {"commands": {"heard": self.heard},
               "nsm": {"states": [s for _, s in self.states], "changes": self.states, "enables": self._enables},
               "events": self.events,
               "vision": {"frames": self.frames, "visible_fraction": self.visible_frames / max(self.frames, 1)},
               "cann": {"bearings": len(self.bearings),
                        "last_bearing_deg": self.bearings[-1][1] if self.bearings else None},
               "tick_s": self.dt}
        return out

