"""Synchronised sets (issue 20): sources delivered together as matched sets within a
tolerance, unmatched samples counted; simulated clock."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.stream import ArraySink, ArraySource, Scheduler, StreamError


def graph():
    g = tr.Graph(dt=1e-3, name="g")
    for k, shape in {"camera": (1,), "imu": (1,)}.items():
        g.output(f"{k}_out", g.add(tr.ann.ReLU(), g.input(k, shape=shape)))
    return g


def test_a_30hz_camera_and_a_200hz_imu_arrive_as_matched_pairs():
    sched = Scheduler(tr.Runtime(graph()))
    cam_t = np.arange(10) / 30
    cam_t[4] += 0.02  # 153.3 ms: the nearest IMU samples (151, 156 ms) are over 2 ms away
    imu_t = np.arange(70) / 200 + 0.001  # IMU samples 1 ms after the 5 ms grid
    sched.add_source(ArraySource(cam_t[:, None] * 1000, times=cam_t, name="camera", policy="queue"))
    sched.add_source(ArraySource(imu_t[:, None] * 1000, times=imu_t, name="imu"))
    grp = sched.synchronise(["camera", "imu"], tolerance=0.002)
    cams, imus = sched.add_sink("camera_out", ArraySink()), sched.add_sink("imu_out", ArraySink())
    rep = sched.run()
    # every delivered pair is within 2 ms, and they reach the network on the same tick
    assert cams.ticks.tolist() == imus.ticks.tolist()
    assert np.abs(cams.values[:, 0] - imus.values[:, 0]).max() <= 2.0 + 1e-3
    pairs = [(round(c), round(i)) for c, i in zip(cams.values[:, 0], imus.values[:, 0])]
    # greedy in time order: each frame with the first IMU sample within 2 ms of it
    expected = []
    for c in cam_t:
        m = [i for i in imu_t if abs(i - c) <= 0.002 + 1e-9]
        if m:
            expected.append((round(c * 1000), round(m[0] * 1000)))
    assert pairs == expected
    s = rep["sources"]
    assert grp.sets == len(expected) == rep["sync"][0]["sets"]
    assert s["camera"]["unmatched"] == 10 - len(expected)
    assert s["imu"]["unmatched"] == s["imu"]["dropped"] > 0
    for name in ("camera", "imu"):
        x = s[name]
        assert x["received"] == x["delivered"] + x["dropped"] + x["rejected"] + x["queued"]
    assert rep["stopped"] == "end"
    assert "synchronised camera + imu (within 2.00ms)" in str(rep)


def test_synchronise_errors():
    sched = Scheduler(tr.Runtime(graph()))
    sched.add_source(ArraySource(np.zeros((3, 1)), name="camera"))
    with pytest.raises(StreamError, match="no source 'imu'; sources are camera"):
        sched.synchronise(["camera", "imu"], tolerance=0.01)
    sched.add_source(ArraySource(np.zeros((3, 1)), name="imu"))
    with pytest.raises(StreamError, match="two or more"):
        sched.synchronise(["camera"], tolerance=0.01)
    sched.synchronise(["camera", "imu"], tolerance=0.01)
    with pytest.raises(StreamError, match="already in a synchronised group"):
        sched.synchronise(["camera", "imu"], tolerance=0.01)
