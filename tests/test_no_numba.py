"""docs/numba-backend.md (no numba): on a machine without numba (e.g. a 32-bit ARM OS) tianrt still imports, runs
graphs on the numpy reference (backend="auto" picks it), the numba backend says what is
missing, and the kernels - hence the chip emulator - run as plain Python, bit for bit."""
import json
import subprocess
import sys

import numpy as np

import tianrt as tr

GRAPH = r'''
import numpy as np, tianrt as tr
def qgraph():
    rng = np.random.default_rng(0)
    g = tr.Graph(name="tiny-int")
    x = g.add(tr.q.Quantize(0.05), g.input("x", (6,)))
    h = g.add(tr.q.Dense(6, 5, weight=rng.integers(-60, 60, (5, 6)), multiplier=20000, shift=18, lo=0), x)
    s = g.add(tr.q.RateEncoder(full_scale=100), h)
    v = g.add(tr.q.LIF(threshold=12, leak_mult=15000, leak_shift=14),
              g.add(tr.q.SynDense(5, 3, weight=rng.integers(-20, 80, (3, 5))), s))
    g.output("y", g.add(tr.bridge.SpikeCount(window=4), v))
    return g
X = np.linspace(0.1, 1.0, 6).astype(np.float32)
'''

CHILD = GRAPH + r'''
import sys, json
from tianrt.kernels._jit import HAVE_NUMBA
from tianrt.kernels import intmath
assert not HAVE_NUMBA
out = {}
rt = tr.Runtime(qgraph(), backend="auto")
out["auto"] = rt._impl.name
out["reference"] = rt.run({"x": X}, ticks=8)["y"].tolist()
try:
    tr.Runtime(qgraph(), backend="numba")
    out["numba_error"] = None
except tr.BackendError as e:
    out["numba_error"] = str(e)
chip = tr.Runtime(qgraph(), backend="chip", port="inproc")  # firmware_sim's engine, pure Python
out["chip"] = chip.run({"x": X}, ticks=8)["y"].tolist()
out["round_shift"] = [int(intmath.round_shift(v, 3)) for v in (-13, -12, -4, 4, 12, 13, 2**31 - 1)]
out["numba_loaded"] = any(m == "numba" or m.startswith("numba.") for m in sys.modules if sys.modules[m] is not None)
print(json.dumps(out))
'''


def test_tianrt_without_numba():
    code = "import sys\nsys.modules['numba'] = None  # `import numba` fails, as where it is not installed\n" + CHILD
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["auto"] == "reference" and not got["numba_loaded"]
    assert "numba package" in got["numba_error"] and "backend='reference'" in got["numba_error"]
    ns = {}
    exec(GRAPH, ns)
    want = tr.Runtime(ns["qgraph"](), backend="numba").run({"x": ns["X"]}, ticks=8)["y"]
    assert np.array_equal(np.asarray(got["reference"]), want)
    assert np.array_equal(np.asarray(got["chip"]), want)  # the emulator on plain-Python kernels
    from tianrt.kernels import intmath
    assert got["round_shift"] == [int(intmath.round_shift(v, 3)) for v in (-13, -12, -4, 4, 12, 13, 2**31 - 1)]
    assert want.sum() > 0  # the graph is not silent: the comparison means something
