"""The CANN tracker (a spiking ring attractor in tianrt) on a synthetic moving stimulus with
false detections and an occlusion: it beats holding the last detection and a moving average."""
import numpy as np
import pytest

from tianrt.demos.bicycle import cann


def test_task_is_seeded_and_has_the_gap():
    a, b = cann.task(3), cann.task(3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1], equal_nan=True)
    truth, det, occ = a
    assert len(truth) == 180 and occ.sum() == 15 and np.all(np.isnan(det[occ]))


def test_graph_is_a_spiking_ring_with_alif_and_recurrence():
    g = cann.build_graph()
    ops = {e.node.op for e in g.build().entries}
    assert {"snn.Recurrent", "snn.ALIF", "bridge.SpikeCount"} <= ops
    w = cann.recurrent_weights(cann.CANNParams())
    assert w[0, 0] > 0 > w[0, 36]           # Mexican hat: excitation near, inhibition far


def test_tracks_through_occlusion_and_false_detections():
    res = cann.measure(seeds=range(3))
    c, h, m = res["CANN (spiking, tianrt)"], res["hold last detection"], res["moving average (EMA 0.3)"]
    assert c["overall_deg"] < 3.5 and c["occluded_deg"] < 4.5
    assert c["overall_deg"] < 0.5 * m["overall_deg"] < h["overall_deg"]
    assert c["occluded_deg"] < 0.5 * m["occluded_deg"]


def test_bump_holds_without_input_and_ignores_a_false_detection():
    tr_ = cann.Tracker()
    for _ in range(10):
        tr_.update(40.0)
    assert tr_.confident and abs(cann.wrap(tr_.bearing - 40.0)) < 5
    tr_.update(-120.0)                       # one false detection far away
    assert abs(cann.wrap(tr_.bearing - 40.0)) < 10
    for _ in range(6):
        tr_.update(None)                     # 0.2 s of nothing: the bump survives
    assert tr_.confident


def test_quantised_cann_tracks_on_the_chip_path():
    q = cann.quantized()
    ops = {e.node.op for e in q.build().entries}
    assert "snn.Recurrent" not in ops and any(op.startswith("q.") for op in ops)
    res = cann.measure(seeds=range(3), int8=True)
    c, m = res["CANN int8 (tr.quantize)"], res["moving average (EMA 0.3)"]
    assert c["overall_deg"] < 3.5 and c["occluded_deg"] < 4.5
    assert c["overall_deg"] < 0.6 * m["overall_deg"]


def test_current_input_cann_quantises_and_runs_bit_exact_on_the_chip():
    """The rides' CANN (code as a current) quantises: the input product keeps its own int8
    scale and is rescaled to the ring's membrane unit; it tracks within the task's targets and
    the chip runs it bit for bit as the numba integer mode."""
    import tianrt as tr

    q = cann.quantized(spike_input=False)
    assert q["ring_syn"].rescaled
    res = cann.measure(seeds=range(3), int8=True, spike_input=False)
    c = res["CANN int8 (tr.quantize)"]
    assert c["overall_deg"] < 3.5 and c["occluded_deg"] < 4.5
    codes = {"code": np.stack([cann.code(b) for b in (10.0, 15.0, 20.0)])}
    nb = tr.Runtime(q, backend="numba").run(codes, ticks=cann.TICKS)
    with tr.Runtime(q, backend="chip", port="inproc") as chip:
        ch = chip.run(codes, ticks=cann.TICKS)
    assert nb["spikes"].sum() > 0
    for k in nb:
        assert np.array_equal(nb[k], ch[k]), k


def test_estimate_times_out_without_detections_and_returns_on_redetection():
    """The bump would hold without input for ever; the readout gives no estimate once no
    detection has come for longer than the time-out, resets the ring, and tracks again from
    the next detections. Bearings in the world frame: camera bearing + heading."""
    tr_ = cann.Tracker(backend="numba", graph=cann.build_graph(spike_input=False), timeout_s=0.5)
    frames = tr_.timeout_frames
    assert frames == 15
    rng = np.random.default_rng(17)
    for _ in range(10):                      # the person at 30 deg (world), the camera at heading 20
        tr_.update(10.0 + rng.normal(0, 2), heading=20.0)
    assert abs(cann.wrap(tr_.estimate - 30.0)) < 6 and abs(tr_.relative(20.0) - 10.0) < 6
    assert abs(tr_.relative(-10.0) - 40.0) < 6          # the same bump from a camera turned by -30
    for _ in range(frames - 1):              # hidden up to the time-out: still an estimate
        tr_.update(None, heading=20.0)
        assert tr_.estimate is not None
    tr_.update(-150.0, heading=20.0)         # a false detection far away: ignored, and it does not
    assert abs(cann.wrap(tr_.estimate - 30.0)) < 20   # keep the bump alive either
    tr_.update(None, heading=20.0)
    assert tr_.estimate is None and tr_.relative(20.0) is None and tr_.timeouts == 1
    assert tr_.rt is not None and tr_.strength == 0.0   # the ring was reset: no bump left
    for _ in range(5):
        tr_.update(None)
        assert tr_.estimate is None
    for _ in range(3):                       # seen again elsewhere: a new bump within a few frames
        tr_.update(-60.0 + rng.normal(0, 2), heading=-20.0)
    assert abs(cann.wrap(tr_.estimate + 80.0)) < 8 and tr_.timeouts == 1
    with pytest.raises(ValueError, match="time-out"):
        cann.Readout(timeout_s=0.0)


def test_task_gap_within_the_default_time_out_keeps_the_estimate():
    res = cann.measure(seeds=range(2), gap=0.5)
    assert res["CANN (spiking, tianrt)"]["no_estimate_s"] == 0.0
    res = cann.measure(seeds=range(2), gap=2.0)          # a gap longer than TIMEOUT_S: no estimate for the rest
    lost = res["CANN (spiking, tianrt)"]["no_estimate_s"]
    assert 2.0 - cann.TIMEOUT_S - 0.1 < lost <= 2.0 - cann.TIMEOUT_S + 0.1
