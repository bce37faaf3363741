"""Cached start of the numba backend in fresh processes (issue 14): import tianrt, build a
graph, the first numba tick, with the kernels in a filled cache -- W1 (700-256-256-20 LIF,
bench_kernels.w1_graph) and the bicycle's balance model -- with numba's own cache load
(``TIANRT_NUMBA_QUICKLOAD=0``) and tianrt's (default; tianrt/backends/numba/quickload.py)
interleaved in one run; and, with ``--cold``, ``tianrt warmup`` from an empty cache.

    .venv/bin/python bench/bench_start.py [--repeat 7] [--cold]

Wall and CPU seconds of each child (best and median). Python's bytecode cache should be
filled (as after an install: ``python -m compileall tianrt kernels``); the script says
whether PYTHONDONTWRITEBYTECODE is set.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r'''
import time
t, c = time.perf_counter(), time.process_time()
import numpy as np, tianrt as tr
t_imp = time.perf_counter() - t
if {which!r} == "w1":
    import sys; sys.path.insert(0, {bench!r})
    from bench_kernels import w1_graph
    g, feed = w1_graph(), {{"x": np.zeros(700, np.float32)}}
else:
    g, feed = tr.load({model!r}), {{"obs": np.zeros(6, np.float32)}}
rt = tr.Runtime(g, backend="numba")
t1 = time.perf_counter()
rt.step(feed)
print(time.perf_counter() - t, time.process_time() - c, t_imp, time.perf_counter() - t1)
'''


def child(which: str, quick: bool) -> list[float]:
    code = CHILD.format(which=which, bench=str(ROOT / "bench"),
                        model=str(ROOT / "demos" / "bicycle" / "data" / "balance_mlp.tnr"))
    env = dict(os.environ, TIANRT_NUMBA_QUICKLOAD="1" if quick else "0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()[-4:]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cold", action="store_true", help="also time `tianrt warmup` from an empty cache")
    a = ap.parse_args(argv)
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    for which in ("w1", "balance"):
        child(which, True)  # fill the kernel cache for this graph
        runs = {True: [], False: []}
        for _ in range(a.repeat):
            for quick in (False, True):
                runs[quick].append(child(which, quick))
        for quick in (False, True):
            r = runs[quick]
            wall, cpu = [x[0] for x in r], [x[1] for x in r]
            print(f"{which:8s} {'tianrt quickload' if quick else 'numba cache load':17s} "
                  f"wall best {min(wall):.3f} s median {statistics.median(wall):.3f} s | "
                  f"CPU best {min(cpu):.3f} s median {statistics.median(cpu):.3f} s | "
                  f"import {min(x[2] for x in r):.3f} s, first tick {min(x[3] for x in r):.3f} s (best)")
    print(f"load average after: {os.getloadavg()[0]:.1f}; target (issue 14): cached W1 start <= 0.5 s")
    if a.cold:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, TIANRT_TICK_CACHE=os.path.join(cache, "ticks"))
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tianrt.cli", "warmup", "--quiet"], env=env, check=True)
            wall = time.perf_counter() - t
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            n = sum(1 for _ in Path(cache).rglob("*.nbc"))
        print(f"cold JIT: `tianrt warmup` from an empty cache {wall:.1f} s wall, {cpu:.1f} s CPU, "
              f"{n} cached signatures; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
