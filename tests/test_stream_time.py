"""Issue 20, time: sensor timestamps end to end (serial frames and lines that carry them, a
USB adapter's bunching undone), per-output latency that follows the output's own inputs, and
the audio sample rate checked against the graph. Simulated clock throughout."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tianrt as tr
from tianrt.stream import ArraySink, ArraySource, Scheduler, StreamError
from tianrt.stream.framing import encode_frame, encode_line


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


def write_wav(path, x, rate):
    """x: (samples, channels) floats in [-1, 1), written as 16-bit PCM."""
    import wave
    x = np.asarray(x).reshape(len(x), -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(x * 32767).astype("<i2").tobytes())


@pytest.fixture
def cd_wav(tmp_path):
    """0.5 s of a 440 Hz tone at 44.1 kHz, stereo (the second channel at half amplitude)."""
    t = np.arange(22050) / 44100
    tone = np.sin(2 * np.pi * 440 * t)
    write_wav(tmp_path / "cd.wav", np.stack([0.5 * tone, 0.25 * tone], 1), 44100)
    return tmp_path / "cd.wav"


def test_audio_at_another_rate_than_the_graph_takes_is_refused(cd_wav, capsys):
    """Wrong result 3: a 44.1 kHz stereo wav into an input of 160 samples at 100 Hz (16 kHz)."""
    g = identity_graph({"audio": (160,)}, rates={"audio": 100})
    sched = Scheduler(tr.Runtime(g))
    with pytest.raises(StreamError, match=r"cd.wav' is 44100 Hz \(2 channel\(s\)\), but input `g.audio` "
                                          r"\(160 samples at 100 Hz\) takes 16000 Hz; refused .*resample=True"):
        sched.add_source(tr.stream.AudioSource(cd_wav))
    # an input without a declared rate: the rate is stated with target_rate (--audio-rate)
    g2 = identity_graph({"audio": (160,)})
    with pytest.raises(StreamError, match="but target_rate= takes 16000 Hz; refused"):
        tr.stream.AudioSource(cd_wav, target_rate=16000)
    with pytest.raises(StreamError, match=r"target_rate=8000, but input `g.audio` takes 160 samples "
                                          r"at 100 Hz = 16000 Hz"):
        Scheduler(tr.Runtime(g)).add_source(tr.stream.AudioSource(cd_wav, target_rate=8000, resample=True))
    # the command line says the same and exits non-zero
    tr.save(g2, cd_wav.parent / "m.tnr")
    from tianrt.cli import main
    rc = main(["stream", str(cd_wav.parent / "m.tnr"), "--audio", str(cd_wav), "--audio-rate", "16000",
               "--clock", "sim", "--quiet"])
    assert rc == 1 and "refused rather than played at the wrong speed" in capsys.readouterr().err


def test_audio_is_resampled_when_asked(cd_wav, capsys):
    g = identity_graph({"audio": (160,)}, rates={"audio": 100})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.AudioSource(cd_wav, resample=True, policy="never-drop"))
    out = sched.add_sink("audio_out", ArraySink())
    rep = sched.run()
    s = rep["sources"]["audio"]
    assert (s["received"], s["sample_rate"], s["resampled_from"]) == (50, 16000, 44100)  # 0.5 s
    assert out.ticks.tolist() == list(range(10, 501, 10))  # 10 ms chunks, stamped at their end
    # the mono mix (0.375 x the tone) at 16 kHz, away from the edges (ReLU keeps its top half)
    y = out.values.reshape(-1)
    ref = np.maximum(0.375 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000), 0)
    assert np.abs(y - ref)[100:-100].max() < 1e-3
    from tianrt.cli import main
    tr.save(identity_graph({"audio": (160,)}), cd_wav.parent / "m.tnr")
    rc = main(["stream", str(cd_wav.parent / "m.tnr"), "--audio", str(cd_wav), "--audio-rate", "16000",
               "--resample", "--clock", "sim", "--quiet"])
    assert rc == 0 and "resampled_from 44100" in capsys.readouterr().out


def test_resampler_streams_chunk_by_chunk_like_the_whole_signal_and_stops_aliases():
    from tianrt.stream.resample import Resampler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 2)).astype(np.float32)
    whole = Resampler(44100, 16000, 2)
    a = np.concatenate([whole.feed(x), whole.flush()])
    parts = Resampler(44100, 16000, 2)
    cuts = np.sort(rng.integers(0, 5000, 30))
    b = np.concatenate([parts.feed(c) for c in np.split(x, cuts)] + [parts.flush()])
    assert a.shape == b.shape == (-(-5000 * 160 // 441), 2)
    np.testing.assert_allclose(a, b, atol=1e-6)
    # a 10 kHz tone is above the 8 kHz Nyquist frequency of 16 kHz: filtered out (< -80 dB)
    t = np.arange(44100) / 44100
    r = Resampler(44100, 16000)
    y = np.concatenate([r.feed(np.sin(2 * np.pi * 10000 * t)), r.flush()])
    assert np.abs(y[100:-100]).max() < 1e-4
    # upsampling keeps a tone in band
    r = Resampler(8000, 16000)
    y = np.concatenate([r.feed(np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)), r.flush()])[:, 0]
    np.testing.assert_allclose(y[100:-100], np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)[100:-100],
                               atol=1e-3)


class UsbAdapterClock(tr.stream.SimClock):
    """Simulated time, plus a USB-serial adapter between a 200 Hz IMU and a pty: samples are
    taken every 5 ms (stamped on the IMU's own clock, which reads 1000 s at stream time 0) and
    reach the host in one burst every 16 ms."""

    def __init__(self, master_fd, fmt, n=1000, skip=()):
        super().__init__()
        self.fd, self.fmt, self.port = master_fd, fmt, None
        enc = encode_frame if fmt == "frames" else encode_line
        self.samples = [(5e-3 * (k + 1), enc(np.full(3, k, np.float32), t=1000 + 5e-3 * (k + 1), seq=k))
                        for k in range(n) if k not in skip]

    def wait_until(self, t):
        import os
        import time
        super().wait_until(t)
        if round(t * 1e3) % 16 or self.port is None:
            return
        burst = b""
        while self.samples and self.samples[0][0] <= t + 1e-9:
            burst += self.samples.pop(0)[1]
        if burst:
            os.write(self.fd, burst)
            for _ in range(2000):  # the kernel moves pty bytes asynchronously: let them arrive
                if self.port.in_waiting >= len(burst):
                    break
                time.sleep(0.001)


@pytest.mark.parametrize("fmt", ["frames", "lines"])
def test_serial_samples_carry_their_sensor_time_through_a_bursty_usb_adapter(fmt):
    """Wrong result 1: a 200 Hz IMU behind an adapter that flushes every 16 ms. With the
    samples' own timestamps, latency is their real age, and with delay= they land on the tick
    grid 5 ticks apart, as they were taken; a skipped sequence number counts as lost."""
    import os
    master, slave = os.openpty()
    try:
        runs = {}
        for delay in (0.0, 0.016):
            clock = UsbAdapterClock(master, fmt, skip={600})
            g = identity_graph({"imu": (3,)}, rates={"imu": 200})
            sched = Scheduler(tr.Runtime(g), clock=clock)
            src = sched.add_source(tr.stream.SerialSource(os.ttyname(slave), format=fmt, delay=delay),
                                   to="imu")
            out = sched.add_sink("imu_out", ArraySink())
            sched.open()
            clock.port = src.port
            rep = sched.run(seconds=5.05)
            runs[delay] = (rep, out)
        rep, out = runs[0.0]
        s = rep["sources"]["serial"]
        assert (s["received"], s["lost"], s["timestamps"]) == (999, 1, "sensor")
        # delivered on the ticks of the bursts (16, 17, 18, 32, ...), but the latency is the
        # samples' age: up to 15 ms (taken at 65 ms, delivered at 80 ms with 3 more), not ~1 ms
        assert out.ticks[:6].tolist() == [16, 17, 18, 32, 33, 34]
        lat = rep["outputs"]["imu_out"]["latency_s"]
        assert lat["max"] == pytest.approx(15e-3, abs=1e-6) and lat["p50"] > 4e-3

        rep, out = runs[0.016]
        k = out.values[:, 0].astype(int)  # which sample each delivery is
        taken_ms = 5 * (k + 1)
        late = taken_ms >= 80  # the offset estimate is exact once a burst held a 0 ms old sample
        assert (out.ticks[late] == taken_ms[late] + 16).all()  # on the grid, 5 ticks apart
        assert np.diff(out.ticks[late]).tolist() == [10 if b == 601 else 5 for b in k[late][1:]]
        # every sample is held to 16 ms after its (estimated) sensor time
        lat = rep["outputs"]["imu_out"]["latency_s"]
        assert lat["max"] == pytest.approx(16e-3, abs=1e-6) and lat["p50"] == pytest.approx(16e-3, abs=1e-6)
    finally:
        os.close(master)
        os.close(slave)


@settings(derandomize=True, deadline=None, max_examples=60)
@given(samples=st.lists(st.tuples(
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(0, 2**40).map(lambda ns: ns * 1e-9)),
    st.one_of(st.none(), st.integers(0, 2**32 - 2)),
    st.binary(max_size=12)), min_size=1, max_size=12),
    split=st.integers(1, 7))
def test_stamped_and_plain_frames_and_lines_round_trip_through_garbage(samples, split):
    """Frames: every frame comes back with its stamps whatever garbage sits between them and
    however the bytes are split; lines: the same, with the garbage on lines of its own."""
    from tianrt.stream.framing import FrameReader, LineReader

    frames = b"".join(junk.replace(b"\xa5", b"") + encode_frame(np.float32(v), t=t, seq=q)
                      for v, t, q, junk in samples)
    r = FrameReader()
    got = [rec for i in range(0, len(frames), split) for rec in r.feed_records(frames[i:i + split])]
    assert [(np.frombuffer(g.payload, "<f4").tolist(), g.t, g.seq) for g in got] == \
        [(np.float32(v).tolist(), None if t is None else round(t * 1e9) * 1e-9, q) for v, t, q, _ in samples]
    lines = b"".join(b"junk!\n" * bool(junk) + encode_line(np.float32(v), precision=9, t=t, seq=q)
                     for v, t, q, junk in samples)
    r = LineReader()
    got = [rec for i in range(0, len(lines), split) for rec in r.feed_records(lines[i:i + split])]
    assert len(got) == len(samples) and r.bad_lines == sum(bool(j) for *_, j in samples)
    for g, (v, t, q, _) in zip(got, samples):
        assert g.payload.astype(np.float32).tolist() == np.float32(v).tolist() and g.seq == q
        assert (g.t is None) == (t is None) and (t is None or abs(g.t - t) < 1e-9)


def test_a_grabber_thread_stamps_frames_with_their_own_time(tmp_path):
    """Frames a grabber thread reads in a burst keep their own spacing (CAP_PROP_POS_MSEC):
    a 25 fps file read as fast as possible gives stamps 40 ms apart, not microseconds."""
    import time

    import cv2
    vw = cv2.VideoWriter(str(tmp_path / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for k in range(4):
        vw.write(np.full((24, 32, 3), 40 * k, np.uint8))
    vw.release()
    cam = tr.stream.CameraSource(str(tmp_path / "c.avi"), threaded=True)
    cam.fit((1, 24, 32), "tensor")
    clock = tr.stream.WallClock()
    clock.start()
    cam.open(clock, 1e-3)
    try:
        for _ in range(500):
            if not cam._thread.is_alive():
                break
            time.sleep(0.002)
        got = cam.poll(clock.now())
    finally:
        cam.close()
    assert len(got) == 4 and cam.time_base == "sensor" and cam.ended
    np.testing.assert_allclose(np.diff([ts for ts, _ in got]), 0.04, atol=1e-6)
    assert got[-1][0] <= clock.now()
    untimed = tr.stream.CameraSource(str(tmp_path / "c.avi"))
    untimed.fit((1, 24, 32), "tensor")
    untimed.open(tr.stream.SimClock(), 1e-3)
    assert untimed.time_base == "due"
    untimed.close()


def test_a_stamped_serial_sink_passes_stream_time_and_sequence_on():
    """Two machines in a chain: outputs written stamped are read back with their times."""
    import serial

    from tianrt.stream.framing import FrameReader
    port = serial.serial_for_url("loop://", timeout=0)
    g = identity_graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(ArraySource(np.ones((4, 2)), rate_hz=200), to="x")
    sched.add_sink("x_out", tr.stream.SerialSink(port, format="frames", stamped=True))
    sched.run(ticks=20)
    recs = FrameReader().feed_records(port.read(port.in_waiting))
    assert [(r.seq, round(r.t, 6)) for r in recs] == [(0, 0.0), (1, 0.005), (2, 0.01), (3, 0.015)]
