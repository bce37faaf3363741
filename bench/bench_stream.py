"""Scheduler overhead per tick: three sources (a 30 Hz camera, a 200 Hz IMU simulation,
10 ms audio chunks) into a trivial graph, on the simulated clock, against the same runtime
steps called directly in a plain loop with the same inputs at the same ticks. The overhead
is reported as a fraction of a 1 ms tick (target: below 1 %). Then a short wall-clock run
reports tick lateness.

    .venv/bin/python bench/bench_stream.py [--ticks 20000] [--repeat 5] [--wall 3]
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
