"""The balance networks across their speed envelope: rides at a fixed speed, path error against
the teacher's, and the steer torque's chatter.

    python -m tianrt.demos.bicycle.speed_eval --speeds 3,5,7,8 --n 20 --duration 30

rides seeded S-curves with gusts (the ``s_curve`` suite, seeds 0..n-1, or n seeds from
``--first-seed``) at each constant speed with the LQR teacher, the MLP and its SNN conversion
(numba backend), and prints per speed and controller: falls, the RMS path error against the
teacher's (mean / max of the per-seed ratio), and the chatter (RMS step-to-step change of the
steer torque, N m).
The scenarios run in parallel (``--workers N``, default one process per CPU, or ``--dask
tcp://HOST:PORT``) with results identical to ``--workers 1``.
"""
from __future__ import annotations

import argparse
import functools
import json
import threading
import time
from pathlib import Path

import numpy as np

from . import policy, sweep, world
from .envelope import chatter, fixed_speed
from .run import run, teacher_for

_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _networks(model, T: int):
    """The balance MLP and its SNN conversion (built once per process)."""
    ann = policy.load(model)
    return ann, policy.to_snn(ann, policy.calibration_data(), T=T)


def ride(speed: float, seed: int, duration: float = 30.0, T: int = 16, model=None,
         backend: str = "numba") -> dict:
    """The ``fixed_speed`` scenario of ``seed`` at ``speed`` ridden by the teacher, the MLP and
    the SNN: {controller: {fell, rms_path_error, chatter}}. A top-level function (worker processes)."""
    with _LOCK:
        ann, snn = _networks(model, int(T))
    sc = world.parse_scenario(fixed_speed(seed, speed, duration))
    out = {}
    for name, ctrl in (("lqr", teacher_for(sc)), ("mlp", policy.NetworkPolicy(ann, backend)),
                       ("snn", policy.NetworkPolicy(snn, backend))):
        r = run(sc, ctrl, name, keep_traces=True)
        out[name] = {"fell": bool(r.fell), "rms_path_error": r.rms_path_error, "chatter": chatter(r.traces["torque"])}
    return out


def evaluate(speeds=(3.0, 5.0, 7.0, 8.0), n: int = 20, duration: float = 30.0, T: int = 16,
             model=None, backend: str = "numba", log=print, workers: int = 1, dask=None, first_seed: int = 0) -> dict:
    """Per speed and controller: falls, path error ratio to the teacher's, chatter, over the seeds
    ``first_seed`` .. ``first_seed + n - 1``. The rides run serially (``workers`` 1), on local
    processes or on a dask scheduler (``sweep.run_tasks``)."""
    model = None if model is None else str(model)
    speeds = [float(v) for v in speeds]
    t0 = time.time()
    seeds = range(first_seed, first_seed + n)
    rides = sweep.run_tasks(ride, [(v, seed, float(duration), int(T), model, backend)
                                   for v in speeds for seed in seeds], workers=workers, dask=dask)
    out = {}
    for i, v in enumerate(speeds):
        rows = {name: [r[name] for r in rides[i * n:(i + 1) * n]] for name in ("lqr", "mlp", "snn")}
        teacher = np.array([r["rms_path_error"] for r in rows["lqr"]])
        summary = {}
        for name, rs in rows.items():
            ratio = np.array([r["rms_path_error"] for r in rs]) / teacher
            summary[name] = {"falls": int(sum(r["fell"] for r in rs)), "ratio_mean": float(ratio.mean()),
                             "ratio_max": float(ratio.max()),
                             "rms_path_error_mean": float(np.mean([r["rms_path_error"] for r in rs])),
                             "chatter_Nm": float(np.mean([r["chatter"] for r in rs]))}
        out[f"{v:g}"] = summary
        log(f"{v:g} m/s: seeds {first_seed}-{first_seed + n - 1}: " + json.dumps(summary))
    log(f"{len(rides)} scenarios in {time.time() - t0:.0f} s")
    return out


def markdown(res: dict) -> str:
    lines = ["| speed [m/s] | controller | falls | path error ratio to teacher mean / max | chatter [N m/step] |",
             "|---|---|---|---|---|"]
    for v, rows in res.items():
        for name, r in rows.items():
            lines.append(f"| {v} | {name} | {r['falls']} | {r['ratio_mean']:.2f} / {r['ratio_max']:.2f} | "
                         f"{r['chatter_Nm']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.bicycle.speed_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speeds", default="3,5,7,8")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + n - 1")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--T", type=int, default=16, help="SNN ticks per control step")
    ap.add_argument("--model", help="balance model file (default: the shipped one)")
    ap.add_argument("--json")
    sweep.add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        par = sweep.options(args)
    except ValueError as exc:
        ap.error(str(exc))
    res = evaluate([float(s) for s in args.speeds.split(",")], args.n, args.duration, T=args.T, model=args.model,
                   first_seed=args.first_seed, **par)
    print(markdown(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
