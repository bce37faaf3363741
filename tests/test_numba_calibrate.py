"""The event/dense crossover: measured per machine by `tianrt warmup --calibrate`, stored,
read by the numba backend, overridden by `crossover=`; a bad file is ignored."""
import json

import numpy as np

import tianrt as tr
from tianrt.backends.numba import calibrate as cal
from tianrt.backends.numba import policy as nb


def graph():
    g = tr.Graph()
    g.output("y", g.add(tr.snn.LIF(), g.add(tr.snn.Dense(8, 4, seed=1), g.input("x", (8,), domain="spike"))))
    return g


def test_stored_calibration_is_used_and_crossover_overrides_it(tmp_path, monkeypatch):
    path = tmp_path / "cross.json"
    monkeypatch.setenv("TIANRT_CALIBRATION", str(path))
    be = tr.Runtime(graph(), "numba")._impl
    assert (be.crossover, be.crossover_batch) == (nb.DEFAULT_CROSSOVER, nb.DEFAULT_CROSSOVER_BATCH)
    path.write_text(json.dumps({"batch1": 0.42, "batch_n": 0.07}))
    be = tr.Runtime(graph(), "numba")._impl
    assert (be.crossover, be.crossover_batch) == (0.42, 0.07)
    be = tr.Runtime(graph(), "numba", crossover=0.5)._impl
    assert (be.crossover, be.crossover_batch) == (0.5, 0.5)
    for bad in ("not json", json.dumps({"batch1": 3.0, "batch_n": 0.1}), json.dumps({"batch1": 0.3})):
        path.write_text(bad)
        assert cal.load() is None
        assert tr.Runtime(graph(), "numba")._impl.crossover == nb.DEFAULT_CROSSOVER


def test_measure_finds_a_crossover_in_range():
    cross, rows = cal.measure(n=64, batch=1, reps=2)
    assert 0.0 < cross <= 1.0
    assert [r[0] for r in rows] == list(cal.ACTIVITIES[:len(rows)])
    assert all(e > 0 and d > 0 for _, e, d in rows)


def test_calibrate_writes_the_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "cross.json"
    monkeypatch.setenv("TIANRT_CALIBRATION", str(path))
    monkeypatch.setattr(cal, "measure", lambda batch, reps: (0.25 if batch == 1 else 0.125, []))
    assert cal.calibrate(verbose=False) == {"batch1": 0.25, "batch_n": 0.125}
    assert cal.load() == {"batch1": 0.25, "batch_n": 0.125}
    assert json.loads(path.read_text())["machine"]
    x = {"x": (np.random.default_rng(0).random((5, 8)) < 0.5).astype(np.float32)}
    assert tr.Runtime(graph(), "numba")._impl.crossover == 0.25
    out = tr.Runtime(graph(), "numba").run(x)
    assert np.array_equal(out["y"], tr.Runtime(graph(), "reference").run(x)["y"])
