"""The streaming scheduler on the simulated clock: alignment of multi-rate sources, policies
and their exact drop counts, stalls and failures, rejection of bad values, latency and
deadlines, several runtimes, clean shutdown; and one short wall-clock run."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tianrt as tr
from tianrt.stream import (END, ArraySink, ArraySource, Scheduler, SimulationSource, Source,
                           StreamError)


def identity_graph(shapes: dict, dt=1e-3, name="g"):
    """A graph whose outputs `<input>_out` repeat each tensor input (ReLU of a non-negative
    value is the value), so what reached the runtime, and when, is visible at the sinks."""
    g = tr.Graph(dt=dt, name=name)
    for k, shape in shapes.items():
        g.output(f"{k}_out", g.add(tr.ann.ReLU(), g.input(k, shape=shape)))
    return g


def test_multi_rate_sources_land_on_the_right_ticks():
    g = identity_graph({"camera": (1, 4, 6), "imu": (6,), "audio": (160,)})
    sched = Scheduler(tr.Runtime(g))
    frames = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 4, 6), np.float32)
    sched.add_source(ArraySource(frames, rate_hz=30, name="camera"))
    sched.add_source(SimulationSource(lambda t: np.full(6, t), rate_hz=200, name="imu"))
    audio = np.abs(np.sin(np.arange(16000) / 7.0)).astype(np.float32)
    sched.add_source(tr.stream.AudioSource(audio, sample_rate=16000), to="audio")
    sinks = {k: sched.add_sink(f"{k}_out", ArraySink()) for k in ("camera", "imu", "audio")}
    rep = sched.run(ticks=301)

    # 30 Hz: frame k at k/30 s lands on the first 1 ms tick at or after it
    assert sinks["camera"].ticks.tolist() == [0, 34, 67, 100, 134, 167, 200, 234, 267, 300]
    assert sinks["camera"].values[:, 0, 0, 0].tolist() == list(range(10))
    # 200 Hz IMU every 5 ticks, the value is the sample time
    assert sinks["imu"].ticks.tolist() == list(range(0, 301, 5))
    np.testing.assert_allclose(sinks["imu"].values[:, 0], np.arange(0, 301, 5) * 1e-3, atol=1e-7)
    # 10 ms chunks of 160 samples, each stamped (and delivered) at its end
    assert sinks["audio"].ticks.tolist() == list(range(10, 301, 10))
    np.testing.assert_array_equal(sinks["audio"].values[2], audio[320:480])
    assert rep["sources"]["camera"]["received"] == 10
    assert rep["sources"]["imu"]["received"] == 61
    assert rep["sources"]["audio"]["received"] == 30
    assert all(s["dropped"] == 0 and s["missed"] == 0 for s in rep["sources"].values())
    # latency on the simulated clock is the tick quantisation: camera frame 1 at 33.3 ms -> tick 34
    assert rep["outputs"]["camera_out"]["latency_s"]["max"] == pytest.approx(34e-3 - 1 / 30)
    assert rep["outputs"]["imu_out"]["latency_s"]["max"] == pytest.approx(0.0, abs=1e-12)


def test_keep_latest_drops_all_but_the_newest():
    g = identity_graph({"x": (1,)}, dt=10e-3)  # 100 Hz ticks, 1 kHz samples
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.arange(100, dtype=np.float32)[:, None], rate_hz=1000,
                                 policy="latest"), to="x")
    out = sched.add_sink("x_out", ArraySink())
    rep = sched.run(until_end=True)
    s = rep["sources"]["array"]
    # ticks at 0, 10, ..., 90 ms see samples 0; 1..10; 11..20 ...: only the newest survives
    assert out.values[:, 0].tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99]
    assert (s["received"], s["delivered"], s["dropped"], s["queued"]) == (100, 11, 89, 0)


@pytest.mark.parametrize("overflow,kept", [("drop-oldest", [7, 8, 9, 10]),
                                           ("drop-newest", [0, 1, 2, 3])])
def test_bounded_queue_drops_by_its_overflow_policy(overflow, kept):
    # a burst of 11 samples at t=0 into a queue of 4, then one leaves per tick
    g = identity_graph({"x": (1,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.arange(11, dtype=np.float32)[:, None], times=np.zeros(11),
                                 policy="queue", capacity=4, overflow=overflow), to="x")
    out = sched.add_sink("x_out", ArraySink())
    rep = sched.run(ticks=10)
    s = rep["sources"]["array"]
    assert out.values[:, 0].tolist() == kept
    assert out.ticks.tolist() == [0, 1, 2, 3]
    assert (s["received"], s["delivered"], s["dropped"]) == (11, 4, 7)


def test_never_drop_delivers_everything_late_and_refuses_an_endless_backlog():
    g = identity_graph({"x": (1,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.arange(50, dtype=np.float32)[:, None], rate_hz=2000), to="x")
    out = sched.add_sink("x_out", ArraySink())
    rep = sched.run(until_end=True)
    assert out.values[:, 0].tolist() == list(range(50))  # in order, none lost
    s = rep["sources"]["array"]
    assert (s["received"], s["delivered"], s["dropped"]) == (50, 50, 0)
    assert rep["stopped"] == "end" and rep["ticks"] == 50
    # the backlog grows by one sample per tick: latency shows it (sample 49 at 24.5 ms, out at 49 ms)
    assert rep["outputs"]["x_out"]["latency_s"]["max"] == pytest.approx(49e-3 - 49 / 2000)

    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.zeros((50, 1)), rate_hz=4000, capacity=10), to="x")
    with pytest.raises(StreamError, match="never-drop source `array` has a backlog of 10"):
        sched.run(ticks=20)


@settings(derandomize=True, deadline=None, max_examples=40)
@given(arrivals=st.lists(st.integers(0, 3), min_size=1, max_size=30),
       policy=st.sampled_from(["latest", "queue", "never-drop"]),
       capacity=st.integers(1, 4), overflow=st.sampled_from(["drop-oldest", "drop-newest"]))
def test_policy_counts_match_a_model(arrivals, policy, capacity, overflow):
    """arrivals[i] samples arrive at tick i; the scheduler must deliver and drop exactly
    what a plain list model of the policy says."""
    times = np.repeat(np.arange(len(arrivals)) * 1e-3, arrivals)
    if not len(times):
        return
    values = np.arange(len(times), dtype=np.float32)[:, None]
    g = identity_graph({"x": (1,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(values, times=times, policy=policy, overflow=overflow,
                                 capacity=capacity if policy == "queue" else None), to="x")
    out = sched.add_sink("x_out", ArraySink())
    rep = sched.run(ticks=len(arrivals) + 40)

    q, delivered, dropped, k = [], [], 0, 0
    for n in range(len(arrivals) + 40):
        for _ in range(arrivals[n] if n < len(arrivals) else 0):
            if policy == "latest":
                dropped += len(q)
                q = [k]
            elif policy == "queue" and len(q) >= capacity:
                dropped += 1
                if overflow == "drop-oldest":
                    q = q[1:] + [k]
            else:
                q.append(k)
            k += 1
        if q:
            delivered.append(q.pop(0))
    s = rep["sources"]["array"]
    assert out.values[:, 0].astype(int).tolist() == delivered
    assert s["dropped"] == dropped
    assert s["received"] == s["delivered"] + s["dropped"] + s["rejected"] + s["queued"]


def test_stalled_source_holds_the_last_value_and_counts_misses():
    # a 100 Hz sensor that goes silent between 50 ms and 150 ms; a clock input makes the
    # graph compute x + 0 every tick, which shows the value the runtime holds for x
    g = tr.Graph(dt=1e-3, name="g")
    x, c = g.input("x", shape=(1,)), g.input("clk", shape=(1,))
    g.output("sum", g.add(tr.ann.Add(), x, c))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(SimulationSource(lambda t: None if 0.045 < t < 0.155 else np.array([t]),
                                      rate_hz=100, name="x"))
    sched.add_source(ArraySource(np.zeros((1000, 1))), to="clk")
    out = sched.add_sink("sum", ArraySink())
    rep = sched.run(ticks=200, keep_open=True)
    s = rep["sources"]["x"]
    assert s["received"] == 5 + 4  # 0..40 ms and 160..190 ms
    # silent after the 40 ms sample: first miss at 55 ms, then every 10 ms up to 155 ms
    assert s["missed"] == 11
    np.testing.assert_allclose(out.values[41:160, 0], 0.04, rtol=1e-6)  # held while silent
    assert out.values[160, 0] == pytest.approx(0.16)
    assert s["state"] == "running"
    assert sched.report()["sources"]["x"]["open"] is True
    sched.close()
    assert sched.report()["sources"]["x"]["open"] is False

    # silent for more than 3 periods: reported as stalled (and not before)
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(SimulationSource(lambda t: None if t > 0.025 else np.array([t]),
                                      rate_hz=100, name="x"))
    states = [sched.run(ticks=n, keep_open=True)["sources"]["x"]["state"] for n in (40, 5, 20)]
    assert states == ["running", "running", "stalled"]  # last sample at 20 ms; stalled after 50 ms
    sched.close()


def test_dead_source_is_marked_failed_and_the_loop_goes_on():
    def sensor(t):
        if t >= 0.02:
            raise OSError("device unplugged")
        return np.array([1.0 + t])

    g = identity_graph({"x": (1,), "y": (1,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(SimulationSource(sensor, rate_hz=100), to="x")
    sched.add_source(ArraySource(np.ones((100, 1)), rate_hz=1000), to="y")
    out_y = sched.add_sink("y_out", ArraySink())
    rep = sched.run(ticks=100)
    s = rep["sources"]["sim"]
    assert s["state"] == "failed" and "device unplugged" in s["error"]
    assert s["received"] == 2
    assert s["missed"] == 8  # 10 ms sample at t=10ms, then silent: misses at 25, 35, ... 95 ms
    assert len(out_y) == 100  # the other input kept flowing every tick


def test_nan_and_wrong_shapes_are_rejected_never_passed_on():
    vals = [np.array([1.0, 2.0]), np.array([np.nan, 3.0]), np.array([1.0, 2.0, 3.0]),
            np.array([4.0, np.inf]), "abc", np.array([5.0, 6.0])]
    g = identity_graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(vals, rate_hz=1000, policy="never-drop"), to="x")
    out = sched.add_sink("x_out", ArraySink())
    rep = sched.run(ticks=10)
    s = rep["sources"]["array"]
    assert out.values.tolist() == [[1, 2], [5, 6]]
    assert out.ticks.tolist() == [0, 5]
    assert (s["received"], s["delivered"], s["rejected"]) == (6, 2, 4)
    assert s["last_reject"].startswith("g.x: not numbers")
    assert "last reject: g.x: not numbers" in str(rep)


def test_a_simulation_mutating_one_buffer_does_not_change_values_already_taken():
    buf = np.zeros(2)

    def sim(t):
        buf[:] = t  # the same array every call, changed in place
        return buf

    g = identity_graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(SimulationSource(sim, rate_hz=1000, policy="queue", capacity=4), to="x")
    out = sched.add_sink("x_out", ArraySink())
    sched.run(ticks=3)
    np.testing.assert_allclose(out.values[:, 0], [0.0, 0.001, 0.002])


def test_sanitise_replaces_non_finite_with_the_last_good_value():
    vals = np.array([[np.nan, 1.0], [2.0, 3.0], [np.inf, 5.0], [-np.inf, np.nan]], np.float32)
    g = identity_graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(vals, invalid="sanitise"), to="x")
    out = sched.add_sink("x_out", ArraySink())
    rep = sched.run(ticks=4)
    assert out.values.tolist() == [[0, 1], [2, 3], [2, 5], [2, 5]]
    assert rep["sources"]["array"]["sanitised"] == 3
    assert rep["sources"]["array"]["rejected"] == 0


def test_invalid_raise_stops_with_a_clear_message():
    g = identity_graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    src = sched.add_source(ArraySource([np.zeros(2), np.array([0.0, np.nan])], invalid="raise"), to="x")
    with pytest.raises(StreamError, match=r"source `array` -> input `g.x`: NaN or inf at index \(1,\)"):
        sched.run(ticks=5)
    assert sched.report()["stopped"] == "error"


def test_spike_inputs_only_take_zeros_and_ones():
    g = tr.Graph(dt=1e-3, name="s")
    s = g.input("s", shape=(3,), domain="spike")
    g.output("v", g.add(tr.bridge.SpikeCount(window=1), s))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource([[1, 0, 1], [0.5, 0, 1], [0, 1, 1]]), to="s")
    out = sched.add_sink("v", ArraySink())
    rep = sched.run(ticks=3)
    assert rep["sources"]["array"]["rejected"] == 1
    # tick 1: rejected; a spike input presents a value once (hold=False), so zeros there
    assert out.values.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 1]]


def test_latency_and_deadline_misses_through_a_decoder_window():
    # a 25 Hz sensor into a spiking layer read out every 16 ticks: latency is deterministic
    g = tr.Graph(dt=1e-3, name="snn")
    x = g.input("x", shape=(4,))
    s = g.add(tr.bridge.RateEncoder(), x)
    s = g.add(tr.snn.LIF(beta=1.0, threshold=0.5), g.add(tr.snn.Dense(4, 4, weight=np.eye(4)), s))
    g.output("rate", g.add(tr.bridge.SpikeCount(window=16), s))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.full((8, 4), 0.5, np.float32), rate_hz=25), to="x")
    sched.add_sink("rate", deadline=10e-3)
    rep = sched.run(ticks=320)
    o = rep["outputs"]["rate"]
    assert o["values"] == 20
    # samples at 0, 40, 80, ... ms; windows close at ticks 15, 31, 47, ...: the first window
    # closing after each sample is 15 ms after it for sample 0, 7 ms for 40 ms (47), 15 ms for 80 ...
    assert o["latency_s"]["count"] == 8
    expected = []
    for k in range(8):
        ts = k * 40
        close = next(w for w in range(15, 400, 16) if w >= ts)
        expected.append((close - ts) * 1e-3)
    assert o["latency_s"]["max"] == pytest.approx(max(expected))
    assert o["deadline_misses"] == sum(e > 10e-3 for e in expected)


def test_two_runtimes_at_different_ticks_share_a_source():
    fast = identity_graph({"imu": (2,)}, dt=1e-3, name="fast")
    slow = identity_graph({"imu": (2,)}, dt=5e-3, name="slow")
    sched = Scheduler({"fast": tr.Runtime(fast), "slow": tr.Runtime(slow)})
    assert sched.dt == 1e-3
    sched.add_source(SimulationSource(lambda t: np.array([t, 1.0]), rate_hz=200), to="imu")
    a = sched.add_sink("fast.imu_out", ArraySink())
    b = sched.add_sink("slow.imu_out", ArraySink())
    rep = sched.run(ticks=20)
    assert a.ticks.tolist() == [0, 5, 10, 15] and b.ticks.tolist() == [0, 5, 10, 15]
    assert rep["sources"]["sim"]["targets"] == ["fast.imu", "slow.imu"]
    assert set(rep["outputs"]) == {"fast.imu_out", "slow.imu_out"}
    with pytest.raises(StreamError, match="not a whole multiple"):
        Scheduler([tr.Runtime(fast), tr.Runtime(identity_graph({"x": (1,)}, dt=1.5e-3))])


def test_dict_valued_simulation_feeds_several_inputs_and_closes_the_loop():
    g = identity_graph({"imu": (2,), "speed": (1,)})
    state = {"cmd": 0.0, "calls": []}

    def sim(t):
        state["calls"].append((round(t, 6), state["cmd"]))
        if t > 0.05:
            return END
        return {"imu": np.array([t, state["cmd"]]), "speed": np.array([5.0])}

    sched = Scheduler(tr.Runtime(g))
    sched.add_source(SimulationSource(sim, rate_hz=100))
    sched.add_sink("imu_out", lambda v: state.__setitem__("cmd", float(v[0]) + 1))
    rep = sched.run()  # until the simulation says END
    assert rep["stopped"] == "end"
    # the command computed from the sample at t acts from the next call on
    assert [c[0] for c in state["calls"][:3]] == [0.0, 0.01, 0.02]
    np.testing.assert_allclose([c[1] for c in state["calls"][:3]], [0.0, 1.0, 1.01], rtol=1e-6)
    assert rep["sources"]["sim"]["targets"] == ["g.imu", "g.speed"]
    assert rep["sources"]["sim"]["state"] == "ended"


def test_binding_errors_name_the_inputs():
    g = identity_graph({"a": (1,), "b": (2,)})
    sched = Scheduler(tr.Runtime(g))
    with pytest.raises(StreamError, match="no graph input named 'c'; inputs are a, b"):
        sched.add_source(ArraySource(np.zeros((3, 1))), to="c")
    with pytest.raises(StreamError, match="say which input it feeds with to=...; free inputs: g.a, g.b"):
        sched.add_source(ArraySource(np.zeros((3, 1))))
    with pytest.raises(StreamError, match="no output named 'z'; outputs are a_out, b_out"):
        sched.add_sink("z", [])
    with pytest.raises(StreamError, match="policy must be one of latest, queue, never-drop"):
        ArraySource(np.zeros((3, 1)), policy="newest")
    sched.add_source(ArraySource(np.zeros((3, 1)), name="first"), to="a")
    src = sched.add_source(ArraySource(np.zeros((3, 2)), name="first"))  # the only free input
    assert src.name == "first2"
    assert sched.report()["sources"]["first2"]["targets"] == ["g.b"]


class Recorder(Source):
    """A live source that records open/close and can be told to raise Ctrl-C."""
    kind = "rec"

    def __init__(self, interrupt_at=None, **kw):
        super().__init__(**kw)
        self.events, self.interrupt_at = [], interrupt_at

    def open(self, clock, dt):
        self.events.append("open")

    def poll(self, t):
        if self.interrupt_at is not None and t >= self.interrupt_at:
            raise KeyboardInterrupt
        return [(t, np.array([t]))]

    def close(self):
        self.events.append("close")


class ClosingSink(tr.stream.Sink):
    def __init__(self):
        self.events = []

    def open(self, clock, dt):
        self.events.append("open")

    def write(self, value, tick, t):
        pass

    def close(self):
        self.events.append("close")


def test_ctrl_c_and_errors_close_every_source_and_sink():
    g = identity_graph({"x": (1,), "y": (1,)})
    sched = Scheduler(tr.Runtime(g))
    a = sched.add_source(Recorder(interrupt_at=0.01), to="x")
    b = sched.add_source(Recorder(name="other"), to="y")
    sink = sched.add_sink("x_out", ClosingSink())
    rep = sched.run(ticks=100)
    assert rep["stopped"] == "interrupted" and rep["ticks"] == 10
    assert a.events == b.events == sink.events == ["open", "close"]
    with pytest.raises(StreamError, match="make a new Scheduler"):
        sched.run(ticks=1)

    def boom(v):
        raise ValueError("sink bug")

    sched = Scheduler(tr.Runtime(g))
    c = sched.add_source(Recorder(), to="x")
    sched.add_sink("x_out", boom)
    with pytest.raises(ValueError, match="sink bug"):
        sched.run(ticks=5)
    assert c.events == ["open", "close"]


def test_keep_open_continues_the_same_stream():
    g = identity_graph({"x": (1,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.arange(30, dtype=np.float32)[:, None], rate_hz=500), to="x")
    out = sched.add_sink("x_out", ArraySink())
    sched.run(ticks=20, keep_open=True)
    with pytest.raises(StreamError, match="bind every source and sink before the first run"):
        sched.add_source(ArraySource(np.zeros((3, 1))), to="x")
    rep = sched.run(ticks=40)
    assert out.values[:, 0].tolist() == list(range(30))
    assert out.ticks.tolist() == list(range(0, 60, 2))
    assert rep["ticks"] == 60 and rep["time_s"] == pytest.approx(0.06)


def test_wall_clock_run_reports_lateness():
    g = identity_graph({"x": (4,), "y": (1,)})
    sched = Scheduler(tr.Runtime(g), clock="wall")
    sched.add_source(SimulationSource(lambda t: np.full(4, t), rate_hz=200), to="x")
    sched.add_source(Recorder(), to="y")
    sched.add_sink("x_out", deadline=5e-3)
    statuses = []
    rep = sched.run(seconds=2.0, on_status=lambda r: statuses.append(r.status_line()),
                    status_every=0.5)
    assert rep["clock"] == "wall" and rep["ticks"] == 2000
    late = rep["lateness_s"]
    assert late["count"] == 2000 and late["p50"] is not None and late["p99"] >= late["p50"]
    assert rep["late_ticks"] >= 0 and rep["wall_s"] >= 1.9
    assert rep["sources"]["sim"]["received"] == 400
    assert rep["outputs"]["x_out"]["latency_s"]["count"] == 400
    assert statuses and statuses[0].startswith("t=")
    text = str(rep)
    assert "tick lateness: p50" in text and "x_out" in text


@settings(derandomize=True, deadline=None, max_examples=15)
@given(rate_a=st.sampled_from([30.0, 47.0, 200.0, 1000.0]), rate_b=st.sampled_from([13.0, 100.0, 333.0]),
       ticks=st.integers(20, 120), seed=st.integers(0, 3))
def test_scheduler_matches_stepping_the_runtime_by_hand(rate_a, rate_b, ticks, seed):
    """A hybrid graph with held inputs: the scheduler's outputs equal those of rt.step called
    with each sample at the first tick at or after its time (never-drop, so one per tick)."""
    rng = np.random.default_rng(seed)
    g = tr.Graph(dt=1e-3, name="h")
    a, b = g.input("a", shape=(3,)), g.input("b", shape=(2,))
    x = g.add(tr.ann.Concat(), a, b)
    s = g.add(tr.bridge.RateEncoder(), g.add(tr.ann.ReLU(), x))
    v = g.add(tr.snn.LIF(beta=0.8), g.add(tr.snn.Dense(5, 4, seed=seed), s))
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), v))
    va = rng.random((int(ticks * rate_a / 1000) + 2, 3)).astype(np.float32)
    vb = rng.random((int(ticks * rate_b / 1000) + 2, 2)).astype(np.float32)

    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(va, rate_hz=rate_a), to="a")
    sched.add_source(ArraySource(vb, rate_hz=rate_b), to="b")
    got = sched.add_sink("count", ArraySink())
    sched.run(ticks=ticks)

    rt = tr.Runtime(g)
    queues, taken = {"a": [], "b": []}, {"a": 0, "b": 0}
    expect, when = [], []
    for n in range(ticks):
        for name, vals, rate in (("a", va, rate_a), ("b", vb, rate_b)):
            k = len(queues[name])
            while k < len(vals) and k / rate <= n * 1e-3 + 1e-9:
                queues[name].append(vals[k])
                k += 1
        frame = {}
        for name in ("a", "b"):
            if taken[name] < len(queues[name]):
                frame[name] = queues[name][taken[name]]
                taken[name] += 1
        out = rt.step(frame)
        if "count" in out:
            expect.append(out["count"])
            when.append(n)
    assert got.ticks.tolist() == when
    np.testing.assert_array_equal(got.values, np.array(expect).reshape(got.values.shape))
