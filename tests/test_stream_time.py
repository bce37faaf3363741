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
