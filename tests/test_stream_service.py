"""Service-grade behaviour of `tianrt stream` (issue 20): a failed source lets a run end,
SIGTERM stops like Ctrl-C with everything written, distinct exit codes."""
import json
import os
import signal
import subprocess
import sys
import threading
import wave

import cv2
import numpy as np
import pytest

import tianrt as tr
from tianrt.cli import main
from tianrt.stream import ArraySink, Scheduler, SimulationSource


def model(tmp_path, shapes):
    g = tr.Graph(dt=1e-3, name="m")
    for k, shape in shapes.items():
        g.output(f"{k}_out", g.add(tr.ann.ReLU(), g.input(k, shape=shape)))
    tr.save(g, tmp_path / "m.tnr")
    return tmp_path / "m.tnr"


def test_a_failed_source_lets_a_run_until_the_end_finish():
    """Item 5: 'until every source ends' counts a failed source as finished."""
    def sensor(t):
        if t >= 0.02:
            raise OSError("device unplugged")
        return np.array([t])

    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("x", shape=(1,))))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(SimulationSource(sensor, rate_hz=100), to="x")
    rep = sched.run()
    assert rep["stopped"] == "end" and rep["ticks"] == 21
    assert rep["sources"]["sim"]["state"] == "failed"


def test_a_wav_cut_inside_a_sample_plays_to_its_end(tmp_path):
    """Item 5's trigger: a 16-bit wav truncated to an odd byte count."""
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1000)
        w.writeframes(np.full(100, 8000, "<i2").tobytes())
    data = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-3])  # 98.5 samples
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("audio", shape=(10,))))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.AudioSource(tmp_path / "cut.wav"))
    out = sched.add_sink("y", ArraySink())
    rep = sched.run()
    s = rep["sources"]["audio"]
    assert rep["stopped"] == "end" and s["state"] == "ended" and s["error"] is None
    assert (s["received"], s["padded"]) == (10, 1) and len(out) == 10


def test_exit_codes_say_how_the_run_ended(tmp_path, capsys):
    """Item 7: 0 ran to its end; 3 a source failed; 4 every sample of a source rejected."""
    m = model(tmp_path, {"imu": (3,)})
    np.save(tmp_path / "ok.npy", np.ones((5, 3), np.float32))
    np.save(tmp_path / "nan.npy", np.full((5, 3), np.nan, np.float32))
    assert main(["stream", str(m), "--array", f"imu={tmp_path / 'ok.npy'}", "--clock", "sim", "--quiet"]) == 0
    assert main(["stream", str(m), "--array", f"imu={tmp_path / 'nan.npy'}", "--clock", "sim", "--quiet"]) == 4
    assert "exit 4: every sample was rejected: imu (m.imu: NaN or inf at index (0,))" in capsys.readouterr().err

    master, slave = os.openpty()  # a serial device that goes away: the pty's other end closes
    try:
        path = os.ttyname(slave)
        os.close(slave)
        timer = threading.Timer(0.3, os.close, (master,))
        timer.start()
        rc = main(["stream", str(m), "--serial", f"imu={path}", "--quiet", "--report",
                   str(tmp_path / "r.json")])
        timer.join()
    finally:
        try:
            os.close(master)
        except OSError:
            pass
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "exit 3: source(s) failed: imu" in err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["stopped"] == "end" and rep["sources"]["imu"]["state"] == "failed"


def test_sigterm_stops_like_ctrl_c_and_writes_everything(tmp_path):
    """Item 6: `timeout 3 tianrt stream … --report r.json --save s.npz` leaves both files."""
    m = model(tmp_path, {"camera": (1, 12, 16)})
    vw = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for k in range(250):  # 10 s
        vw.write(np.full((24, 32, 3), k % 256, np.uint8))
    vw.release()
    p = subprocess.Popen(
        [sys.executable, "-m", "tianrt.cli", "stream", str(m), "--camera", str(tmp_path / "clip.avi"),
         "--status-every", "0.1", "--report", str(tmp_path / "r.json"), "--save", str(tmp_path / "s.npz")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stderr.readline()
        assert first.startswith("t="), first
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err  # 128 + SIGTERM
    assert "stopped: terminated" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["stopped"] == "terminated" and rep["sources"]["camera"]["open"] is False
    z = np.load(tmp_path / "s.npz")
    assert len(z["camera_out"]) >= 1 and len(z["camera_out__ticks"]) == len(z["camera_out"])


@pytest.mark.parametrize("size,what", [(2000 * 2, "claims 2 s"), (0, "a killed recorder"),
                                       (0xFFFFFFFF, "a streamed wav")])
def test_a_wav_plays_its_real_data_whatever_its_header_claims(tmp_path, size, what):
    """Item 4: the header's data size was trusted: invented silence, or nothing at all."""
    import struct
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1000)
        w.writeframes(np.full(500, 8000, "<i2").tobytes())  # 0.5 s
    data = bytearray((tmp_path / "a.wav").read_bytes())
    i = data.index(b"data")
    data[i + 4:i + 8] = struct.pack("<I", size)
    (tmp_path / "b.wav").write_bytes(bytes(data))
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("audio", shape=(10,))))
    sched = Scheduler(tr.Runtime(g))
    sched.add_source(tr.stream.AudioSource(tmp_path / "b.wav"))
    out = sched.add_sink("y", ArraySink())
    rep = sched.run()
    assert rep["sources"]["audio"]["received"] == 50 and rep["stopped"] == "end", what
    np.testing.assert_allclose(out.values, 8000 / 32768, rtol=1e-6)
    assert rep["ticks"] <= 501


def test_wav_header_errors_name_the_byte(tmp_path):
    from tianrt.stream import StreamError
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1000)
        w.writeframes(b"\0\0" * 10)
    full = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(full[:30])
    with pytest.raises(StreamError, match=r"the 'fmt ' chunk at byte 12 needs 16 bytes, the file has 10"):
        tr.stream.AudioSource(tmp_path / "cut.wav")
    (tmp_path / "nodata.wav").write_bytes(full[:36])
    with pytest.raises(StreamError, match=r"the file ends at byte 36 without a 'data' chunk"):
        tr.stream.AudioSource(tmp_path / "nodata.wav")
    flt = bytearray(full)
    flt[20:22] = (3).to_bytes(2, "little")
    (tmp_path / "float.wav").write_bytes(bytes(flt))
    with pytest.raises(StreamError, match=r"format code 3 \(IEEE float\) in the 'fmt ' chunk at byte 12"):
        tr.stream.AudioSource(tmp_path / "float.wav")


class DyingCamera:
    """An OpenCV capture stand-in: 60 frames, then the USB cable is pulled."""

    def __init__(self):
        self.n = 0

    def isOpened(self):
        return True

    def get(self, prop):
        return 0.0

    def read(self):
        import time as _t
        if self.n == 60:
            raise OSError("USB device disconnected")
        self.n += 1
        _t.sleep(0.001)
        return True, np.full((24, 32, 3), self.n, np.uint8)

    def release(self):
        pass


def test_a_dying_grabber_thread_hands_over_its_last_frames():
    """Item 10: the grabber's last frame was dropped uncounted when its thread died."""
    g = tr.Graph(dt=1e-3, name="g")
    g.output("y", g.add(tr.ann.ReLU(), g.input("camera", shape=(1, 24, 32))))
    sched = Scheduler(tr.Runtime(g), clock="wall")
    cam = tr.stream.CameraSource(0, rate_hz=1000, policy="queue", capacity=100)
    cam.cap = DyingCamera()
    sched.add_source(cam)
    out = sched.add_sink("y", ArraySink())
    rep = sched.run(seconds=5.0, until_end=True)
    s = rep["sources"]["camera"]
    assert s["state"] == "failed" and "USB device disconnected" in s["error"]
    assert s["received"] + s.get("thread_dropped", 0) == 60  # every frame accounted for
    assert out.values[-1, 0, 0, 0] * 255 == pytest.approx(60)  # the last one reached the network
    assert rep["wall_s"] < 4.0
