"""A numba whose llvmlite does not load (`import numba` raises OSError, as with a wheel of the
wrong architecture or a missing libstdc++) is treated like no numba: tianrt imports,
backend="auto" runs the numpy reference, `tianrt doctor` says so and `tianrt warmup` fails
with a message (exit 3). And `tianrt warmup --portable` compiles in a child pinned to
NUMBA_CPU_NAME=generic (docs/deploy.md)."""
import json
import os
import subprocess
import sys

import numpy as np

import tianrt as tr

CHILD = r'''
import json, subprocess, sys, numpy as np, tianrt as tr
from tianrt.kernels._jit import HAVE_NUMBA
from tianrt.cli import main
g = tr.Graph(name="t")
h = g.add(tr.snn.LIF(), g.add(tr.snn.Dense(4, 3, weight=np.full((3, 4), 0.6, np.float32)), g.input("x", (4,), domain="spike")))
g.output("y", h)
rt = tr.Runtime(g, backend="auto")
y = rt.run({"x": np.ones((5, 4), np.float32)})["y"]
rc = main(["warmup", "--quiet"])
print(json.dumps({"have": HAVE_NUMBA, "auto": rt._impl.name, "y": y.tolist(), "warmup_rc": rc}))
'''


def test_broken_llvmlite_falls_back_to_the_numpy_path(tmp_path):
    fake = tmp_path / "numba"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise OSError('libllvmlite.so: cannot open shared object file: No such file or directory')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["have"] is False and got["auto"] == "reference" and got["warmup_rc"] == 3
    assert "numba is not installed" in r.stderr
    g = tr.Graph(name="t")
    h = g.add(tr.snn.LIF(), g.add(tr.snn.Dense(4, 3, weight=np.full((3, 4), 0.6, np.float32)),
                                  g.input("x", (4,), domain="spike")))
    g.output("y", h)
    want = tr.Runtime(g, backend="numba").run({"x": np.ones((5, 4), np.float32)})["y"]
    assert np.array_equal(np.asarray(got["y"]), want) and want.sum() > 0
    r = subprocess.run([sys.executable, "-m", "tianrt.cli", "doctor", "--json"], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["numba"]["works"] is False and doc["numba"]["auto_backend"] == "reference"


def test_warmup_portable_compiles_for_generic(monkeypatch, capsys):
    from tianrt.cli import main
    from tianrt.commands import warmup

    seen = {}

    def fake_run(cmd, env=None, **kw):
        seen.update(cmd=cmd, cpu=env.get("NUMBA_CPU_NAME"))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.delenv("NUMBA_CPU_NAME", raising=False)
    monkeypatch.setattr(warmup.subprocess if hasattr(warmup, "subprocess") else subprocess, "run", fake_run)
    assert main(["warmup", "--portable", "--quiet"]) == 0
    assert seen["cpu"] == "generic" and seen["cmd"][1:] == ["-m", "tianrt.cli", "warmup", "--quiet"]
    assert "NUMBA_CPU_NAME=generic" in capsys.readouterr().out
    assert main(["warmup", "--portable", "--calibrate"]) == 2
