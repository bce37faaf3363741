"""Measure, on this machine, the input activity at which a dense synaptic pass beats the
event-driven one, and keep it for the numba backend (``tianrt warmup --calibrate``).

The measurement: one 1024 -> 1024 layer, batch 1 and batch 32, input activity from 1 % to
95 %; the crossover is the first activity at which the event loop is no longer faster than
the best dense pass (the numba dense loop or BLAS), interpolated with the activity before.
The result is a small JSON file; ``NumbaBackend`` reads it at construction when present
(``crossover=`` still overrides it), and uses the defaults measured on the development
machine otherwise.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ACTIVITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def calibration_path() -> Path:
    """$TIANRT_CALIBRATION, else ~/.cache/tianrt/numba-crossover.json."""
    env = os.environ.get("TIANRT_CALIBRATION")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tianrt" / "numba-crossover.json"


def load() -> dict | None:
    """The stored calibration, or None when absent or unreadable (then defaults apply)."""
    try:
        data = json.loads(calibration_path().read_text())
        b1, bn = float(data["batch1"]), float(data["batch_n"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (0.0 <= b1 <= 1.0 and 0.0 <= bn <= 1.0):
        return None
    return {"batch1": b1, "batch_n": bn}


def _best(fn, repeat=5):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def measure(n: int = 1024, batch: int = 1, reps: int = 20, seed: int = 0) -> tuple[float, list]:
    """(crossover, rows) for one batch size; rows = (activity, event s, dense s)."""
    from ...kernels import synapse

    rng = np.random.default_rng(seed)
    wt = (rng.standard_normal((n, n)) * 0.05).astype(np.float32)
    b = np.zeros(n, np.float32)
    out = np.zeros((batch, n), np.float32)
    rows, prev = [], 0.0
    for a in ACTIVITIES:
        x = (rng.random((batch, n)) < a).astype(np.float32)
        synapse.accumulate(x, wt, b, out, synapse.EVENT, 0.0)
        synapse.accumulate(x, wt, b, out, synapse.DENSE, 0.0)
        ev = _best(lambda: [synapse.accumulate(x, wt, b, out, synapse.EVENT, 0.0) for _ in range(reps)])
        loop = _best(lambda: [synapse.accumulate(x, wt, b, out, synapse.DENSE, 0.0) for _ in range(reps)])

        def blas():
            for _ in range(reps):
                np.matmul(x, wt, out=out)
                np.add(out, b, out=out)
        dense = min(loop, _best(blas))
        rows.append((a, ev / reps, dense / reps))
        if ev >= dense:
            return (prev + a) / 2, rows
        prev = a
    return 1.0, rows


def calibrate(verbose: bool = True) -> dict:
    """Measure both batch sizes, store the result, return it."""
    res = {}
    for key, batch, reps in (("batch1", 1, 40), ("batch_n", 32, 4)):
        cross, rows = measure(batch=batch, reps=reps)
        res[key] = cross
        if verbose:
            pts = ", ".join(f"{a * 100:g}%: {e * 1e6:.0f}/{d * 1e6:.0f}" for a, e, d in rows)
            print(f"  batch {batch}: crossover {cross * 100:.0f} % (event/dense us: {pts})")
    data = dict(res, machine=platform.machine(), processor=platform.processor() or "",
                measured=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    path = calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    if verbose:
        print(f"  stored in {path}")
    return res
