"""Device sources on the simulated clock: a video written by cv2.VideoWriter read back
through the camera source, wav files in chunks, serial frames and lines over pyserial's
loop:// and a pty pair (with garbage between frames), and the serial sink."""
import os
import time
import wave

import cv2
import numpy as np
import pytest
import serial

import tianrt as tr
from tianrt.stream import ArraySink, Scheduler, StreamError
from tianrt.stream.framing import FrameReader, encode_frame


def graph(shapes, dt=1e-3):
    g = tr.Graph(dt=dt, name="g")
    for k, shape in shapes.items():
        g.output(f"{k}_out", g.add(tr.ann.ReLU(), g.input(k, shape=shape)))
    return g


def write_video(path, n=12, fps=25.0, size=(64, 48)):
    """Frames of uniform gray level 20*k, with a white square marking the frame's index."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert vw.isOpened()
    levels = []
    for k in range(n):
        img = np.full((size[1], size[0], 3), 20 * k, np.uint8)
        levels.append(20 * k)
        vw.write(img)
    vw.release()
    return levels


def test_video_file_through_the_camera_source(tmp_path):
    path = tmp_path / "clip.avi"
    levels = write_video(path)
    g = graph({"camera": (1, 24, 32)})  # half size, gray: the source fits frames to it
    sched = Scheduler(tr.Runtime(g))
    cam = sched.add_source(tr.stream.CameraSource(str(path)))
    out = sched.add_sink("camera_out", ArraySink())
    rep = sched.run()  # until the file ends
    assert rep["stopped"] == "end"
    s = rep["sources"]["camera"]
    assert (s["received"], s["delivered"], s["dropped"], s["rejected"]) == (12, 12, 0, 0)
    assert s["state"] == "ended" and cam.cap is None  # closed
    assert out.values.shape == (12, 1, 24, 32)
    assert out.ticks.tolist() == [40 * k for k in range(12)]  # 25 fps on a 1 ms tick
    np.testing.assert_allclose(out.values.mean(axis=(1, 2, 3)), np.array(levels) / 255, atol=0.02)


def test_camera_colour_layouts_and_bad_inputs(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, n=2)
    cam = tr.stream.CameraSource(str(path), rate_hz=10)
    cam.fit((3, 12, 16), "tensor")
    assert (cam.size, cam.gray, cam.layout) == ((16, 12), False, "chw")
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    x = cam.convert(frame)
    assert x.shape == (3, 12, 16) and x[2].min() == 1.0 and x[0].max() == 0.0  # RGB order
    with pytest.raises(StreamError, match=r"cannot feed an input of shape \(5,\)"):
        tr.stream.CameraSource(str(path)).fit((5,), "tensor")
    with pytest.raises(StreamError, match="no video file"):
        tr.stream.CameraSource(str(tmp_path / "missing.avi"))
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 10)
    sched = Scheduler(tr.Runtime(graph({"camera": (1, 24, 32)})))
    sched.add_source(tr.stream.CameraSource(str(junk), rate_hz=30))
    with pytest.raises(StreamError, match="OpenCV cannot open video file"):
        sched.run(ticks=3)


def write_wav(path, x, rate, width=2, channels=1):
    ints = np.round(np.asarray(x) * (2 ** (8 * width - 1) - 1)).astype("<i2" if width == 2 else "<i4")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())


def test_wav_file_in_10ms_chunks_lands_on_every_tenth_tick(tmp_path):
    rate = 8000
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate // 4) / rate)  # 250 ms
    write_wav(tmp_path / "tone.wav", x, rate)
    g = graph({"audio": (80,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.AudioSource(tmp_path / "tone.wav"))
    out = sched.add_sink("audio_out", ArraySink())
    rep = sched.run()
    assert out.ticks.tolist() == list(range(10, 251, 10))
    # ReLU keeps the positive half: compare with the tone, to 16-bit precision
    np.testing.assert_allclose(out.values.reshape(-1), np.maximum(x, 0), atol=1e-4)
    s = rep["sources"]["audio"]
    assert (s["received"], s["dropped"], s["padded"]) == (25, 0, 0)


def test_stereo_wav_channels_first_and_a_padded_last_chunk(tmp_path):
    rate = 1000
    left, right = np.linspace(0, 0.5, 105), np.linspace(0.5, 0, 105)
    inter = np.stack([left, right], axis=1).reshape(-1)
    write_wav(tmp_path / "st.wav", inter, rate, channels=2)
    g = graph({"audio": (2, 20)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.AudioSource(str(tmp_path / "st.wav")))
    out = sched.add_sink("audio_out", ArraySink())
    rep = sched.run()
    assert out.values.shape == (6, 2, 20) and out.ticks.tolist() == [20, 40, 60, 80, 100, 120]
    np.testing.assert_allclose(out.values[0, 0], left[:20], atol=1e-4)
    np.testing.assert_allclose(out.values[-1, 1, :5], right[100:], atol=1e-4)
    assert (out.values[-1, :, 5:] == 0).all() and rep["sources"]["audio"]["padded"] == 1
    with pytest.raises(StreamError, match=r"2 channel\(s\)\) cannot feed an input of shape \(3, 20\)"):
        tr.stream.AudioSource(str(tmp_path / "st.wav")).fit((3, 20), "tensor")
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(StreamError, match="is not a PCM wav file"):
        tr.stream.AudioSource(str(tmp_path / "bad.wav"))


def test_audio_queue_overflow_is_counted():
    # 1 ms chunks into a runtime that steps every 5 ms: the queue of 2 overflows
    g = graph({"audio": (16,)}, dt=5e-3)
    sched = Scheduler(tr.Runtime(g))
    a = np.linspace(0, 1, 16 * 100, dtype=np.float32)
    sched.add_source(tr.stream.AudioSource(a, sample_rate=16000, capacity=2))
    out = sched.add_sink("audio_out", ArraySink())
    rep = sched.run(ticks=20)
    s = rep["sources"]["audio"]
    # chunk k is complete at (k + 1) ms: none at the first step (0 ms); the last step, at
    # 95 ms, has seen chunks 0..94
    assert (s["received"], s["delivered"], s["queued"]) == (95, 19, 1)
    assert s["dropped"] == 95 - 19 - 1
    # drop-oldest: each step gets the newest chunk but one (the queue holds two)
    assert out.values[-1, 0] == pytest.approx(a[16 * 93])


def test_serial_frames_over_loop_with_garbage_between_frames():
    g = graph({"imu": (2, 3)})
    sched = Scheduler(tr.Runtime(g))
    src = sched.add_source(tr.stream.SerialSource("loop://", format="frames"), to="imu")
    out = sched.add_sink("imu_out", ArraySink())
    sched.open()
    port = src.port
    frames = [np.arange(6, dtype=np.float32) + 10 * k for k in range(4)]
    corrupt = bytearray(encode_frame(frames[0]))
    corrupt[6] ^= 0xFF  # a payload byte flipped: CRC fails
    stream = (b"\x00\xa5garbage" + encode_frame(frames[0]) + b"\xa5\x5a\xff"
              + encode_frame(frames[1]) + bytes(corrupt) + encode_frame(frames[2])
              + encode_frame(np.array([1.0, np.nan, 0, 0, 0, 0], np.float32))
              + encode_frame(np.zeros(5, np.float32))
              + b"noise\n" + encode_frame(frames[3]))
    port.write(stream)
    rep = sched.run(ticks=10)
    assert port.is_open is False and src.port is None  # closed at the end
    s = rep["sources"]["serial"]
    np.testing.assert_array_equal(out.values.reshape(4, 6), np.stack([frames[k] for k in range(4)]))
    assert out.ticks.tolist() == [0, 1, 2, 3]  # all arrived at tick 0; never-drop: one per tick
    assert (s["received"], s["delivered"], s["rejected"]) == (6, 4, 2)  # NaN and 5 values
    assert s["bad_frames"] == 1
    garbage = 9 + 3 + len(corrupt) + len(b"noise\n")
    assert s["garbage_bytes"] == garbage


def test_frame_reader_resynchronises_on_byte_by_byte_input():
    rng = np.random.default_rng(0)
    frames = [rng.normal(size=int(rng.integers(1, 8))).astype(np.float32) for _ in range(20)]
    data = b"".join(bytes(rng.integers(0, 256, size=int(rng.integers(0, 10)), dtype=np.uint8))
                    + encode_frame(f) for f in frames)
    r = FrameReader()
    got = [p for i in range(len(data)) for p in r.feed(data[i:i + 1])]
    assert len(got) >= 20  # random garbage could hold a valid frame only with a CRC collision
    decoded = [np.frombuffer(p, "<f4") for p in got]
    for f in frames:
        assert any(d.shape == f.shape and (d == f).all() for d in decoded)


def test_serial_lines_over_a_pty_pair():
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        g = graph({"serial": (3,)})
        sched = Scheduler(tr.Runtime(g))
        src = sched.add_source(tr.stream.SerialSource(path, baudrate=115200))
        out = sched.add_sink("serial_out", ArraySink())
        sched.open()
        data = b"1,2,3\r\n\n4 5 6\nhello world\n7;8;9\nnan,1,2\n1,2\n10,11,12\n"
        os.write(master, data)
        # the kernel moves pty bytes to the other side asynchronously: wait until they are there
        # (the simulated clock would otherwise run its ticks before the bytes arrive)
        for _ in range(400):
            if src.port.in_waiting >= len(data):
                break
            time.sleep(0.005)
        rep = sched.run(ticks=8)
        assert src.port is None  # the source opened the path and closed it
        s = rep["sources"]["serial"]
        assert out.values.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
        assert (s["received"], s["rejected"], s["bad_lines"]) == (6, 2, 1)
    finally:
        os.close(master)
        os.close(slave)


def test_serial_sink_round_trip_and_open_errors():
    # the controller's output written as frames into loop:// and read back by a source
    port = serial.serial_for_url("loop://", timeout=0)
    g = graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.ArraySource(np.arange(10, dtype=np.float32).reshape(5, 2)), to="x")
    sink = sched.add_sink("x_out", tr.stream.SerialSink(port, format="frames"))
    sched.run(ticks=5)
    assert port.is_open and sink.written == 5  # a port given as an object is not ours to close
    payloads = FrameReader().feed(port.read(port.in_waiting))
    assert [np.frombuffer(p, "<f4").tolist() for p in payloads] == \
        np.arange(10).reshape(5, 2).tolist()

    lines = tr.stream.SerialSink(port, format="lines", precision=3)
    lines.open(None, 1e-3)
    lines.write(np.array([1.23456, -2.0]), 0, 0.0)
    assert port.read(port.in_waiting) == b"1.23,-2\n"

    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.SerialSource("/dev/does-not-exist"), to="x")
    with pytest.raises(StreamError, match="cannot open .*pyserial URL such as loop://"):
        sched.run(ticks=1)


def test_threaded_camera_on_the_wall_clock_reads_to_the_end_and_stops_its_thread(tmp_path):
    import threading

    path = tmp_path / "clip.avi"
    write_video(path, n=12)
    sched = Scheduler(tr.Runtime(graph({"camera": (1, 24, 32)})), clock="wall")
    cam = sched.add_source(tr.stream.CameraSource(str(path), threaded=True))
    rep = sched.run(seconds=5.0, until_end=True)
    s = rep["sources"]["camera"]
    assert rep["stopped"] == "end" and s["state"] == "ended"
    # the grabber reads the file as fast as it can: what it did not hand over it dropped
    assert s["received"] >= 1 and s["received"] + s.get("thread_dropped", 0) == 12
    assert cam.cap is None and not any(t.name.startswith("tianrt-camera") for t in threading.enumerate())


def test_a_silent_serial_device_counts_misses_at_the_inputs_declared_rate():
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("imu", shape=(3,), rate_hz=100)))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.SerialSource("loop://"), to="imu")
    rep = sched.run(ticks=100)
    # no rate on the source: the graph's 100 Hz says a sample was due every 10 ms
    assert rep["sources"]["serial"]["missed"] == 9  # at 15, 25, ..., 95 ms
    assert rep["sources"]["serial"]["state"] == "stalled"


def test_serial_sink_counts_write_errors_and_closes_what_it_opened():
    class Unplugged:
        def read(self, n):
            return b""

        def write(self, data):
            raise serial.SerialException("device disconnected")

    g = graph({"x": (2,)})
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.ArraySource(np.ones((4, 2))), to="x")
    bad = sched.add_sink("x_out", tr.stream.SerialSink(Unplugged()))
    owned = sched.add_sink("x_out", tr.stream.SerialSink("loop://"))
    rep = sched.run(ticks=4)
    assert (bad.errors, bad.written) == (4, 0)  # the stream went on
    assert owned.written == 4 and owned.port is None and rep["outputs"]["x_out"]["values"] == 4
