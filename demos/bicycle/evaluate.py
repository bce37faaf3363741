"""The acceptance evaluation: seeded gust scenarios (S-curves, target speed changing within
3-7 m/s, random lean-torque gusts) ridden by the LQR teacher and by the balance network in
tianrt through ``tr.stream``'s scheduler: the MLP (ANN) and its SNN conversion, on the
reference and numba backends. Prints a markdown table (for docs/bicycle.md) and writes JSON.

    python -m tianrt.demos.bicycle.evaluate --n 20 --duration 60 --json out/bicycle-eval.json
    python -m tianrt.demos.bicycle.evaluate --workers 2             # rides on 2 local processes
    python -m tianrt.demos.bicycle.evaluate --dask tcp://HOST:8786  # rides on a dask scheduler

The rides run in parallel (``sweep.run_tasks``: by default one local process per CPU) with
results identical to a serial run (``--workers 1``), seed for seed.

Pass criteria per network controller: no fall in any scenario, and RMS path error at most
1.5x the teacher's (checked per scenario).
"""
from __future__ import annotations

import argparse
import functools
import json
import threading
import time
from pathlib import Path

import numpy as np

from . import policy, suite, sweep, world
from .run import run, run_stream, teacher_for

CONTROLLERS = ("lqr", "mlp/reference", "mlp/numba", "snn/reference", "snn/numba")


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _network(kind: str, model, T: int, tau):
    """The balance MLP or its SNN conversion (built once per process: a worker's rides share it)."""
    ann = policy.load(model)
    return ann if kind == "mlp" else policy.to_snn(ann, policy.calibration_data(), T=T, tau=tau)


def ride(controller: str, seed: int, duration: float, T: int = 16, tau: float | None = 0.125,
         model=None) -> dict:
    """One ride of the evaluation: the ``gust_suite`` scenario of ``seed`` with ``controller``
    (one of CONTROLLERS); its summary. A top-level function, so worker processes can run it."""
    sc = world.parse_scenario(suite.make("gust_suite", seed, duration))
    if controller == "lqr":
        return run(sc, teacher_for(sc), "lqr").summary()
    kind, backend = controller.split("/")
    with _LOCK:   # threads of one dask worker share the cache
        graph = _network(kind, None if model is None else str(model), int(T), tau)
    return run_stream(sc, graph, backend, controller).summary()


def evaluate(n: int = 20, duration: float = 60.0, controllers=CONTROLLERS, T: int = 16, model=None,
             first_seed: int = 0, tau: float | None = 0.125, log=print, workers: int = 1, dask=None) -> dict:
    """The rides of ``controllers`` on seeds first_seed .. first_seed + n - 1, serially
    (``workers`` 1), on local processes or on a dask scheduler (``sweep.run_tasks``)."""
    bad = [c for c in controllers if c not in CONTROLLERS]
    if bad:
        raise ValueError(f"unknown controller(s) {', '.join(bad)}; choose from {', '.join(CONTROLLERS)}")
    seeds = [first_seed + i for i in range(n)]
    model = None if model is None else str(model)
    tasks = [(c, s, float(duration), int(T), tau, model) for c in controllers for s in seeds]
    t0 = time.time()
    rows = sweep.run_tasks(ride, tasks, workers=workers, dask=dask)
    results: dict[str, list] = {c: rows[i * n:(i + 1) * n] for i, c in enumerate(controllers)}
    for c, rs in results.items():
        log(f"{c}: {n} rides, falls {sum(r['fell'] for r in rs)}")
    where = f"dask {dask}" if dask is not None else f"{workers} worker(s)"
    log(f"{len(tasks)} rides in {time.time() - t0:.0f} s on {where}")
    return {"n": n, "duration_s": duration, "T": T, "tau_s": tau, "seeds": seeds, "results": results,
            "table": table(results)}


def table(results: dict) -> dict:
    teacher = np.array([r["rms_path_error"] for r in results["lqr"]]) if "lqr" in results else None
    rows = {}
    for c, rs in results.items():
        rms = np.array([r["rms_path_error"] for r in rs])
        row = {"falls": int(sum(r["fell"] for r in rs)), "rides": len(rs),
               "rms_path_error_mean": float(rms.mean()), "rms_path_error_max": float(rms.max()),
               "max_lean_deg": float(max(r["max_lean_deg"] for r in rs)),
               "rms_lean_error_deg_mean": float(np.mean([r["rms_lean_error_deg"] for r in rs])),
               "latency_p50_us": float(np.median([r["latency_us"]["p50"] for r in rs])),
               "latency_p99_us": float(np.max([r["latency_us"]["p99"] for r in rs])),
               "real_time_factor": float(np.median([r["real_time_factor"] for r in rs])),
               "delay_steps": int(rs[0]["delay_steps"])}
        if teacher is not None:
            ratio = rms / teacher
            row.update(ratio_mean=float(ratio.mean()), ratio_max=float(ratio.max()),
                       passed=bool(row["falls"] == 0 and ratio.max() <= 1.5))
        rows[c] = row
    return rows


def markdown(tab: dict) -> str:
    lines = ["| controller | falls | RMS path error mean / max [m] | ratio to teacher mean / max | "
             "max lean [deg] | RMS lean error [deg] | latency p50 / p99 [us] | delay [steps] | real-time factor | pass |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c, r in tab.items():
        ratio = f"{r['ratio_mean']:.3f} / {r['ratio_max']:.3f}" if "ratio_mean" in r else "-"
        lines.append(f"| {c} | {r['falls']}/{r['rides']} | {r['rms_path_error_mean']:.3f} / "
                     f"{r['rms_path_error_max']:.3f} | {ratio} | {r['max_lean_deg']:.1f} | "
                     f"{r['rms_lean_error_deg_mean']:.2f} | "
                     f"{r['latency_p50_us']:.0f} / {r['latency_p99_us']:.0f} | {r['delay_steps']} | "
                     f"{r['real_time_factor']:.0f}x | {'yes' if r.get('passed', True) else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tianrt.demos.bicycle.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="scenarios (seeds first-seed .. first-seed+n-1)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--controllers", default=",".join(CONTROLLERS), help=f"comma list of {', '.join(CONTROLLERS)}")
    ap.add_argument("--T", type=int, default=16, help="SNN ticks per control step")
    ap.add_argument("--tau", default="0.125", help="SNN membrane time constant in seconds, or 'if' for "
                    "leak-free IF neurons (default 0.125)")
    ap.add_argument("--model", help="balance model file (default: the shipped one)")
    ap.add_argument("--json", help="write all results here")
    sweep.add_arguments(ap)
    args = ap.parse_args(argv)
    ctrls = [c.strip() for c in args.controllers.split(",") if c.strip()]
    bad = [c for c in ctrls if c not in CONTROLLERS]
    if bad:
        ap.error(f"unknown controller(s) {', '.join(bad)}; choose from {', '.join(CONTROLLERS)}")
    tau = None if args.tau.lower() == "if" else float(args.tau)
    try:
        par = sweep.options(args)
    except ValueError as exc:
        ap.error(str(exc))
    res = evaluate(args.n, args.duration, ctrls, args.T, args.model, args.first_seed, tau, **par)
    print(markdown(res["table"]))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    return 0 if all(r.get("passed", True) for r in res["table"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
