"""Record and replay (issue 20): a wall-clock run written to MCAP replays bit for bit on the
simulated clock; the file reads back with the mcap library's own reader; camera frames are
foxglove.CompressedImage PNGs."""
import json

import numpy as np
import pytest

import tianrt as tr
from tianrt.stream import ArraySink, Scheduler, Source

mcap = pytest.importorskip("mcap")


class Jittery(Source):
    """A live source whose samples depend on wall-clock arrival: a different stream each run."""
    kind = "jitter"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.rng = np.random.default_rng()
        self.n = 0

    def poll(self, t):
        self.n += 1
        if self.rng.random() < 0.3:
            return []
        return [(t - 1e-4 * self.rng.random(), self.rng.random(3).astype(np.float32))]


def hybrid_graph():
    g = tr.Graph(dt=1e-3, name="h")
    a, cam = g.input("a", shape=(3,)), g.input("camera", shape=(1, 6, 8))
    x = g.add(tr.ann.Concat(), a, g.add(tr.ann.Flatten(), g.add(tr.ann.MaxPool2d(2), cam)))
    s = g.add(tr.bridge.RateEncoder(), x)
    v = g.add(tr.snn.LIF(beta=0.8), g.add(tr.snn.Dense(15, 4, seed=1), s))
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), v))
    g.output("a_out", g.add(tr.ann.ReLU(), a))
    return g


@pytest.fixture
def clip(tmp_path):
    import cv2
    vw = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, (16, 12))
    rng = np.random.default_rng(0)
    for k in range(10):
        vw.write(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    vw.release()
    return tmp_path / "clip.avi"


def test_a_wall_clock_run_replays_bit_for_bit_on_the_simulated_clock(tmp_path, clip):
    g = hybrid_graph()
    sched = Scheduler(tr.Runtime(g), clock="wall")
    sched.add_source(Jittery(), to="a")
    sched.add_source(tr.stream.CameraSource(str(clip)))
    sched.record(tmp_path / "run.mcap")
    live = {o: sched.add_sink(o, ArraySink()) for o in ("count", "a_out")}
    rep = sched.run(seconds=0.25)
    assert rep["start_unix_s"] > 1.6e9

    replay = Scheduler(tr.Runtime(hybrid_graph()))  # simulated clock
    srcs = replay.replay(tmp_path / "run.mcap")
    assert sorted(s.name for s in srcs) == ["camera", "jitter"]
    again = {o: replay.add_sink(o, ArraySink()) for o in ("count", "a_out")}
    rep2 = replay.run()  # as many ticks as were recorded
    assert rep2["ticks"] == rep["ticks"] and rep2["stopped"] == "ticks"
    for o in ("count", "a_out"):
        assert len(live[o]) > 5
        assert again[o].ticks.tolist() == live[o].ticks.tolist()
        np.testing.assert_array_equal(again[o].values, live[o].values)  # bit for bit
    for name in ("camera", "jitter"):
        assert rep2["sources"][name]["delivered"] == rep["sources"][name]["delivered"]
    # the recording holds the outputs too, equal to what the sinks got
    rec = tr.stream.record.Recording(tmp_path / "run.mcap")
    ticks, values = rec.outputs["count"]
    assert ticks.tolist() == live["count"].ticks.tolist()
    np.testing.assert_array_equal(values, live["count"].values)


def test_a_recording_reads_back_with_the_mcap_librarys_own_reader(tmp_path, clip):
    import base64

    import cv2
    from mcap.reader import make_reader

    g = hybrid_graph()
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.ArraySource(np.full((5, 3), 0.5, np.float32), rate_hz=100), to="a")
    cam = sched.add_source(tr.stream.CameraSource(str(clip)))
    frames = sched.add_sink("a_out", ArraySink())
    sched.record(tmp_path / "r.mcap")
    sched.run(ticks=100)
    assert len(frames) == 5

    with open(tmp_path / "r.mcap", "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        topics = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        assert topics == {"/h.a": "tianrt.Tensor", "/h.camera/image": "foxglove.CompressedImage",
                          "/tianrt/delivery": "tianrt.Delivery", "/tianrt/skip": "tianrt.Skip",
                          "/output/count": "tianrt.Tensor",
                          "/output/a_out": "tianrt.Tensor"}
        assert all(s.encoding == "jsonschema" for s in summary.schemas.values())
        meta = {m.name: m.metadata for m in reader.iter_metadata()}
        assert meta["tianrt"]["format"] == "tianrt-stream-1" and meta["tianrt"]["dt"] == "0.001"
        start = int(meta["tianrt"]["start_unix_ns"])
        images, tensors = [], []
        for schema, channel, message in reader.iter_messages(topics=["/h.camera/image", "/h.a"]):
            body = json.loads(message.data)
            if schema.name == "foxglove.CompressedImage":
                assert body["format"] == "png" and body["frame_id"] == "h.camera"
                images.append((message.log_time - start, cv2.imdecode(
                    np.frombuffer(base64.b64decode(body["data"]), np.uint8), cv2.IMREAD_UNCHANGED)))
            else:
                tensors.append(body)
    # 50 fps: frames at 0, 20, 40, 60, 80 ms (absolute times: the run's start + stream time)
    assert [t for t, _ in images] == [0, 20_000_000, 40_000_000, 60_000_000, 80_000_000]
    assert images[0][1].shape == (6, 8) and images[0][1].dtype == np.uint8  # gray, as the input
    assert [b["tick"] for b in tensors] == [0, 10, 20, 30, 40]
    assert tensors[0]["shape"] == [3] and tensors[0]["input"] == "h.a"
    assert cam.kind == "camera"


def test_stream_command_records_a_wall_clock_run_and_replays_it(tmp_path, clip):
    from tianrt.cli import main

    tr.save(hybrid_graph(), tmp_path / "h.tnr")
    np.save(tmp_path / "a.npy", np.random.default_rng(1).random((40, 3), dtype=np.float32))
    rc = main(["stream", str(tmp_path / "h.tnr"), "--array", f"a={tmp_path / 'a.npy'}@200",
               "--camera", str(clip), "--seconds", "0.15", "--quiet",
               "--record", str(tmp_path / "run.mcap"), "--save", str(tmp_path / "live.npz")])
    assert rc == 0
    rc = main(["stream", str(tmp_path / "h.tnr"), "--replay", str(tmp_path / "run.mcap"), "--quiet",
               "--save", str(tmp_path / "again.npz")])
    assert rc == 0
    live, again = np.load(tmp_path / "live.npz"), np.load(tmp_path / "again.npz")
    for k in ("count", "count__ticks", "a_out", "a_out__ticks"):
        np.testing.assert_array_equal(again[k], live[k])
    assert live["count__unix_s"][0] > 1.6e9  # absolute wall-clock times
    assert main(["stream", str(tmp_path / "h.tnr"), "--replay", str(tmp_path / "run.mcap"),
                 "--camera", str(clip)]) == 1


def test_a_run_that_skipped_ticks_replays_the_same_skips(tmp_path):
    """Overrun policy skip on a (deterministic) slow machine: the replay skips the same
    ticks, so a spiking network's state follows the recorded run bit for bit."""
    class SlowMachine(tr.stream.Clock):
        kind, realtime = "slow", True

        def __init__(self):
            self.t = 0.0

        def start(self, at=0.0):
            self.t = max(self.t, at)

        def now(self):
            return self.t

        def wait_until(self, t):
            self.t = max(self.t, t)

    clock = SlowMachine()
    g = hybrid_graph()
    sched = Scheduler(tr.Runtime(g), clock=clock, overrun="skip", max_lateness=2e-3)
    rng = np.random.default_rng(3)
    sched.add_source(tr.stream.ArraySource(rng.random((300, 3), dtype=np.float32), rate_hz=1000,
                                           policy="latest"), to="a")
    sched.add_source(tr.stream.ArraySource(rng.random((20, 1, 6, 8), dtype=np.float32), rate_hz=50,
                                           policy="latest"), to="camera")
    sched.add_sink("a_out", lambda v: setattr(clock, "t", clock.t + 2.5e-3))  # a slow step
    sched.record(tmp_path / "skip.mcap")
    live = sched.add_sink("count", ArraySink())
    rep = sched.run(ticks=300)
    assert rep["skipped_ticks"] > 50

    replay = Scheduler(tr.Runtime(hybrid_graph()))
    replay.replay(tmp_path / "skip.mcap")
    again = replay.add_sink("count", ArraySink())
    rep2 = replay.run()
    assert rep2["skipped_ticks"] == rep["skipped_ticks"]
    assert again.ticks.tolist() == live.ticks.tolist()
    np.testing.assert_array_equal(again.values, live.values)


def test_an_application_logs_its_own_topics_next_to_the_stream(tmp_path):
    """What a closed-loop demo adds to a recording: the controls it applied and the camera
    image it rendered, in Foxglove's image schema; replay ignores them."""
    from mcap.reader import make_reader

    g = tr.Graph(dt=1e-3, name="g")
    g.output("torque", g.add(tr.ann.ReLU(), g.input("imu", shape=(2,))))
    sched = Scheduler(tr.Runtime(g))
    rec = sched.record(tmp_path / "ride.mcap")
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0] = 200  # red

    def plant(t):
        rec.log("/camera/rendered", frame, t)
        return np.array([t, 1.0])

    sched.add_source(tr.stream.SimulationSource(plant, rate_hz=100), to="imu")
    sched.add_sink("torque", lambda v, t: rec.log("/controls/steer_torque", v * 2, t))
    sched.run(ticks=50)
    with open(tmp_path / "ride.mcap", "rb") as f:
        summary = make_reader(f).get_summary()
        topics = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
    assert topics["/camera/rendered"] == "foxglove.CompressedImage"
    assert topics["/controls/steer_torque"] == "tianrt.Tensor"
    back = tr.stream.record.Recording(tmp_path / "ride.mcap")
    assert len(back.logs["/camera/rendered"]) == 5 and len(back.logs["/controls/steer_torque"]) == 5
    np.testing.assert_array_equal(back.logs["/camera/rendered"][0][1], frame)  # RGB kept
    assert back.logs["/controls/steer_torque"][1][0] == pytest.approx(0.01)
    with pytest.raises(tr.stream.StreamError, match="the recording is not open"):
        rec.log("/late", np.zeros(2), 0.1)
    replay = Scheduler(tr.Runtime(g))
    replay.replay(tmp_path / "ride.mcap")
    assert replay.run()["sources"]["sim"]["delivered"] == 5


def test_rejected_samples_are_recorded_with_their_reason(tmp_path):
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("x", shape=(2,))))
    sched = Scheduler(tr.Runtime(g))
    vals = [np.array([1.0, 2.0]), np.array([np.nan, 3.0]), np.array([1.0, 2.0, 3.0]), "abc"]
    sched.add_source(tr.stream.ArraySource(vals, rate_hz=1000), to="x")
    sched.record(tmp_path / "r.mcap")
    rep = sched.run(ticks=5)
    assert rep["sources"]["array"]["rejected"] == 3
    back = tr.stream.record.Recording(tmp_path / "r.mcap")
    rej = back.rejected["g.x"]
    assert [r["tick"] for r in rej] == [1, 2, 3]
    assert rej[0]["reason"] == "NaN or inf at index (0,)" and rej[0]["shape"] == [2]
    assert rej[1]["reason"] == "shape (3,), expected (2,)"
    assert rej[2]["reason"].startswith("not numbers") and rej[2]["repr"] == "'abc'"
    assert len(back.samples["array"]) == 1  # only the good sample is replayed
