"""Seeded rides in parallel: one list of independent tasks run serially, on local processes
(``--workers N``) or on an existing ``dask.distributed`` scheduler (``--dask tcp://HOST:PORT``),
with the results in task order, identical to a serial run seed for seed.

A task is a top-level function and its arguments (plain numbers, strings, tuples: picklable
and importable on a fresh interpreter), so that processes started by *spawn* and dask workers
on other machines can run it; every ride is seeded by its scenario alone, so where it runs
does not change its result. Only the wall-clock fields of a ride's summary differ between
runs (``deterministic`` drops them for comparisons).

``dask.distributed`` is an optional extra (``pip install tianrt[sweeps]``), imported only
when ``--dask`` is given. The workers must have tianrt (the same version) installed.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

# wall-clock fields of a ride summary (run.RunResult.summary) and the scheduler's report
TIMING_KEYS = frozenset({"latency_us", "wall_s", "real_time_factor", "step_s", "overhead_per_tick_s",
                         "latency_ms_p99", "latency_ms_p50"})


def add_arguments(ap) -> None:
    """The ``--workers`` and ``--dask`` options of an evaluation command."""
    ap.add_argument("--workers", type=int, default=None,
                    help="local worker processes for the rides (default: the CPU count; 1 = serially in "
                         "this process)")
    ap.add_argument("--dask", metavar="tcp://HOST:PORT",
                    help="run the rides on this dask.distributed scheduler instead (needs the optional "
                         "extra: pip install 'tianrt[sweeps]')")


def options(args) -> dict:
    """``workers``/``dask`` keyword arguments from parsed ``add_arguments`` options."""
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    return {"workers": workers, "dask": args.dask}


def _client(dask):
    """A dask.distributed Client for an address (or the Client given)."""
    if not isinstance(dask, str):
        return dask, False
    try:
        from dask.distributed import Client
    except ImportError:
        raise RuntimeError("--dask needs dask.distributed, an optional extra: pip install 'tianrt[sweeps]' "
                           "(or pip install 'distributed')") from None
    try:
        return Client(dask, set_as_default=False), True
    except OSError as exc:
        raise RuntimeError(f"--dask {dask}: cannot reach a dask scheduler there ({exc})") from None


def importable(fn):
    """``fn`` as its module's attribute on another interpreter: a function of a module run as
    ``python -m pkg.mod`` lives in ``__main__``, which a worker cannot import (and dask would
    pickle it by value, with the module's globals): it is taken from ``pkg.mod`` instead."""
    if getattr(fn, "__module__", None) != "__main__":
        return fn
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None or not spec.name:
        return fn
    return getattr(importlib.import_module(spec.name), fn.__qualname__)


def run_tasks(fn, tasks, workers: int = 1, dask=None) -> list:
    """``[fn(*t) for t in tasks]``, in that order: serially (``workers`` 1), on ``workers``
    spawned local processes, or on a dask.distributed scheduler (``dask``: an address such as
    ``tcp://10.0.0.5:8786``, or a ``distributed.Client``). ``fn`` must be a module-level function."""
    tasks = [tuple(t) for t in tasks]
    if dask is not None or (workers > 1 and len(tasks) > 1):
        fn = importable(fn)
    if dask is not None:
        client, own = _client(dask)
        try:
            futures = [client.submit(fn, *t, pure=False) for t in tasks]
            return client.gather(futures)
        finally:
            if own:
                client.close()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(tasks) <= 1:
        return [fn(*t) for t in tasks]
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding numba or threads
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        futures = [pool.submit(fn, *t) for t in tasks]
        return [f.result() for f in futures]


def deterministic(value):
    """A ride summary without its wall-clock fields (``TIMING_KEYS``, at any depth): what a
    serial and a parallel run must agree on exactly."""
    if isinstance(value, dict):
        return {k: deterministic(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [deterministic(v) for v in value]
    return value
