"""Bicycle world: collisions end a ride as a crash (apart from falls), the person can stop and
be hidden behind a box in the camera frame, the seeded looks give the person contrast."""
import math

import numpy as np

from tianrt.demos.bicycle import collide, render, suite, world
from tianrt.demos.bicycle.run import run, teacher_for


def _sc(obstacles=(), target=None, duration=8.0, look=None):
    d = {"duration": duration, "path": [[0, 0], [200, 0]], "bicycle": {"speed": 4.0},
         "world": {"obstacles": list(obstacles)}}
    if target:
        d["world"]["target"] = target
    if look:
        d["world"]["look"] = look
    return world.parse_scenario(d)


def test_box_on_the_path_is_a_crash_not_a_fall():
    r = run(_sc([{"kind": "box", "x": 20.0, "y": 0.0, "size": 1.0, "height": 1.0}]), teacher_for(_sc()), "lqr")
    assert r.collisions == 1 and not r.fell and r.crashed_into == "box 0"
    # the front wheel (w + rF = 1.37 m ahead of the rear contact) plus the half width reaches the box
    assert 4.0 < r.crash_time < 20.0 / 4.0 + 0.1
    s = r.summary()
    assert s["collisions"] == 1 and s["fell"] is False


def test_obstacles_beside_the_path_are_not_hit():
    obs = [{"kind": "cone", "x": 15.0, "y": 1.2}, {"kind": "box", "x": 25.0, "y": -1.6, "size": 1.0}]
    r = run(_sc(obs), teacher_for(_sc()), "lqr")
    assert r.collisions == 0 and r.crash_time is None
    # the nearest pass is reported: the cone's edge beside the footprint's, within a few cm of the plan
    c = r.closest_obstacle
    cone = world.parse_scenario({"duration": 1, "path": [[0, 0], [1, 0]],
                                 "world": {"obstacles": [obs[0]]}}).obstacles[0]
    assert c["what"] == "cone 0" and abs(c["gap_m"] - (1.2 - cone.size / 2 - collide.HALF_WIDTH)) < 0.1
    assert 15.0 / 4.0 - 1.0 < c["t"] < 15.0 / 4.0 + 1.0 and c["speed"] > 3.0


def test_footprint_geometry():
    c = collide.Collider(_sc([{"kind": "cone", "x": 0.0, "y": 0.0, "size": 0.4}]))
    # the cone (radius 0.2) touches the footprint (half width 0.3) closer than 0.5 m to the axis
    assert c.hits(-0.5, 0.45, 0.0, 0.0) == [0]
    assert c.hits(-0.5, 0.55, 0.0, 0.0) == []
    assert c.hits(-1.37 - 0.45, 0.0, 0.0, 0.0) == [0]          # nose: front of the front wheel
    assert c.hits(-1.37 - 0.55, 0.0, 0.0, 0.0) == []
    assert c.hits(0.0, -1.0, math.pi / 2, 0.0) == [0]          # heading +y: the frame lies over it
    assert c.hits(0.0, 2.0, math.pi / 2, 0.0) == []            # the cone is behind the rear wheel


def test_clearance_is_the_gap_between_footprint_and_outline():
    c = collide.Collider(_sc([{"kind": "cone", "x": 0.0, "y": 0.0, "size": 0.4},
                              {"kind": "box", "x": 10.0, "y": 0.0, "size": 1.0}]))
    gap, i = c.clearance(-0.5, 0.7, 0.0)          # 0.7 m from the cone's centre to the axis
    # (the axis is sampled at 9 points ~0.24 m apart: a few mm more than the exact gap)
    assert i == 0 and math.isclose(gap, 0.7 - 0.2 - collide.HALF_WIDTH, abs_tol=0.005)
    assert c.clearance(-0.5, 0.45, 0.0) == (0.0, 0)       # touching: no negative gaps
    gap, i = c.clearance(10.0 - 0.5 - 1.37 - 0.6, 0.0, 0.0)   # nose 0.6 m short of the box's face
    assert i == 1 and math.isclose(gap, 0.6 - collide.HALF_WIDTH)
    assert c.clearance(5.0, 3.0, 0.0) == (math.inf, None)    # nothing within 3 m
    assert c.clearance(5.0, 3.0, 0.0, within=5.0)[1] == 1     # the nose is nearer the box


def test_person_standing_on_the_path_is_hit_and_timing_stops_them():
    tgt = {"path": [[12, 0], [200, 0]], "speed": 1.0, "timing": [[0, 0], [2, 2], [100, 2]]}
    sc = _sc(target=tgt)
    assert sc.target.position(1.0)[0] == 13.0 and sc.target.position(50.0)[0] == 14.0
    r = run(sc, teacher_for(sc), "lqr")
    assert r.collisions == 1 and r.crashed_into == "person"


def test_new_kinds_crash_the_blind_waypoint_rider():
    """The waypoint follower does not look: it rides into the obstacles on the path."""
    sc = world.parse_scenario(suite.make("obstacles", 0, 30.0))
    r = run(sc, teacher_for(sc), "lqr")
    assert r.collisions == 1 and not r.fell


def _person_pixels(sc, x, t):
    scene = render.Scene(sc)
    img = render.CameraRenderer(scene, render.CameraSpec(160, 120), antialias=False).render(x, 0.0, 0.0, 0.0, t)
    return int(np.all(img == np.array(scene.clothing, np.uint8), axis=2).sum())


def test_person_is_occluded_behind_a_tall_box():
    tgt = {"path": [[20, -6], [20, 6]], "speed": 1.0}
    box = {"kind": "box", "x": 10.0, "y": 0.0, "size": 1.4, "height": 2.2}
    sc = _sc([box], target=tgt)
    assert _person_pixels(sc, 0.0, 0.0) > 10        # at y = -6: beside the box, in view
    assert _person_pixels(sc, 0.0, 6.0) == 0        # at y = 0: right behind it
    assert _person_pixels(_sc(target=tgt), 0.0, 6.0) > 10


def test_seeded_looks_vary_and_give_the_person_contrast():
    looks = [suite.look(s) for s in range(20)]
    assert len({lk["light"] for lk in looks}) == 20
    contrast = []
    for lk in looks:
        sc = _sc(target={"path": [[8, 0], [200, 0]], "speed": 0.0}, look=lk)
        scene = render.Scene(sc)
        frame = render.SensorCamera(scene).frame(0.0, 0.0, 0.0, 0.0)
        ground = float(np.median(frame[-6:, :]))
        person = float(frame[14:26, 30:34].min()) if np.mean(scene.clothing) < 128 else float(frame[14:26, 30:34].max())
        contrast.append(abs(person - ground))
    assert np.median(contrast) > 20 and min(contrast) > 3


def test_a_near_miss_is_a_close_pass_without_a_crash():
    near = {"gap_m": 0.1, "t": 3.0, "speed": 4.0, "what": "cone 0"}
    assert collide.near_miss({"collisions": 0, "closest_obstacle": near})
    assert not collide.near_miss({"collisions": 1, "closest_obstacle": dict(near, gap_m=0.0)})   # a crash
    assert not collide.near_miss({"collisions": 0, "closest_obstacle": dict(near, gap_m=0.3)})
    assert not collide.near_miss({"collisions": 0, "closest_obstacle": None})   # nothing within 3 m
