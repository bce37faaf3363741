"""The balance networks across their speed envelope: rides at a fixed speed, path error against
the teacher's, and the steer torque's chatter.

    python -m tianrt.demos.bicycle.speed_eval --speeds 3,5,7,8 --n 20 --duration 30

rides seeded S-curves with gusts (the ``s_curve`` suite, seeds 0..n-1) at each constant
speed with the LQR teacher, the MLP and its SNN conversion (numba backend), and prints per
speed and controller: falls, the RMS path error against the teacher's (mean / max of the
per-seed ratio), and the chatter (RMS step-to-step change of the steer torque, N m).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import policy, world
from .envelope import chatter, fixed_speed
from .run import run, teacher_for


def evaluate(speeds=(3.0, 5.0, 7.0, 8.0), n: int = 20, duration: float = 30.0, T: int = 16,
             model=None, backend: str = "numba", log=print) -> dict:
    ann = policy.load(model)
    snn = policy.to_snn(ann, policy.calibration_data(), T=T)
    out = {}
    for v in speeds:
        rows = {"lqr": [], "mlp": [], "snn": []}
        t0 = time.time()
        for seed in range(n):
            sc = world.parse_scenario(fixed_speed(seed, v, duration))
            for name, ctrl in (("lqr", teacher_for(sc)), ("mlp", policy.NetworkPolicy(ann, backend)),
                               ("snn", policy.NetworkPolicy(snn, backend))):
                r = run(sc, ctrl, name, keep_traces=True)
                rows[name].append({"fell": bool(r.fell), "rms_path_error": r.rms_path_error,
                                   "chatter": chatter(r.traces["torque"])})
        teacher = np.array([r["rms_path_error"] for r in rows["lqr"]])
        summary = {}
        for name, rs in rows.items():
            ratio = np.array([r["rms_path_error"] for r in rs]) / teacher
            summary[name] = {"falls": int(sum(r["fell"] for r in rs)), "ratio_mean": float(ratio.mean()),
                             "ratio_max": float(ratio.max()),
                             "rms_path_error_mean": float(np.mean([r["rms_path_error"] for r in rs])),
                             "chatter_Nm": float(np.mean([r["chatter"] for r in rs]))}
        out[f"{v:g}"] = summary
        log(f"{v:g} m/s: {n} seeds in {time.time() - t0:.0f} s: " + json.dumps(summary))
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
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--T", type=int, default=16, help="SNN ticks per control step")
    ap.add_argument("--model", help="balance model file (default: the shipped one)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = evaluate([float(s) for s in args.speeds.split(",")], args.n, args.duration, T=args.T, model=args.model)
    print(markdown(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
