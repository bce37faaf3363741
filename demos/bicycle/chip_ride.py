"""The whole brain in the closed loop on one chip, bit for bit against numba's integer mode.

    python -m tianrt.demos.bicycle.brain_chip --ride --seed 1 --port auto       # chip over a pty
    python -m tianrt.demos.bicycle.brain_chip --ride --seeds 1,2,3 --duration 3

One ride of a ``follow`` scenario with a spoken "go" and "stop" (the shipped clips), twice:
(1) every quantised network of the brain on numba's integer mode in this process; (2) the
same integer graphs on one chip — ``tr.chip.compile_many`` puts each in its own region of one
156-core ChipSpec, ``tr.chip.open_many`` opens one session on the board (``port``: "auto"
starts firmware_sim on a pseudo-terminal) and each network is a ``tr.Runtime`` on its region,
every step a REGION frame on the one serial link. Both rides are served by one
``tr.stream.Scheduler`` (``run.run_stream(..., brain=Brain(...))``) with the same host glue.
The check: every output of every network (the balance torques every control step, the NSM's
spikes every tick, the CNN's percepts, the CANN's spikes and population vector) identical, hence
identical torques applied, NSM state sequence and ride.

All five networks are on the chip (``ON_CHIP``), the voice SNN too since ``tr.quantize``
rescales its current-fed recurrent layer's feed-forward product (docs/integer.md); a network
left out of ``ON_CHIP`` runs on the host in numba float in both rides (``HOST``).
``nets_and_partition`` refuses a graph whose inputs are not what the brain feeds (a mapped-only
twin).
"""
from __future__ import annotations

import time

import numpy as np

import tianrt as tr

from . import brain as B
from . import render, speech, suite, world
from .run import run_stream

ON_CHIP = ("balance", "nsm", "vision", "cann", "voice")
HOST = tuple(k for k in ("nsm", "vision", "cann", "voice") if k not in ON_CHIP)


class RecordingBrain(B.Brain):
    """The brain, with every output of every network (and the balance torque) kept in
    ``log``: name -> list of (scheduler tick, value)."""

    def attach(self, sched, ended=None) -> None:
        super().attach(sched, ended)
        self.log = {}
        keys = ["balance.torque"] + [f"{k}.{o}" for k, g in self.graphs.items() for o in g.outputs]
        for key in keys:
            self.log[key] = []
            sched.add_sink(key, lambda v, t, _k=key: self.log[_k].append((round(t / self.dt), np.array(v))))


def scenario(seed: int, duration: float = 3.0, kind: str = "follow") -> world.Scenario:
    """``follow``: a follow ride with "go" at 0.3 s and, in rides of 2.8 s or more, "stop" at
    1.8 s (the voice detector is deaf for 1 s after a word; a word is heard ~0.5 s after it
    ends), no noise: the state machine goes idle -> ride -> follow (-> stop_requested -> idle),
    ridden by the waypoint follower. ``errand``: the whole brain's scenario as it is (its
    speech in noise), ridden by the pilot that acts on the state machine (pilot.Pilot)."""
    if kind == "errand":
        return world.parse_scenario(suite.make("errand", seed, duration))
    d = suite.make("follow", seed, duration)
    d["speech"] = {"commands": [[0.3, "go"]] + ([[1.8, "stop"]] if duration >= 2.8 else []), "noise": []}
    return world.parse_scenario(d)


def nets_and_partition(networks: dict, spec=None, on_chip=ON_CHIP):
    """The integer graphs on the chip (name -> graph, from ``brain_chip.networks(on_chip)``),
    the host's graphs (the brain's others, float), and their partition of one chip."""
    chip = {k: (v[0] if isinstance(v, tuple) else v) for k, v in networks.items() if k in on_chip}
    missing = sorted(set(on_chip) - set(chip))
    if missing:
        raise ValueError(f"no integer graph given for {missing}")
    brain = B.graphs()
    for k, g in chip.items():     # a network on the chip takes what the brain's glue feeds it
        if k in brain and _interface(g) != _interface(brain[k]):
            raise ValueError(f"{k!r} on the chip would be graph {g.name!r} with inputs and outputs "
                             f"{_interface(g)}, but the brain feeds {_interface(brain[k])} (a mapped-only "
                             f"twin cannot ride: give brain_chip.networks its quantised graph)")
    host = {k: v for k, v in brain.items() if k not in chip}
    part = tr.chip.compile_many(chip, spec or tr.chip.ChipSpec())
    return chip, host, part


def _interface(g) -> tuple:
    return (sorted((n, tuple(e.shape), e.domain) for n, e in g.inputs.items()), sorted(g.outputs))


def ride(sc, chip_nets: dict, host_nets: dict, session=None):
    """One ride of the brain: the ON_CHIP networks on ``session`` (regions of one chip), or,
    without one, on numba's integer mode. Returns (RunResult, the brain's output log, wall s)."""
    audio, _ = speech.track(sc.speech, sc.duration, sc.seed)
    nets = {k: g for k, g in chip_nets.items() if k != "balance"} | host_nets
    if session is None:
        rts, backend, options = {}, "numba", None
    else:
        rts = {k: tr.Runtime(g, backend="chip", session=session, region=k) for k, g in nets.items() if k in chip_nets}
        backend, options = "chip", {"session": session, "region": "balance"}
    brain = RecordingBrain(audio=audio, nets=nets, runtimes=rts)
    cam = render.SensorCamera(render.Scene(sc))
    nav = None
    if sc.name.startswith("errand"):   # the pilot acts on the state machine (the same on both sides)
        from .pilot import Pilot
        from .run import schedule_for

        nav = Pilot(sc, schedule_for(sc.bicycle, 1.0 / sc.control_hz), brain)
    t0 = time.perf_counter()
    try:
        r = run_stream(sc, chip_nets["balance"], backend, camera_hz=B.CAMERA_HZ, camera=cam, brain=brain,
                       keep_traces=True, options=options, nav=nav)
    finally:
        for rt in rts.values():
            rt.close()
    return r, brain.log, time.perf_counter() - t0


def compare(a_log: dict, b_log: dict) -> dict:
    """Per output: values on each side and whether they are identical (ticks and values)."""
    out = {}
    for key in a_log:
        a, b = a_log[key], b_log.get(key, [])
        same = len(a) == len(b) and all(ta == tb and va.shape == vb.shape and np.array_equal(va, vb)
                                         for (ta, va), (tb, vb) in zip(a, b))
        out[key] = {"values": len(a), "identical": bool(same)}
    return out


def check(seed: int, parts: tuple, duration: float = 3.0, port="auto", kind: str = "follow") -> dict:
    """Ride ``seed`` (``scenario``'s kind) on numba integer and on the chip (over ``port``); the
    comparison. ``parts``: what ``nets_and_partition`` returns."""
    chip_nets, host_nets, part = parts
    sc = scenario(seed, duration, kind)
    ref, ref_log, ref_wall = ride(sc, chip_nets, host_nets)
    with tr.chip.open_many(part, port=port) as chip:
        got, got_log, wall = ride(sc, chip_nets, host_nets, session=chip)
        counters = chip.counters()
    outputs = compare(ref_log, got_log)
    steps = int(round(got.duration * sc.control_hz))
    torque_same = bool(np.array_equal(ref.traces["torque"], got.traces["torque"]))
    return {"seed": seed, "duration_s": got.duration, "control_steps": steps, "on_chip": list(chip_nets),
            "on_host": list(host_nets), "outputs": outputs, "torques_identical": torque_same,
            "nsm_states": got.brain["nsm"]["states"], "nsm_states_identical": ref.brain["nsm"] == got.brain["nsm"],
            "heard": got.brain["commands"]["heard"],
            "bit_exact": torque_same and ref.brain == got.brain and all(o["identical"] for o in outputs.values()),
            "fell": got.fell, "collisions": got.collisions, "kind": kind,
            "obeyed": got.brain["commands"].get("obeyed"),
            "wall_s": {"numba": ref_wall, "chip": wall},
            "ms_per_control_step": {"numba": 1e3 * ref_wall / steps, "chip": 1e3 * wall / steps},
            "chip_cores": part.cores_used, "chip_frames": int(counters.get("link_frames", 0)),
            "chip_energy_uj": counters.get("energy_pj", 0.0) * 1e-6}
