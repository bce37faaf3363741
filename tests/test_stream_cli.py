"""`tianrt stream`: a saved model run against a video file, a wav file and arrays on the
simulated clock, with the final report, saved outputs and binding errors."""
import json
import wave

import cv2
import numpy as np
import pytest

import tianrt as tr
from tianrt.cli import main


@pytest.fixture
def files(tmp_path):
    g = tr.Graph(dt=1e-3, name="av")
    cam = g.input("frames", shape=(1, 12, 16), rate_hz=25)
    mic = g.input("mic", shape=(40,))
    g.output("brightness", g.add(tr.ann.GlobalAvgPool2d(), cam))
    g.output("loudness", g.add(tr.ann.ReLU(), mic))
    tr.save(g, tmp_path / "av.tnr")
    vw = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for k in range(5):
        vw.write(np.full((24, 32, 3), 40 * k, np.uint8))
    vw.release()
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(4000)
        w.writeframes((np.full(4000 // 10, 0.25) * 32767).astype("<i2").tobytes())  # 100 ms
    return tmp_path


def test_stream_command_runs_files_to_the_end_and_reports(files, capsys):
    rc = main(["stream", str(files / "av.tnr"), "--camera", str(files / "clip.avi"),
               "--audio", str(files / "a.wav"), "--clock", "sim", "--quiet",
               "--deadline", "brightness=0.001", "--save", str(files / "out.npz"),
               "--serial-out", "loudness=loop://",
               "--report", str(files / "rep.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "stopped: end" in out and "brightness" in out and "frames" in out and "mic" in out
    z = np.load(files / "out.npz")
    assert z["brightness__ticks"].tolist() == [0, 40, 80, 120, 160]
    np.testing.assert_allclose(z["brightness"][:, 0], np.arange(5) * 40 / 255, atol=0.02)
    assert z["loudness__ticks"].tolist() == list(range(10, 101, 10))
    rep = json.loads((files / "rep.json").read_text())
    assert rep["sources"]["frames"]["received"] == 5 and rep["sources"]["mic"]["received"] == 10
    assert rep["outputs"]["brightness"]["deadline_s"] == 0.001


def test_stream_command_explicit_bindings_arrays_and_a_status_line(files, capsys):
    np.save(files / "noise.npy", np.full((30, 40), 0.5, np.float32))
    rc = main(["stream", str(files / "av.tnr"), "--array", f"mic={files / 'noise.npy'}@500",
               "--camera", f"frames={files / 'clip.avi'}", "--clock", "sim", "--ticks", "100",
               "--status-every", "0"])
    cap = capsys.readouterr()
    assert rc == 0 and "stopped: ticks" in cap.out
    assert "t=" in cap.err and "mic:" in cap.err  # the live status line (stderr is not a tty)


@pytest.mark.parametrize("argv,message", [
    (["--serial", "loop://"], "--serial: cannot tell which input it feeds (several fit"),
    (["--camera", "nosuch=0"], "the model has no input 'nosuch'; its inputs are frames, mic"),
    ([], "give at least one source"),
    (["--array", "mic=missing.npy"], "cannot read missing.npy"),
    (["--audio", "mic=a.wav", "--array", "mic=a.npy"], "input 'mic' is bound by two source flags"),
])
def test_stream_command_binding_errors(files, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(files)
    rc = main(["stream", str(files / "av.tnr"), "--clock", "sim", "--ticks", "5"] + argv)
    assert rc == 1
    assert message in capsys.readouterr().err


def test_ctrl_c_ends_a_live_stream_with_the_final_report(files):
    import signal
    import subprocess
    import sys

    p = subprocess.Popen(
        [sys.executable, "-m", "tianrt.cli", "stream", str(files / "av.tnr"), "--serial", "mic=loop://",
         "--status-every", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = p.stderr.readline()  # the stream is running once it prints a status line
        assert first.startswith("t="), first
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err  # 128 + SIGINT
    assert "stopped: interrupted" in out and "mic" in out
