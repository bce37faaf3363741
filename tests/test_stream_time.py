"""Issue 20, time: sensor timestamps end to end (serial frames and lines that carry them, a
USB adapter's bunching undone), per-output latency that follows the output's own inputs, and
the audio sample rate checked against the graph. Simulated clock throughout."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.stream import ArraySink, ArraySource, Scheduler, StreamError


def identity_graph(shapes: dict, dt=1e-3, name="g", rates=None):
    g = tr.Graph(dt=dt, name=name)
    for k, shape in shapes.items():
        h = g.input(k, shape=shape, rate_hz=(rates or {}).get(k))
        g.output(f"{k}_out", g.add(tr.ann.ReLU(), h))
    return g


def test_latency_of_an_output_follows_its_own_inputs_only():
    """Wrong result 2: ten IMU samples taken at t = 0 and queued reach the network on ticks
    0..9, so their latency is 0..9 ms (p50 4.5 ms) - also when a fresh camera frame, which
    feeds another output, arrives every tick."""
    def run(with_camera):
        shapes = {"imu": (6,), "camera": (1, 4, 6)} if with_camera else {"imu": (6,)}
        sched = Scheduler(tr.Runtime(identity_graph(shapes)))
        sched.add_source(ArraySource(np.ones((10, 6)), times=np.zeros(10)), to="imu")
        if with_camera:
            sched.add_source(ArraySource(np.ones((20, 1, 4, 6))), to="camera")
        return sched.run(ticks=20)["outputs"]

    for outs in (run(False), run(True)):
        lat = outs["imu_out"]["latency_s"]
        assert lat["count"] == 10
        assert lat["p50"] == pytest.approx(4.5e-3) and lat["max"] == pytest.approx(9e-3)
    assert run(True)["camera_out"]["latency_s"]["max"] == pytest.approx(0.0, abs=1e-12)


def test_an_output_of_two_inputs_takes_the_newest_of_its_own():
    g = tr.Graph(dt=1e-3, name="g")
    a, b, c = g.input("a", shape=(1,)), g.input("b", shape=(1,)), g.input("c", shape=(1,))
    g.output("ab", g.add(tr.ann.Add(), a, b))
    g.output("c_out", g.add(tr.ann.ReLU(), c))
    sched = Scheduler(tr.Runtime(g))
    # a: fresh each tick from tick 5 on; b: one stale sample at t=0 delivered at tick 0;
    # c: a sample every tick (it must not shorten ab's latency)
    sched.add_source(ArraySource(np.ones((5, 1)), times=np.arange(5, 10) * 1e-3 - 2e-3), to="a")
    sched.add_source(ArraySource(np.ones((1, 1)), times=[0.0]), to="b")
    sched.add_source(ArraySource(np.ones((10, 1))), to="c")
    rep = sched.run(ticks=10)
    lat = rep["outputs"]["ab"]["latency_s"]
    # tick 0: b (0 ms old); ticks 3..7: a's samples stamped 3..7 ms arrive on time
    assert lat["count"] == 6 and lat["max"] == pytest.approx(0.0, abs=1e-12)
