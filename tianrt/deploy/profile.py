"""A measured profile of a model file on this machine, scaled to Raspberry Pi-class boards.

Each backend is measured in a fresh process (``python -m tianrt.deploy.profile``), so that
the import, the build (load the file + ``Runtime``), the first tick (numba: the kernels
from the on-disk cache, or a JIT compile when it is cold) and the peak RSS are what a
service that starts on a board pays. Then ``ticks`` ticks are stepped with every input
fed at its declared rate (``graph.input(..., rate_hz=...)``; an input without a rate every
tick), random values of the input's shape and domain, and the garbage collector frozen and
disabled around the loop (as ``tianrt serve`` runs). Per tick: p50, p99, max; the *load*
is the process's CPU time per second of stream time (1.0 = one core's worth: the stream falls
behind; CPU time, so that time the process spent preempted by other jobs is not counted).

Scaling (docs/deploy.md): per core a Pi 4 is 9-12x and a Pi 5 3-4x slower than the
development machine; the verdict uses the slow end. Only CPU time is scaled: a board's
camera, serial port and other jobs come on top. ``--factor F`` scales by a measured factor.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HEADROOM = 0.5  # "with margin": the scaled load leaves at least half of a core free


def _feeds(graph, rng):
    """name -> (period in ticks, value maker) for every input of the graph."""
    import numpy as np

    out = {}
    for name, spec in graph.inputs.items():
        period = 1
        if spec.rate_hz:
            period = max(1, int(round(1.0 / (spec.rate_hz * graph.dt))))
        if spec.domain == "spike":
            make = (lambda s: lambda: (rng.random(s) < 0.2).astype(np.float32))(spec.shape)
        else:
            make = (lambda s: lambda: rng.random(s, dtype=np.float32))(spec.shape)
        out[name] = (period, make)
    return out


def _pct(values, q):
    import numpy as np
    return float(np.percentile(np.asarray(values), q)) if len(values) else 0.0


def _rss_mb() -> float | None:
    """Peak resident set of this process, MB. /proc's VmHWM first: getrusage's ru_maxrss
    survives exec on Linux, so a worker started by a big parent would report the parent's."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(kb / 1024 / (1024 if sys.platform == "darwin" else 1), 1)
    except (ImportError, OSError):
        return None


def measure(path: str, backend: str, ticks: int, t_start: float, t_import: float) -> dict:
    """Run in the worker process (after ``import tianrt``): build, first tick, ``ticks`` ticks."""
    import gc

    import numpy as np

    from ..modelfile import load
    from ..runtime import Runtime

    t0 = time.perf_counter()
    g = load(path)
    rt = Runtime(g, backend=backend)
    t_build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    feeds = _feeds(g, rng)
    t0 = time.perf_counter()
    rt.step({k: make() for k, (_, make) in feeds.items()})
    t_first = time.perf_counter() - t0
    start_total = time.perf_counter() - t_start
    # pre-draw the inputs: drawing random numbers is not the graph's cost
    plan = []
    for n in range(1, ticks + 1):
        plan.append({k: make() for k, (period, make) in feeds.items() if n % period == 0} or None)
    step, perf = rt.step, time.perf_counter
    times = np.empty(ticks)
    gc.collect()
    gc.freeze()
    gc.disable()
    # the first ticks after the first may still bind or compile a path (numba: the per-tick fast
    # path); they are reported apart and left out of the steady-state figures
    warm = min(10, ticks // 10)
    cpu0 = time.process_time()
    try:
        for n, inputs in enumerate(plan):
            if n == warm:
                cpu0 = time.process_time()
            a = perf()
            step(inputs)
            times[n] = perf() - a
    finally:
        cpu = time.process_time() - cpu0
        gc.enable()
        gc.unfreeze()
    warm_max = float(times[:warm].max()) if warm else 0.0
    times, ticks = times[warm:], ticks - warm
    per_input = {}
    for k, (period, _) in feeds.items():
        idx = [n for n in range(ticks) if (n + warm + 1) % period == 0]
        per_input[k] = {"rate_hz": g.inputs[k].rate_hz, "period_ticks": period,
                        "tick_p99_ms": round(_pct(times[idx], 99) * 1e3, 4) if idx else None}
    return {"backend": rt._impl.name, "import_s": round(t_import, 4), "build_s": round(t_build, 4),
            "first_tick_s": round(t_first, 4), "start_s": round(start_total, 4),
            "warmup_ticks": warm, "warmup_max_ms": round(warm_max * 1e3, 4), "ticks": ticks,
            "tick_p50_ms": round(_pct(times, 50) * 1e3, 4), "tick_p99_ms": round(_pct(times, 99) * 1e3, 4),
            "tick_max_ms": round(float(times.max()) * 1e3, 4) if ticks else 0.0,
            # load: CPU time per stream second (what scales with a slower core; time the process
            # was preempted by other jobs is not its cost); load_wall: the wall-clock sum of ticks
            "load": round(cpu / (ticks * g.dt), 5) if ticks else 0.0,
            "load_wall": round(float(times.sum()) / (ticks * g.dt), 5) if ticks else 0.0,
            "rss_mb": _rss_mb(), "inputs": per_input}


def model_facts(path: str) -> dict:
    from ..modelfile import load

    g = load(path)
    return {"path": path, "name": g.name, "dt_s": g.dt, "tick_hz": round(1.0 / g.dt, 6),
            "nodes": len(g.entries), "params": int(sum(e.node.n_params() for e in g.entries.values())),
            "inputs": {k: {"shape": list(v.shape), "domain": v.domain, "rate_hz": v.rate_hz}
                       for k, v in g.inputs.items()}}


def run_worker(path: str, backend: str, ticks: int, env: dict | None = None, timeout: float = 600) -> dict:
    """Measure one backend in a fresh interpreter; returns its JSON (or {"error": ...})."""
    r = subprocess.run([sys.executable, "-m", "tianrt.deploy.profile", path, backend, str(ticks)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()
        return {"backend": backend, "error": tail[-1] if tail else f"exit {r.returncode}"}
    return json.loads(lines[-1])


def verdict(m: dict, dt: float, factor: float) -> dict:
    """Scale one backend's measurement by ``factor`` (slower per core) and judge it."""
    load = m["load"] * factor
    p99 = m["tick_p99_ms"] * factor
    if load >= 1.0:
        ok = "no"
    elif load <= HEADROOM and p99 <= dt * 1e3:
        ok = "yes"
    else:
        ok = "tight"
    inputs = {}
    for k, v in m["inputs"].items():
        if v["tick_p99_ms"] is not None:
            budget = v["period_ticks"] * dt * 1e3
            inputs[k] = {"tick_p99_ms": round(v["tick_p99_ms"] * factor, 4), "period_ms": round(budget, 4),
                         "met": v["tick_p99_ms"] * factor <= budget}
    return {"factor": factor, "load": round(load, 4), "margin": round(1.0 - load, 4),
            "tick_p99_ms": round(p99, 4), "start_s": round(m["start_s"] * factor, 3),
            "keeps_up": ok, "inputs": inputs}


def profile(path: str, backends=("reference", "numba"), ticks: int | None = None, seconds: float = 2.0,
            factors: dict | None = None) -> dict:
    """The whole profile: the model's facts, each backend measured, and the verdicts for each
    board of ``factors`` (name -> (label, low, high))."""
    from .machine import BOARDS

    facts = model_facts(path)
    if ticks is None:
        ticks = int(min(20000, max(200, round(seconds / facts["dt_s"]))))
    out = {"model": facts, "ticks": ticks, "headroom": HEADROOM, "backends": {}, "targets": {}}
    factors = BOARDS if factors is None else factors
    for b in backends:
        m = run_worker(path, b, ticks)
        out["backends"][b] = m
        if "error" in m:
            continue
        out["targets"][b] = {"this machine": verdict(m, facts["dt_s"], 1.0)}
        for key, (label, low, high) in factors.items():
            v = verdict(m, facts["dt_s"], high)
            v.update(board=label, factor_range=[low, high],
                     load_range=[round(m["load"] * low, 4), round(m["load"] * high, 4)])
            out["targets"][b][key] = v
    return out


def _worker_main(argv) -> int:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one thread, as a service runs (set before numpy loads)
    t_start = time.perf_counter()
    import tianrt  # noqa: F401 - timed: what a service pays
    import tianrt.modelfile  # noqa: F401
    import tianrt.runtime  # noqa: F401
    t_import = time.perf_counter() - t_start
    path, backend, ticks = argv[0], argv[1], int(argv[2])
    print(json.dumps(measure(path, backend, ticks, t_start, t_import)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
