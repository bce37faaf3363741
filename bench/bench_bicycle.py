"""Real-time factor of the bicycle closed loop on one core: simulated seconds per wall second,
headless (no rendering) and with the 64x48 camera rendered at 30 Hz, for the LQR teacher and
the balance network in tianrt through tr.stream's scheduler (MLP and its SNN conversion, on
the reference and numba backends). Targets (issue 6): >= 50x headless, >= 10x with camera;
issue 14: the SNN through the scheduler on numba >= 200x headless. The "brain" rows take the
bicycle out: the SNN stepped on the observations of a recorded ride, through the scheduler
(a SimulationSource replaying them, a sink) and through Runtime.advance alone, as real-time
factors of that part of the loop.

    .venv/bin/python bench/bench_bicycle.py [--seconds 30] [--repeat 3]

Pins itself to one CPU and sets NUMBA_NUM_THREADS=1 before numba loads. Each row is the best
of ``--repeat`` rides of the same seeded gust scenario (after one warm-up ride that compiles).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from benchutil import pin_one_cpu

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="simulated seconds per ride")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows", default="all", help="';'-separated parts of row names to run (default: all)")
    args = ap.parse_args(argv)
    pinned = pin_one_cpu()

    import numpy as np

    from tianrt.demos.bicycle import policy, render, suite, world
    from tianrt.demos.bicycle.run import run, run_stream, teacher_for
    from tianrt.demos.bicycle.sim import Bicycle

    sc = world.parse_scenario(suite.make("gust_suite", 0, args.seconds))
    ann = policy.load()
    snn = policy.to_snn(ann, policy.calibration_data(), T=16)
    cam = render.SensorCamera(render.Scene(sc))

    def physics():
        b = Bicycle(sc.bicycle)
        b.reset(speed=5.0)
        t0 = time.perf_counter()
        for _ in range(int(args.seconds * 100)):
            b.step(0.0, 0.0, 0.01)
        return args.seconds / (time.perf_counter() - t0), args.seconds

    def closed(kind, backend=None, camera=False, **options):
        kw = {"camera_hz": 30.0, "camera": cam} if camera else {}
        def go():
            if kind == "lqr":
                r = run(sc, teacher_for(sc), "lqr", **kw)
            else:
                try:
                    r = run_stream(sc, ann if kind == "mlp" else snn, backend, options=options, **kw)
                except TypeError:  # a tree from before run_stream took options (a "before" run)
                    if options:
                        raise
                    r = run_stream(sc, ann if kind == "mlp" else snn, backend, **kw)
            return r.real_time_factor, r.duration
        return go

    obs = run(sc, teacher_for(sc), keep_traces=True).traces["obs"].astype(np.float32)

    def brain(scheduler, **options):
        import tianrt as tr

        def go():
            rt = tr.Runtime(snn, backend="numba", **options)
            ticks = int(snn.metadata["ticks_per_step"])
            if not scheduler:
                t0 = time.perf_counter()
                for x in obs:
                    rt.advance({"obs": x}, ticks)
                return len(obs) / 100.0 / (time.perf_counter() - t0), len(obs) / 100.0
            it = iter(obs)
            s = tr.stream.Scheduler(rt)
            s.add_source(tr.stream.SimulationSource(lambda t: next(it, tr.stream.END), rate_hz=100.0), to="obs")
            s.add_sink("torque", lambda v, t: None)
            t0 = time.perf_counter()
            s.run(until_end=True)
            return len(obs) / 100.0 / (time.perf_counter() - t0), len(obs) / 100.0
        return go

    rows = [("physics only (RK4 1 kHz, 100 Hz steps)", physics, None)]
    for camera in (False, True):
        tag = "camera 30 Hz" if camera else "headless"
        target = 10.0 if camera else 50.0
        rows += [(f"LQR teacher, {tag}", closed("lqr", camera=camera), target),
                 (f"MLP stream reference, {tag}", closed("mlp", "reference", camera), target),
                 (f"MLP stream numba, {tag}", closed("mlp", "numba", camera), target),
                 (f"SNN T=16 stream reference, {tag}", closed("snn", "reference", camera), target),
                 (f"SNN T=16 stream numba, {tag}", closed("snn", "numba", camera), target),
                 (f"SNN T=16 stream numba compiled, {tag}", closed("snn", "numba", camera, compiled=True),
                  200.0 if not camera else target)]
    rows += [("brain: SNN scheduler, no bicycle, numba", brain(True), None),
             ("brain: SNN scheduler, no bicycle, numba compiled", brain(True, compiled=True), None),
             ("brain: SNN Runtime.advance alone, numba", brain(False), None),
             ("brain: SNN Runtime.advance alone, numba compiled", brain(False, compiled=True), None)]
    if args.rows != "all":  # ';'-separated substrings of row names
        want = [w.strip() for w in args.rows.split(";")]
        rows = [r for r in rows if any(w in r[0] for w in want)]

    print(f"bicycle closed loop, {args.seconds:g} s gust scenario, control 100 Hz, physics 1 kHz; "
          f"{platform.machine()}, Python {platform.python_version()}, {pinned}")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'configuration':50s} {'real-time factor':>17s} {'(CPU time)':>11s} {'target':>8s}  ok")
    for name, fn, target in rows:
        try:
            fn()  # warm-up (numba compile, caches)
        except (TypeError, AttributeError) as exc:  # an older tree without advance / options
            print(f"{name:50s} {'n/a':>17s}  ({type(exc).__name__}: {exc})", flush=True)
            continue
        best = cpu_best = 0.0
        for _ in range(args.repeat):
            c = time.process_time()
            rtf, sim_s = fn()
            c = time.process_time() - c
            best, cpu_best = max(best, rtf), max(cpu_best, sim_s / c if c > 0 else 0.0)
        ok = "" if target is None else ("yes" if best >= target else "NO")
        tgt = "" if target is None else f">= {target:g}x"
        print(f"{name:50s} {best:16.1f}x {cpu_best:10.1f}x {tgt:>8s}  {ok}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}; real-time factor = simulated seconds per wall second "
          "(CPU time: per CPU second of this process, less sensitive to other jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
