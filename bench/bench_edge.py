"""Edge budgets (issue 19): x86 figures that keep a Raspberry Pi 4 (9-12x slower per core) in
real time, each measured in fresh processes as a board would start them.

    .venv/bin/python bench/bench_edge.py [--repeat 5] [--json FILE] [--skip-cold] [--skip-demo]

| budget | what is measured |
|---|---|
| `import tianrt` <= 0.4 s, numba and OpenCV lazy | fresh `python -c "import tianrt"`, best of --repeat; and that `import tianrt` + runtime + modelfile leaves numba and cv2 unloaded |
| cached start <= 0.7 s | fresh process: import, load the bicycle's balance model, `Runtime(backend="numba")`, first tick; kernels from a filled cache (reference backend too) |
| bicycle demo peak RSS <= 250 MB | `tianrt demo bicycle --out TMP` (the README's demo: 30 s ride, camera, video, teacher ride), the process's own VmHWM |
| balance step p99 <= 0.4 ms | the balance MLP's 100 Hz control step (`rt.step({"obs": …})`), 20000 steps, GC frozen and disabled; p99 with GC on for comparison |
| cold JIT of every kernel <= 5 s | `tianrt warmup` into an empty NUMBA_CACHE_DIR (every kernel signature the backend uses); also the balance model's own cold start |

One thread for BLAS and numba, as on the targets. On a shared machine the wall times move
with the load (printed); each row is the best (min) of its repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "demos" / "bicycle" / "data" / "balance_mlp.tnr"
BUDGETS = {"import_s": 0.4, "cached_start_s": 0.7, "demo_rss_mb": 250.0, "step_p99_ms": 0.4, "cold_jit_s": 5.0}

IMPORT = ("import time, sys; t = time.perf_counter(); import tianrt, tianrt.runtime, tianrt.modelfile; "
          "dt = time.perf_counter() - t; "
          "print(dt, int('numba' in sys.modules), int('cv2' in sys.modules))")
IMPORT_ONLY = "import time; t = time.perf_counter(); import tianrt; print(time.perf_counter() - t)"
START = r'''
import time
t, c = time.perf_counter(), time.process_time()
import numpy as np, tianrt as tr
g = tr.load({model!r})
rt = tr.Runtime(g, backend={backend!r})
rt.step({{"obs": np.zeros(6, np.float32)}})
print(time.perf_counter() - t, time.process_time() - c)
'''
DEMO = r'''
import atexit, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("VMHWM_KB " + line.split()[1] + "\n")
atexit.register(hwm)
from tianrt.cli import main
rc = main(sys.argv[1:])
sys.exit(rc)
'''


def py(code: str, env=None, args=()) -> str:
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode:
        raise RuntimeError(f"child failed: {r.stderr[-2000:]}")
    return r.stdout + "\n" + r.stderr


def bench_import(repeat: int) -> dict:
    plain = [float(py(IMPORT_ONLY).split()[0]) for _ in range(repeat)]
    full = [py(IMPORT).split() for _ in range(repeat)]
    return {"import_s": min(plain), "import_median_s": sorted(plain)[len(plain) // 2],
            "import_runtime_s": min(float(f[0]) for f in full),
            "numba_loaded": any(f[1] == "1" for f in full), "cv2_loaded": any(f[2] == "1" for f in full)}


def bench_start(repeat: int, skip_cold: bool) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        first = float(py(START.format(model=str(MODEL), backend="numba"), env).split()[0])
        out["balance_cold_start_s"] = first  # empty cache: the balance model's own kernels compile
        runs = [py(START.format(model=str(MODEL), backend="numba"), env).split()[:2] for _ in range(repeat)]
        out["cached_start_s"] = min(float(r[0]) for r in runs)
        out["cached_start_cpu_s"] = min(float(r[1]) for r in runs)  # less sensitive to other jobs
        out["cached_start_reference_s"] = min(
            float(py(START.format(model=str(MODEL), backend="reference"), env).split()[0]) for _ in range(repeat))
        if not skip_cold:
            # `cache` already holds the balance model's kernels: the warm-up gets an empty one
            import resource
            with tempfile.TemporaryDirectory() as cache2:
                env2 = dict(os.environ, NUMBA_CACHE_DIR=cache2)
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "tianrt.cli", "warmup", "--quiet"], env=env2,
                                   capture_output=True, text=True, timeout=1800)
                wall = time.perf_counter() - t
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                out["cold_jit_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
                if r.returncode:
                    raise RuntimeError(r.stderr[-2000:])
                n = sum(1 for _ in Path(cache2).rglob("*.nbc"))
            out["cold_jit_s"] = wall
            out["cold_jit_signatures"] = n
    return out


def bench_step(n: int = 20000) -> dict:
    import gc

    import numpy as np

    import tianrt as tr

    g = tr.load(str(MODEL))
    rng = np.random.default_rng(0)
    obs = (rng.standard_normal((n, 6)) * 0.1).astype(np.float32)
    out = {}
    for backend in ("numba", "reference"):
        rt = tr.Runtime(g, backend=backend)
        for i in range(200):
            rt.step({"obs": obs[i]})
        for gc_on in (False, True):
            times = np.empty(n)
            perf = time.perf_counter
            step = rt.step
            if not gc_on:
                gc.collect()
                gc.freeze()
                gc.disable()
            try:
                for i in range(n):
                    a = perf()
                    step({"obs": obs[i]})
                    times[i] = perf() - a
            finally:
                gc.enable()
                gc.unfreeze()
            tag = "" if not gc_on else "_gc_on"
            out[f"{backend}{tag}"] = {"p50_ms": float(np.percentile(times, 50) * 1e3),
                                      "p99_ms": float(np.percentile(times, 99) * 1e3),
                                      "max_ms": float(times.max() * 1e3)}
    out["step_p99_ms"] = out["numba"]["p99_ms"]
    return out


def bench_demo(backend: str = "reference") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        text = py(DEMO, args=["demo", "bicycle", "--out", tmp, "--backend", backend])
        wall = time.perf_counter() - t
    kb = [int(ln.split()[1]) for ln in text.splitlines() if ln.startswith("VMHWM_KB")]
    return {"demo_rss_mb": kb[-1] / 1024 if kb else None, "demo_wall_s": wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--skip-cold", action="store_true", help="skip the cold `tianrt warmup` (~20 s)")
    ap.add_argument("--skip-demo", action="store_true", help="skip the bicycle demo's RSS (~1 min)")
    a = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"edge budgets; {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {load:.1f}", flush=True)
    res = {"load_before": load}
    res.update(bench_import(a.repeat))
    print(f"  import tianrt {res['import_s']:.3f} s (median {res['import_median_s']:.3f}); with runtime + "
          f"modelfile {res['import_runtime_s']:.3f} s; numba loaded: {res['numba_loaded']}, "
          f"cv2 loaded: {res['cv2_loaded']}", flush=True)
    res.update(bench_start(a.repeat, a.skip_cold))
    print(f"  balance model start: cold (empty cache) {res['balance_cold_start_s']:.2f} s, cached numba "
          f"{res['cached_start_s']:.3f} s ({res['cached_start_cpu_s']:.3f} s CPU), reference {res['cached_start_reference_s']:.3f} s", flush=True)
    if "cold_jit_s" in res:
        print(f"  cold JIT of every kernel (tianrt warmup, empty cache): {res['cold_jit_s']:.1f} s wall, "
              f"{res['cold_jit_cpu_s']:.1f} s CPU, {res['cold_jit_signatures']} signatures", flush=True)
    st = bench_step()
    res["step"] = st
    res["step_p99_ms"] = st["step_p99_ms"]
    for k in ("numba", "numba_gc_on", "reference", "reference_gc_on"):
        v = st[k]
        print(f"  balance step {k:16s} p50 {v['p50_ms']:.4f} ms  p99 {v['p99_ms']:.4f} ms  max {v['max_ms']:.3f} ms",
              flush=True)
    if not a.skip_demo:
        res.update(bench_demo())
        print(f"  tianrt demo bicycle: peak RSS {res['demo_rss_mb']:.1f} MB ({res['demo_wall_s']:.1f} s)", flush=True)
    res["load_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("\nbudget                            measured     budget     ok")
    for key, budget in BUDGETS.items():
        if res.get(key) is None:
            continue
        v = res[key]
        ok = v <= budget and not (key == "import_s" and (res["numba_loaded"] or res["cv2_loaded"]))
        print(f"  {key:30s} {v:10.3f} {budget:10.3f}     {'yes' if ok else 'MISS'}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
