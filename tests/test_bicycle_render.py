"""Bicycle rendering: the pinhole camera sees the world where geometry says it should, the
map and the video writer work."""
import math

import cv2
import numpy as np
import pytest

from tianrt.demos.bicycle import render, world


def scenario(obstacles=(), target=None, lanes="path"):
    w = {"lanes": lanes, "obstacles": list(obstacles)}
    if target:
        w["target"] = target
    return world.parse_scenario({"duration": 2.0, "path": [[0, 0], [200, 0]], "world": w})


def test_horizon_is_level_upright_and_tilts_with_lean():
    sc = scenario(lanes=[])
    cam = render.CameraRenderer(render.Scene(sc), render.CameraSpec(160, 120), antialias=False)
    img = cam.render(0.0, 0.0, 0.0, 0.0)
    sky = np.all(img == render.SKY, axis=2)
    rows = sky.mean(axis=1)
    # pitched down 8 deg: the horizon is above the centre row by f * tan(8 deg)
    f = 0.5 * 160 / math.tan(math.radians(35))
    expect = 60 - f * math.tan(math.radians(8))
    horizon = int(np.argmax(rows < 0.5))
    assert abs(horizon - expect) <= 1.5
    assert np.all(rows[: horizon - 1] == 1.0) and np.all(rows[horizon + 1:] == 0.0)
    leaned = np.all(cam.render(0.0, 0.0, 0.0, math.radians(10)) == render.SKY, axis=2)
    left, right = leaned[:, :20].mean(), leaned[:, -20:].mean()
    assert left != right  # rolling the camera tilts the horizon
    # leaning right (+phi) rolls the camera clockwise, so the world turns anticlockwise in the
    # image: the horizon rises on the right, and there is more sky on the left
    assert left > right


def test_lane_edges_appear_where_projected():
    sc = scenario()
    spec = render.CameraSpec(160, 120)
    img = render.CameraRenderer(render.Scene(sc), spec, antialias=False).render(0.0, 0.0, 0.0, 0.0)
    white = np.all(img == render.LANE_EDGE, axis=2)
    # the right edge (y = +1.5 m) 5 m ahead of the camera: 13.5 deg down, below the 8 deg pitch
    f, cx, cy = spec.intrinsics()
    R, C = render.camera_pose(spec, 0.0, 0.0, 0.0, 0.0)
    p = render._to_camera(R, C, np.array([[C[0] + 5.0, 1.5, 0.0]]))[0]
    u, v = f * p[0] / p[2] + cx, f * p[1] / p[2] + cy
    assert u > cx and v > cy
    patch = white[int(v) - 2:int(v) + 3, int(u) - 2:int(u) + 3]
    assert patch.any()
    horizon = cy - f * math.tan(math.radians(spec.pitch_deg))
    assert not white[: int(horizon) - 1].any()  # nothing painted in the sky
    assert white[int(horizon) + 1:].any()


def test_obstacles_and_target_are_drawn_in_front_only():
    sc = scenario(obstacles=[{"kind": "cone", "x": 15, "y": 0}, {"kind": "box", "x": -15, "y": 0}],
                  target={"path": [[25, -1], [25, 1]], "speed": 0.0})
    cam = render.CameraRenderer(render.Scene(sc), render.CameraSpec(160, 120), antialias=False)
    img = cam.render(0.0, 0.0, 0.0, 0.0)
    assert np.all(img == render.CONE, axis=2).sum() > 5
    assert np.all(img == render.PERSON, axis=2).sum() > 5
    assert not np.all(img == render.BOX, axis=2).any()  # the box is behind
    back = cam.render(0.0, 0.0, math.pi, 0.0)  # turn around
    assert np.all(back == render.BOX, axis=2).sum() > 5
    assert not np.all(back == render.CONE, axis=2).any()


def test_sensor_frame_is_small_grayscale():
    sc = scenario(obstacles=[{"kind": "cone", "x": 10, "y": 0.5}])
    frame = render.SensorCamera(render.Scene(sc)).frame(0.0, 0.0, 0.0, 0.0)
    assert frame.shape == (48, 64) and frame.dtype == np.uint8
    assert frame.std() > 5


def test_video_recorder_writes_a_readable_file(tmp_path):
    sc = scenario(obstacles=[{"kind": "cone", "x": 10, "y": 0.5}],
                  target={"path": [[25, -1], [25, 1]], "speed": 0.5})
    path = tmp_path / "ride.mp4"
    rec = render.VideoRecorder(path, render.Scene(sc), fps=10)
    t = np.linspace(0, 1, 11)
    for i in range(5):
        rec.add(i / 10, i * 0.5, 0.0, 0.0, 0.02 * i, t[:i + 2],
                [("lean", np.sin(t[:i + 2]), 1.0, (0, 255, 255))], [(0, 0), (i * 0.5, 0)], "test")
    rec.close()
    cap = cv2.VideoCapture(str(path))
    n, shape = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, shape = n + 1, f.shape
    assert n == 5 and shape == (rec.height, rec.width, 3)


def test_video_recorder_writes_the_still_asked_for(tmp_path):
    """``still=(t, png)``: the first frame at or after t, lossless, the same picture the video
    holds at that frame (up to the video codec's loss); a still after the ride is not written,
    and a still that is not a PNG is refused."""
    sc = scenario(obstacles=[{"kind": "cone", "x": 10, "y": 0.5}])
    rec = render.VideoRecorder(tmp_path / "ride.mp4", render.Scene(sc), fps=10, still=(0.25, tmp_path / "s.png"))
    t = np.linspace(0, 1, 11)
    for i in range(5):
        rec.add(i / 10, i * 0.5, 0.0, 0.0, 0.02 * i, t[:i + 2],
                [("lean", np.sin(t[:i + 2]), 1.0, (0, 255, 255))], [(0, 0), (i * 0.5, 0)], f"frame {i}")
    rec.close()
    assert rec.still_written == str(tmp_path / "s.png")
    still = cv2.imread(rec.still_written)
    cap = cv2.VideoCapture(str(tmp_path / "ride.mp4"))
    frames = [cap.read()[1] for _ in range(5)]
    err = [np.abs(f.astype(int) - still.astype(int)).mean() for f in frames]
    assert still.shape == (rec.height, rec.width, 3) and int(np.argmin(err)) == 3   # t = 0.3 s, the first >= 0.25
    late = render.VideoRecorder(tmp_path / "b.mp4", render.Scene(sc), fps=10, still=(5.0, tmp_path / "late.png"))
    late.add(0.0, 0.0, 0.0, 0.0, 0.0, t[:2], [("lean", t[:2], 1.0, (0, 255, 255))], [(0, 0)])
    late.close()
    assert late.still_written is None and not (tmp_path / "late.png").exists()
    with pytest.raises(ValueError, match="png"):
        render.VideoRecorder(tmp_path / "c.mp4", render.Scene(sc), still=(1.0, tmp_path / "s.jpg"))
