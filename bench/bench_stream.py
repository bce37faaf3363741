"""Scheduler overhead per tick: three sources (a 30 Hz camera, a 200 Hz IMU simulation,
10 ms audio chunks) into a trivial graph, on the simulated clock, against the same runtime
steps called directly in a plain loop with the same inputs at the same ticks. The overhead
is reported as a fraction of a 1 ms tick (target: below 1 %). Then a short wall-clock run
reports tick lateness; the cost of building a status report (full 64K-value windows against
the live 1K-value windows the status line uses); the cost of recording to MCAP; and a model
slower than real time (a 5,000-wide dense layer fed by a 1 kHz IMU) under each overrun policy.

    .venv/bin/python bench/bench_stream.py [--ticks 20000] [--repeat 5] [--wall 3] [--overrun 2]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import tianrt as tr
from tianrt.stream import ArraySource, AudioSource, Scheduler, SimulationSource


def build_graph() -> tr.Graph:
    g = tr.Graph(dt=1e-3, name="trivial")
    for name, shape in (("camera", (1, 12, 16)), ("imu", (6,)), ("audio", (160,))):
        g.output(f"{name}_out", g.add(tr.ann.ReLU(), g.input(name, shape=shape)))
    return g


def sources(ticks: int):
    rng = np.random.default_rng(0)
    frames = rng.random((int(ticks * 1e-3 * 30) + 2, 1, 12, 16), dtype=np.float32)
    audio = rng.random(int(ticks * 16) + 160, dtype=np.float32)
    imu = np.ones(6, np.float32)
    return [
        (ArraySource(frames, rate_hz=30, policy="latest", name="camera"), "camera"),
        (SimulationSource(lambda t: imu * t, rate_hz=200, name="imu"), "imu"),
        (AudioSource(audio, sample_rate=16000, name="audio"), "audio"),
    ]


def run_scheduler(ticks: int, record: bool = False):
    rt = tr.Runtime(build_graph())
    sched = Scheduler(rt)
    for src, to in sources(ticks):
        sched.add_source(src, to=to)
    steps = []
    if record:  # capture what the scheduler hands to the runtime, for the direct loop
        inner = rt.step

        def step(inputs):
            steps.append(dict(inputs))
            return inner(inputs)

        sched.rts[0].step = step
    for o in ("camera_out", "imu_out", "audio_out"):
        sched.add_sink(o, deadline=5e-3)
    t0 = time.perf_counter()
    rep = sched.run(ticks=ticks)
    return time.perf_counter() - t0, rep, steps


def run_direct(steps):
    rt = tr.Runtime(build_graph())
    step = rt.step
    t0 = time.perf_counter()
    for inputs in steps:
        step(inputs)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wall", type=float, default=3.0, help="seconds of wall-clock run (0: skip)")
    ap.add_argument("--overrun", type=float, default=2.0,
                    help="seconds of the too-slow model per overrun policy (0: skip)")
    args = ap.parse_args(argv)

    _, rep, steps = run_scheduler(args.ticks, record=True)
    n_samples = sum(s["received"] for s in rep["sources"].values())
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"{args.ticks} ticks of 1 ms, {n_samples} samples from 3 sources, "
          f"{sum(o['values'] for o in rep['outputs'].values())} output values")
    sched_t, direct_t, self_oh = [], [], []
    for _ in range(args.repeat):  # side by side, interleaved
        ts, rep, _ = run_scheduler(args.ticks)
        td = run_direct(steps)
        sched_t.append(ts)
        direct_t.append(td)
        self_oh.append(rep["overhead_per_tick_s"])
    ts, td = float(np.median(sched_t)), float(np.median(direct_t))
    per_tick = (ts - td) / args.ticks
    print(f"scheduler run: {ts * 1e3:.1f} ms   direct rt.step loop: {td * 1e3:.1f} ms   "
          f"(median of {args.repeat})")
    print(f"scheduler overhead per tick: {per_tick * 1e6:.2f} us = {per_tick / 1e-3 * 100:.2f} % "
          f"of a 1 ms tick (target < 1 %)")
    print(f"  self-measured (wall - steps) per tick: {np.median(self_oh) * 1e6:.2f} us = "
          f"{np.median(self_oh) / 1e-3 * 100:.2f} %")
    print(f"  runtime step per tick: {td / args.ticks * 1e6:.2f} us")

    if args.wall > 0:
        rt = tr.Runtime(build_graph())
        sched = Scheduler(rt, clock="wall")
        for src, to in sources(int(args.wall * 1000)):
            sched.add_source(src, to=to)
        rep = sched.run(seconds=args.wall)
        late = rep["lateness_s"]
        print(f"wall clock, {args.wall:g} s: lateness p50 {late['p50'] * 1e3:.3f} ms, "
              f"p99 {late['p99'] * 1e3:.3f} ms, max {late['max'] * 1e3:.3f} ms; "
              f"{rep['late_ticks']} of {rep['ticks']} ticks more than 1 ms late")

    status_cost(args.repeat)
    record_cost(min(args.ticks, 5000), args.repeat)
    if args.overrun > 0:
        overruns(args.overrun)
    return 0


def status_cost(repeat: int) -> None:
    """Building the report that on_status gets, once every window is full (65,536 values)."""
    g = build_graph()
    sched = Scheduler(tr.Runtime(g), clock="wall")
    rng = np.random.default_rng(0)
    for stat in [o.lat for o in sched.outs.values()] + [sched.step_stat, sched.late]:
        for x in rng.random(1 << 16):
            stat.add(float(x))
    sched.tick = 1 << 16
    full, live = [], []
    for _ in range(max(repeat, 5)):  # side by side
        a = time.perf_counter()
        sched.report().status_line()
        b = time.perf_counter()
        sched.report(live=True).status_line()
        c = time.perf_counter()
        full.append(b - a)
        live.append(c - b)
    f, lv = float(np.median(full)), float(np.median(live))
    print(f"status line with full windows: full report {f * 1e3:.2f} ms, live report {lv * 1e3:.3f} ms "
          f"(x{f / lv:.0f} cheaper; median of {max(repeat, 5)})")


def record_cost(ticks: int, repeat: int) -> None:
    """The scheduler run above with and without recording to MCAP (simulated clock)."""
    import tempfile

    try:
        import mcap  # noqa: F401
    except ImportError:
        print("recording: mcap not installed (pip install 'tianrt[record]'), skipped")
        return
    plain, rec = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeat):
            for out, record in ((plain, None), (rec, f"{d}/r{i}.mcap")):
                sched = Scheduler(tr.Runtime(build_graph()))
                for src, to in sources(ticks):
                    sched.add_source(src, to=to)
                if record:
                    sched.record(record)
                t0 = time.perf_counter()
                sched.run(ticks=ticks)
                out.append(time.perf_counter() - t0)
        import os
        size = os.path.getsize(f"{d}/r0.mcap")
    p, r = float(np.median(plain)), float(np.median(rec))
    print(f"recording to MCAP: {p / ticks * 1e6:.1f} us/tick plain, {r / ticks * 1e6:.1f} us/tick recorded "
          f"(x{r / p:.1f}); {size / 1e6:.2f} MB for {ticks} ticks ({ticks / 1000:g} s)")


def overruns(seconds: float) -> None:
    """A model slower than real time on the wall clock: a 5,000-wide dense layer on a 1 kHz IMU."""
    g = tr.Graph(dt=1e-3, name="wide")
    x = g.input("imu", shape=(5000,))
    g.output("y", g.add(tr.ann.Dense(5000, 5000, seed=0), x))
    imu = np.random.default_rng(0).random(5000, dtype=np.float32)
    for policy, kw in (("catch-up", {}), ("skip", {"policy": "latest"}), ("drop-stale", {})):
        rt = tr.Runtime(g)
        sched = Scheduler(rt, clock="wall", overrun=policy)
        sched.add_source(SimulationSource(lambda t: imu, rate_hz=1000, **kw), to="imu")
        t0 = time.perf_counter()
        rep = sched.run(seconds=seconds)
        wall = time.perf_counter() - t0
        lat = rep["outputs"]["y"]["latency_s"]
        print(f"overrun={policy:10s} ({kw.get('policy', 'never-drop')} IMU): {seconds:g} s of stream in "
              f"{wall:.2f} s wall, lateness max {rep['lateness_s']['max'] * 1e3:.0f} ms, "
              f"{rep['skipped_ticks']} ticks skipped, {rep['outputs']['y']['values']} steps, "
              f"latency p50 {lat['p50'] * 1e3:.1f} ms max {lat['max'] * 1e3:.0f} ms, "
              f"step mean {rep['step_s']['mean'] * 1e3:.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
