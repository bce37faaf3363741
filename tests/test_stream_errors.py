"""Errors and options of streams (issue 20, items 8, 9, 11): camera devices given as paths,
URLs or pipelines; shape checks at binding; messages that say what would fit."""
import wave

import cv2
import numpy as np
import pytest

import tianrt as tr
from tianrt.cli import main
from tianrt.stream import ArraySource, Scheduler, StreamError


def graph(shapes, rates=None):
    g = tr.Graph(dt=1e-3, name="m")
    for k, shape in shapes.items():
        g.output(f"{k}_out", g.add(tr.ann.ReLU(), g.input(k, shape=shape, rate_hz=(rates or {}).get(k))))
    return g


@pytest.mark.parametrize("device", ["/dev/video0", "/dev/v4l/by-id/usb-Cam-video-index0",
                                    "rtsp://127.0.0.1:8554/cam", "http://127.0.0.1/stream.mjpg",
                                    "v4l2src device=/dev/video0 ! videoconvert ! appsink"])
def test_camera_devices_paths_urls_and_pipelines_are_live_cameras(device):
    """Item 8: only integer indices were accepted; a URL would have been a timed file."""
    cam = tr.stream.CameraSource(device)
    assert not cam.timed and not cam.is_file
    assert repr(device) in cam.describe()


def test_a_camera_device_that_is_not_there_says_so(tmp_path):
    sched = Scheduler(tr.Runtime(graph({"camera": (1, 12, 16)})), clock="wall")
    sched.add_source(tr.stream.CameraSource("/dev/video-does-not-exist"))
    with pytest.raises(StreamError, match="OpenCV cannot open camera device '/dev/video-does-not-exist'"):
        sched.run(ticks=1)
    with pytest.raises(StreamError, match=r"no video file 'nope.avi'; a live camera is a device index"):
        tr.stream.CameraSource("nope.avi")


def test_an_array_of_the_wrong_shape_is_refused_at_binding():
    """Item 9: (5, 7) bound to a (6,) input showed up only as run-time rejects."""
    sched = Scheduler(tr.Runtime(graph({"imu": (6,)})))
    with pytest.raises(StreamError, match=r"an array of shape \(5, 7\) holds 5 samples of shape \(7,\), "
                                          r"but the input it feeds takes \(6,\)"):
        sched.add_source(ArraySource(np.zeros((5, 7))), to="imu")
    sched = Scheduler(tr.Runtime(graph({"imu": (2, 3)})))
    with pytest.raises(StreamError, match=r"reshape it to \(5, 2, 3\)"):
        sched.add_source(ArraySource(np.zeros((5, 6))), to="imu")


def test_command_line_messages(tmp_path, capsys):
    g = graph({"camera": (1, 12, 16), "imu": (3,)})
    tr.save(g, tmp_path / "m.tnr")
    np.save(tmp_path / "imu.npy", np.zeros((5, 3), np.float32))
    vw = cv2.VideoWriter(str(tmp_path / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    vw.write(np.zeros((24, 32, 3), np.uint8))
    vw.release()

    def err(*argv):
        rc = main(["stream", str(tmp_path / "m.tnr"), "--clock", "sim", "--ticks", "3", "--quiet", *argv])
        return rc, capsys.readouterr().err

    rc, e = err("--array", f"imu={tmp_path / 'imu.npy'}@abc")
    assert rc == 1 and "the rate after @ must be a number of Hz, e.g. imu=" in e and "Traceback" not in e
    rc, e = err("--camera", str(tmp_path / "c.avi"), "--camera", str(tmp_path / "c.avi"))
    assert rc == 1 and "the input(s) that fit (camera (1, 12, 16)) are already bound by another flag" in e
    # a truncated wav header
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 10)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "a.wav").read_bytes()[:30])
    with pytest.raises(StreamError, match=r"is not a PCM wav file \(the header is cut short"):
        tr.stream.AudioSource(tmp_path / "cut.wav")


def test_a_live_device_on_the_simulated_clock_is_warned_about(capsys):
    """Item 9: a live serial source under --clock sim ran '5 s' in 0.12 s without a word."""
    sched = Scheduler(tr.Runtime(graph({"imu": (3,)}, rates={"imu": 100})))
    sched.add_source(tr.stream.SerialSource("loop://"), to="imu")
    rep = sched.run(ticks=50)
    assert any("live device, but the clock is simulated" in w for w in rep["warnings"])
    assert "warning: source `serial` is a live device" in str(rep)


def test_command_line_sets_policy_capacity_delay_sync_and_camera_rate(tmp_path, capsys):
    """Item 11: queue policy, capacity, camera frame rate (and size, for devices) from the CLI."""
    import json
    g = graph({"camera": (1, 12, 16), "imu": (3,)})
    tr.save(g, tmp_path / "m.tnr")
    np.save(tmp_path / "imu.npy", np.ones((100, 3), np.float32))
    vw = cv2.VideoWriter(str(tmp_path / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for _ in range(4):
        vw.write(np.zeros((24, 32, 3), np.uint8))
    vw.release()
    rc = main(["stream", str(tmp_path / "m.tnr"), "--clock", "sim", "--quiet",
               "--camera", str(tmp_path / "c.avi"), "--camera-fps", "50", "--camera-size", "64x48",
               "--array", f"imu={tmp_path / 'imu.npy'}@1000", "--policy", "imu=queue", "--capacity", "imu=3",
               "--delay", "imu=0.002", "--sync", "camera,imu@0.0005", "--report", str(tmp_path / "r.json")])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((tmp_path / "r.json").read_text())
    s = rep["sources"]
    assert s["imu"]["policy"] == "queue" and s["camera"]["received"] == 4
    assert rep["sync"][0]["sets"] == 4  # frames at 0, 20, 40, 60 ms (50 fps) with their IMU sample
    for bad, msg in ((["--policy", "imu=newest"], "policy 'newest': use one of latest, queue, never-drop"),
                     (["--capacity", "nosuch=3"], "write INPUT=VALUE with INPUT one of camera, imu"),
                     (["--camera-size", "big"], "write WIDTHxHEIGHT"),
                     (["--sync", "camera,imu"], "write INPUT,INPUT[,…]@SECONDS")):
        rc = main(["stream", str(tmp_path / "m.tnr"), "--clock", "sim", "--ticks", "2", "--quiet",
                   "--array", f"imu={tmp_path / 'imu.npy'}", "--camera", str(tmp_path / "c.avi"), *bad])
        assert rc == 1 and msg in capsys.readouterr().err
