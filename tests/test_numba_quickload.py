"""Cached kernels load without numba's context refresh (tianrt/backends/numba/quickload.py):
in a fresh process whose kernels are cached, a graph runs with the same results as through
numba's own cache load, without numba's lowering registries (numba.np.arraymath) loaded."""
import os
import subprocess
import sys

CHILD = r"""
import sys, numpy as np, tianrt as tr
g = tr.Graph(name="ql")
x = g.input("x", shape=(12,), domain="spike")
i = g.add(tr.snn.Dense(12, 8, weight=np.linspace(-1, 1, 96).reshape(8, 12)), x)
s = g.add(tr.snn.LIF(beta=0.9, threshold=0.5), i)
g.output("c", g.add(tr.bridge.SpikeCount(window=4), s))
rt = tr.Runtime(g, backend="numba")
xs = (np.arange(12 * 8).reshape(8, 12) % 3 == 0).astype(np.float32)
a = rt.run({"x": xs})["c"].tolist()
rt.reset()
b = [rt.step({"x": v}).get("c", np.zeros(8)).tolist() for v in xs]
print(repr((a, b, "numba.np.arraymath" in sys.modules)))
"""


def child(quick: str):
    env = dict(os.environ, TIANRT_NUMBA_QUICKLOAD=quick)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])


def test_cached_start_skips_the_refresh_with_the_same_results():
    a0, b0, refreshed = child("0")  # numba's own path (it also fills the cache)
    assert refreshed
    a1, b1, refreshed = child("1")
    assert not refreshed, "a cached kernel load refreshed numba's context"
    assert a1 == a0 and b1 == b0
