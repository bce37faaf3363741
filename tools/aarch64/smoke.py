"""The smoke subset that tools/aarch64/run.py runs under qemu on an aarch64 Python (and that the
host runs natively to compare numbers): import, the README's hybrid example, numba against
the reference on a few graphs (float and integer mode, the fused chain), a short bicycle ride
through the stream scheduler, an OpenCV camera frame, and the numba cache's hits and misses.

    python smoke.py --phase cold|warm     # prints progress lines, then one JSON line

Only tianrt's installed package is used (no repository files): this is what a board sees.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

T0 = time.perf_counter()
import numpy as np  # noqa: E402

import tianrt as tr  # noqa: E402

T_IMPORT = time.perf_counter() - T0


def readme_graph():
    g = tr.Graph(dt=1e-3, name="hybrid")
    cam = g.input("camera", shape=(1, 12, 16), domain="tensor", rate_hz=30)
    x = g.add(tr.ann.Conv2d(1, 4, 3, padding=1), cam)
    x = g.add(tr.ann.ReLU(), x)
    x = g.add(tr.ann.MaxPool2d(2), x)
    x = g.add(tr.ann.Flatten(), x)
    s = g.add(tr.bridge.RateEncoder(), x)
    s = g.add(tr.snn.Dense(4 * 6 * 8, 32), s)
    s = g.add(tr.snn.LIF(beta=0.9, threshold=1.0, reset="subtract"), s)
    s = g.add(tr.snn.Dense(32, 4), s)
    s = g.add(tr.snn.LIF(beta=0.9), s)
    y = g.add(tr.bridge.SpikeCount(window=16), s)
    g.output("y", y)
    return g


def readme_example(backend: str):
    """The README's example, its asserts included."""
    g = readme_graph()
    rt = tr.Runtime(g, backend=backend)
    frame = np.random.default_rng(0).random((1, 12, 16), dtype=np.float32)
    out = rt.step({"camera": frame})
    for _ in range(15):
        out = rt.step()
    assert "y" in out and rt.tick == 16
    rt.reset()
    outs = rt.run({"camera": frame}, ticks=64)
    assert outs["y"].shape == (4, 4) and outs.ticks["y"].tolist() == [15, 31, 47, 63]
    return outs


def chain_graph():
    rng = np.random.default_rng(3)
    g = tr.Graph(name="chain")
    h = g.input("x", shape=(32,), domain="spike")
    for i, (a, b) in enumerate([(32, 24), (24, 8)]):
        h = g.add(tr.snn.Dense(a, b, weight=rng.uniform(-1, 1, (b, a)).astype(np.float32) * 0.8), h)
        h = g.add(tr.snn.LIF(beta=0.9, refractory=i), h)
    g.output("y", g.add(tr.bridge.SpikeCount(window=4), h))
    feeds = {"x": (rng.random((16, 32)) < 0.3).astype(np.float32)}
    return g, feeds


def int_graph():
    rng = np.random.default_rng(0)
    g = tr.Graph(name="tiny-int")
    x = g.add(tr.q.Quantize(0.05), g.input("x", (6,)))
    h = g.add(tr.q.Dense(6, 5, weight=rng.integers(-60, 60, (5, 6)), multiplier=20000, shift=18, lo=0), x)
    s = g.add(tr.q.RateEncoder(full_scale=100), h)
    v = g.add(tr.q.LIF(threshold=12, leak_mult=15000, leak_shift=14),
              g.add(tr.q.SynDense(5, 3, weight=rng.integers(-20, 80, (3, 5))), s))
    g.output("y", g.add(tr.bridge.SpikeCount(window=4), v))
    return g, {"x": np.linspace(0.1, 1.0, 6).astype(np.float32)}


def parity_values(fast: str = "numba") -> dict:
    """Outputs of the ``fast`` backend on the smoke graphs (checked against the reference here;
    the host compares them with its own numba backend's)."""
    vals = {}
    frame = np.random.default_rng(0).random((1, 12, 16), dtype=np.float32)
    for name, (g, feeds, ticks) in {
            "float/readme": (readme_graph(), {"camera": frame}, 64),
            "float/chain": (*chain_graph(), None),
            "int/tiny": (*int_graph(), 16)}.items():
        kw = {} if ticks is None else {"ticks": ticks}
        ref = tr.Runtime(g, backend="reference").run(feeds, **kw)
        got = tr.Runtime(g, backend=fast).run(feeds, **kw)
        for k in ref:
            assert np.array_equal(ref.ticks[k], got.ticks[k]), (name, k)
            if name.startswith("int/"):
                assert np.array_equal(ref[k], got[k]), (name, k)
            else:
                np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-5, err_msg=f"{name}:{k}")
            vals[f"{name}/{k}"] = np.asarray(got[k]).tolist()
    return vals


def bicycle_ride(seconds: float = 2.0) -> dict:
    from tianrt.demos.bicycle import policy, suite, world
    from tianrt.demos.bicycle.run import run_stream

    sc = world.parse_scenario(suite.make("gust_suite", 0, seconds))
    res = run_stream(sc, policy.load(), "numba")
    assert not res.fell, "the bicycle fell in a 2 s gust ride"
    return {"fell": bool(res.fell), "max_lean_deg": round(float(res.max_lean_deg), 3)}


def camera_frame() -> list:
    import cv2

    from tianrt.demos.bicycle import render, suite, world

    sc = world.parse_scenario(suite.make("gust_suite", 0, 2.0))
    cam = render.SensorCamera(render.Scene(sc))
    img = cam.frame(0.0, 0.0, 0.0, 0.0)
    assert img.size and np.asarray(img).std() > 0, "a blank camera frame"
    return [cv2.__version__, list(np.shape(img))]


def doctor_check() -> dict:
    from tianrt.commands.doctor import doctor

    doc = doctor()
    assert doc["numba"]["works"] and doc["numba"]["cpu_name"] == "generic", doc["numba"]
    assert doc["cache"]["portable"] and doc["cache"]["usable_here"], doc["cache"]
    assert all("aarch64" in k for k in doc["cache"]["cpus"]), doc["cache"]["cpus"]
    return doc["cache"]["cpus"]


def cache_stats() -> dict:
    """numba dispatchers of tianrt's modules: signatures loaded from / missed in the disk cache."""
    from numba.core.dispatcher import Dispatcher

    hits, misses, missed = 0, 0, []
    seen = set()
    for modname, mod in list(sys.modules.items()):
        if not modname.startswith("tianrt") or mod is None:
            continue
        for attr in vars(mod).values():
            if isinstance(attr, Dispatcher) and id(attr) not in seen:
                seen.add(id(attr))
                st = attr.stats
                hits += sum(st.cache_hits.values())
                m = sum(st.cache_misses.values())
                misses += m
                if m:
                    missed.append(attr.py_func.__qualname__)
    return {"hits": hits, "misses": misses, "missed": sorted(missed)}


def machine(mode: str = "numba") -> dict:
    if mode != "numba":
        return {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
                "numba": None, "tianrt": tr.__version__}
    import llvmlite.binding as llvm
    import numba

    return {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "llvm_cpu": numba.config.CPU_NAME or llvm.get_host_cpu_name(),
            "tianrt": tr.__version__}


def numpy_path(a, checks, problems, times, check) -> int:
    """The checks of tests/test_no_numba.py on a Python that really has no numba."""
    from tianrt.kernels._jit import HAVE_NUMBA

    def auto_is_reference():
        assert not HAVE_NUMBA and "numba" not in sys.modules
        assert tr.Runtime(readme_graph(), backend="auto")._impl.name == "reference"

    def numba_says_why():
        try:
            tr.Runtime(readme_graph(), backend="numba")
        except tr.BackendError as exc:
            assert "backend='reference'" in str(exc), exc
            return
        raise AssertionError("backend='numba' did not raise BackendError")

    def chip_inproc():  # the emulator on plain-Python kernels equals the reference
        g, feeds = int_graph()
        want = tr.Runtime(g, backend="reference").run(feeds, ticks=16)["y"]
        got = tr.Runtime(g, backend="chip", port="inproc").run(feeds, ticks=16)["y"]
        assert np.array_equal(want, got) and want.sum() > 0

    def doctor_says_numpy():
        from tianrt.commands.doctor import doctor
        doc = doctor()
        assert not doc["numba"]["works"] and doc["numba"]["auto_backend"] == "reference", doc["numba"]
        return doc["machine"]["bits"]

    check("backend auto is reference, numba not loaded", auto_is_reference)
    check("backend numba says to use reference", numba_says_why)
    values = check("reference on the smoke graphs", lambda: parity_values("reference")) or {}
    check("chip emulator in process (plain-Python kernels) == reference", chip_inproc)
    check("tianrt doctor: numba not usable, auto = reference", doctor_says_numpy)
    print(json.dumps({"phase": a.phase, "mode": "numpy", "machine": machine("numpy"), "checks": checks,
                      "problems": problems, "times": times, "values": values}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", default="cold")
    ap.add_argument("--mode", choices=("numba", "numpy"), default="numba",
                    help="numpy: a machine without numba (32-bit ARM): the reference backend's checks")
    a = ap.parse_args(argv)
    checks, problems, times = [], [], {"import_s": round(T_IMPORT, 2)}
    values = {}

    def check(name, fn):
        t = time.perf_counter()
        try:
            r = fn()
            checks.append(name)
            print(f"ok   {name} ({time.perf_counter() - t:.1f} s)", flush=True)
            return r
        except Exception as exc:  # noqa: BLE001 - report every failing check
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
        finally:
            times[name] = round(time.perf_counter() - t, 2)

    check(f"import tianrt ({T_IMPORT:.1f} s under emulation)", lambda: None)
    check("README example (reference)", lambda: readme_example("reference"))
    if a.mode == "numpy":
        return numpy_path(a, checks, problems, times, check)
    check("backend auto is numba", lambda: tr.Runtime(readme_graph(), backend="auto")._impl.name == "numba"
          or (_ for _ in ()).throw(AssertionError("auto did not pick numba")))
    check("README example (numba)", lambda: readme_example("numba"))
    values = check("numba == reference (float, fused chain, integer)", parity_values) or {}
    check("bicycle 2 s ride (numba, stream scheduler)", bicycle_ride)
    check("OpenCV camera frame", camera_frame)
    if a.phase == "warm":
        check("tianrt doctor: numba works, the cache is portable", doctor_check)
    out = {"phase": a.phase, "machine": machine(), "checks": checks, "problems": problems, "times": times,
           "values": values, "cache": cache_stats()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
