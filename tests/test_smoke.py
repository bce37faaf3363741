"""Smoke test: the README's hybrid example builds, steps and runs."""
import numpy as np

import tianrt as tr


def test_hybrid_example_runs():
    g = tr.Graph(dt=1e-3, name="smoke")
    x = g.input("x", shape=(1, 6, 6))
    h = g.add(tr.ann.Conv2d(1, 2, 3, padding=1), x)
    h = g.add(tr.ann.ReLU(), h)
    h = g.add(tr.ann.Flatten(), h)
    s = g.add(tr.bridge.RateEncoder(), h)
    s = g.add(tr.snn.Dense(72, 4), s)
    s = g.add(tr.snn.LIF(beta=0.9), s)
    g.output("y", g.add(tr.bridge.SpikeCount(window=4), s))
    rt = tr.Runtime(g)
    frame = np.random.default_rng(0).random((1, 6, 6)).astype(np.float32)
    outs = rt.run({"x": frame}, ticks=8)
    assert outs["y"].shape == (2, 4)
    assert outs.ticks["y"].tolist() == [3, 7]
