"""The bicycle's whole-brain ride through tr.stream's scheduler, with the loop jumping over the
ticks on which nothing is due against the per-tick loop (``Scheduler.per_tick = True``, the
loop before the jump), side by side in one run (docs/streaming.md, Ticks where nothing is due).

    .venv/bin/python bench/bench_brain_ride.py [--seconds 3] [--repeat 5]

Two measurements, each per-tick then jumping, interleaved ``--repeat`` times (medians):

- the ride: the follow scenario (seed 2) with a spoken "go" and "stop", the balance SNN and the
  brain (NSM, vision CNN, CANN, voice SNN) on numba at the brain's tick of 1/24000 s, the camera
  rendered at 30 Hz (``run_stream(..., brain=Brain(...))``): the real-time factor (simulated
  seconds per wall second), and the rides' summaries compared (they must be identical apart
  from timings);
- the scheduler alone: the brain's five rates and four sources with trivial networks (one ReLU
  each, reference backend) and no-op sinks, so that what is left is the loop's own cost: wall
  time minus runtime step time, per simulated second;
- where a ride's time goes (one more ride, jumping): the wall time per simulated second inside
  each source's callable, each sink, each runtime's step, and the rest (the scheduler's own:
  polling, checking and queueing samples, delivering, latency bookkeeping), timed around each
  call (timer cost included, ~0.2 us per call).

Pins itself to one CPU, one numba thread; after one warm-up ride that compiles.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from benchutil import pin_one_cpu

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

TICK = 1.0 / 24000.0
STRIDES = {"balance": 15, "nsm": 24, "vision": 24, "cann": 40, "voice": 240}   # the brain's (brain.py)


def skeleton(seconds: float, per_tick: bool) -> dict:
    """The brain's rates with trivial networks: the scheduler's own cost."""
    import numpy as np

    import tianrt as tr

    rts = {}
    for name, k in STRIDES.items():
        g = tr.Graph(dt=k * TICK, name=name)
        g.output(f"{name}_y", g.add(tr.ann.ReLU(), g.input("x", shape=(4,))))
        rts[name] = tr.Runtime(g)
    s = tr.stream.Scheduler(rts, dt=TICK)
    s.per_tick = per_tick
    x = np.ones(4, np.float32)
    S = tr.stream.SimulationSource
    s.add_source(S(lambda t: {"obs": x, **({"frame": x} if round(t * 100) % 10 in (0, 3, 7) else {})},
                   rate_hz=100.0, name="bicycle"), to={"obs": "balance.x", "frame": "vision.x"})
    s.add_source(S(lambda t: x, rate_hz=100.0, name="microphone"), to="voice.x")
    s.add_source(S(lambda t: x, rate_hz=30.0, start=1 / 600, name="detection"), to="cann.x")
    s.add_source(S(lambda t: x, rate_hz=1000.0, name="events"), to="nsm.x")
    for o in s.outs:
        s.add_sink(o, lambda v, t: None)
    w0 = time.perf_counter()
    rep = s.run(seconds=seconds)
    wall = time.perf_counter() - w0
    return {"wall": wall, "loop": wall - s.step_total, "ticks": rep["ticks"], "jumped": rep["jumped_ticks"]}


def timed_calls(acc: dict):
    """Make ``Scheduler.run`` time every source callable, callable sink and runtime step into
    ``acc`` (name -> seconds); returns a function that undoes it."""
    import tianrt as tr
    from tianrt.stream.sinks import CallableSink

    pc = time.perf_counter
    orig = tr.stream.Scheduler.run

    def timed(key, fn):
        def call(*a):
            t0 = pc()
            try:
                return fn(*a)
            finally:
                acc[key] = acc.get(key, 0.0) + pc() - t0
        return call

    def run(self, *a, **k):
        for f in self.feeds:
            if hasattr(f.src, "fn"):
                f.src.fn = timed(f"source {f.name}", f.src.fn)
        for o in self.outs.values():
            for s in o.sinks:
                if isinstance(s, CallableSink):
                    s.fn = timed(f"sink {o.key}", s.fn)
        for r in self.rts:
            r.step = timed(f"step {r.name}", r.step)
        t0 = pc()
        try:
            return orig(self, *a, **k)
        finally:
            acc["run"] = acc.get("run", 0.0) + pc() - t0

    tr.stream.Scheduler.run = run
    return lambda: setattr(tr.stream.Scheduler, "run", orig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="simulated seconds per ride")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    pinned = pin_one_cpu()

    import numba
    import numpy as np

    import tianrt as tr
    from tianrt.demos.bicycle import brain as B
    from tianrt.demos.bicycle import policy, render, speech, suite, sweep, world
    from tianrt.demos.bicycle.run import run_stream

    d = suite.make("follow", 2, args.seconds)
    d["speech"] = {"commands": [[0.3, "go"], [min(1.8, args.seconds - 1.0), "stop"]], "noise": []}
    sc = world.parse_scenario(d)
    audio, _ = speech.track(sc.speech, sc.duration, sc.seed)
    snn = policy.to_snn(policy.load(), policy.calibration_data())
    nets = B.graphs()

    def ride(per_tick: bool):
        tr.stream.Scheduler.per_tick = per_tick
        try:
            cam = render.SensorCamera(render.Scene(sc))
            t0, c0 = time.perf_counter(), time.thread_time()
            r = run_stream(sc, snn, "numba", camera_hz=30.0, camera=cam, brain=B.Brain(audio=audio, nets=nets))
            return time.perf_counter() - t0, time.thread_time() - c0, r
        finally:
            tr.stream.Scheduler.per_tick = False

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}; {pinned}; "
          f"load average {os.getloadavg()[0]:.2f}")
    ride(False)  # warm-up: compiles
    walls = {True: [], False: []}
    cpus = {True: [], False: []}
    loops = {True: [], False: []}
    summaries, info = {}, {}
    for _ in range(args.repeat):
        for per_tick in (True, False):
            w, c, r = ride(per_tick)
            walls[per_tick].append(w)
            cpus[per_tick].append(c)
            summaries[per_tick] = sweep.deterministic(r.summary())
            info[per_tick] = r.stream["ticks"]
            sk = skeleton(args.seconds, per_tick)
            loops[per_tick].append(sk["loop"])
            info[per_tick, "jumped"] = sk["jumped"]
    same = summaries[True] == summaries[False]
    secs = args.seconds
    print(f"\nthe brain ride, {secs:g} s simulated, {info[False]} ticks of 1/24000 s; medians of {args.repeat}")
    print(f"{'':44s} {'per-tick loop':>14s} {'jumping loop':>14s} {'ratio':>7s}")
    wt, wj = statistics.median(walls[True]), statistics.median(walls[False])
    print(f"{'ride wall time [s]':44s} {wt:14.3f} {wj:14.3f} {wt / wj:6.2f}x")
    print(f"{'ride real-time factor':44s} {secs / wt:13.2f}x {secs / wj:13.2f}x")
    ct, cj = statistics.median(cpus[True]), statistics.median(cpus[False])
    print(f"{'ride CPU time of the thread [s]':44s} {ct:14.3f} {cj:14.3f} {ct / cj:6.2f}x")
    print(f"{'ride real-time factor in CPU time':44s} {secs / ct:13.2f}x {secs / cj:13.2f}x")
    lt, lj = statistics.median(loops[True]), statistics.median(loops[False])
    print(f"{'scheduler alone: loop time per sim. s [ms]':44s} {lt / secs * 1e3:14.1f} {lj / secs * 1e3:14.1f} "
          f"{lt / lj:6.2f}x")
    n = info[False]
    print(f"{'scheduler alone: per tick [us]':44s} {lt / n * 1e6:14.2f} {lj / n * 1e6:14.2f}")
    print(f"{'ticks visited per sim. s':44s} {n / secs:14.0f} {(n - info[False, 'jumped']) / secs:14.0f}")
    acc = {}
    undo = timed_calls(acc)
    try:
        ride(False)
    finally:
        undo()
    run = acc.pop("run")
    print(f"\nwhere the jumping ride's time goes, ms per simulated s (one ride, {run / secs * 1e3:.0f} in all):")
    parts = sorted(acc.items(), key=lambda kv: -kv[1])
    parts.append(("scheduler's own (the rest)", run - sum(acc.values())))
    for k, v in parts:
        print(f"  {k:40s} {v / secs * 1e3:8.1f}")
    print(f"\nride summaries identical (all but timings): {'yes' if same else 'NO'}")
    if not same:
        for k in summaries[True]:
            if summaries[True][k] != summaries[False].get(k):
                print(f"  differs: {k}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
