"""The follower's distance label and speed law: the log-distance label round-trips, the set
point never exceeds the speed from which a stop of the person can be absorbed, and a short
ride from the labels keeps its distance through the person's first stop."""

import numpy as np
import pytest

from ride_log import lost_seconds
from tianrt.demos.bicycle import follow, run, suite, vision, world


def test_distance_label_is_log_scaled_and_round_trips():
    for d in (1.5, 2.0, 5.0, 7.3, 15.0):
        assert vision.distance_from_value(vision.distance_value(d)) == pytest.approx(d)
    assert vision.distance_value(vision.DIST_REF) == 0.0
    # the same relative error is the same label error at every range
    a = vision.distance_value(2.2) - vision.distance_value(2.0)
    b = vision.distance_value(11.0) - vision.distance_value(10.0)
    assert a == pytest.approx(b)
    assert vision.distance_value(100.0) == 1.0 and vision.distance_from_value(5.0) == vision.DIST_REF * 4


@pytest.fixture(scope="module")
def nav():
    sc = world.parse_scenario(suite.make("follow", 0, 8.0))
    return sc, follow.Navigator(sc, "follow", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))


def test_speed_set_point_is_capped_by_the_stopping_room(nav):
    _, n = nav
    caps = []
    for d in np.arange(2.0, 9.0, 0.5):
        n.distance, n.v_person = float(d), 5.0
        caps.append(n._v_safe())
        assert n._follow_speed() <= max(follow.V_MIN, caps[-1]) + 1e-9
    assert all(b >= a for a, b in zip(caps, caps[1:])) and caps[0] == 0.0 and caps[-1] > 4.0
    # too near costs more speed than too far gains
    n.distance, n.v_person = 10.0, 3.0
    far = n._follow_speed() - 3.0
    n.distance = 4.5
    near = 3.0 - n._follow_speed()
    assert near > 0 and far > 0 and near / 0.5 > far / 5.0


def test_ride_from_labels_keeps_its_distance_through_a_stop(nav):
    sc, _ = nav
    n = follow.Navigator(sc, "follow", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))
    k = sc.target.timing
    stops = [k[i, 0] for i in range(len(k) - 1) if k[i + 1, 1] == k[i, 1]]
    assert stops and stops[0] < 6.0          # the person stands still within the ride
    r = run.run(sc, run.teacher_for(sc), "lqr", nav=n)
    dist = np.array([f[4] for f in n.frames])
    assert not r.fell and r.collisions == 0 and r.duration > 7.9
    assert dist.min() > 2.0          # contact is at ~1.4 m
    # the CANN works in the world frame and is read back relative to the camera: on the labels
    # its bearing is within a few degrees of the truth; lost_s is the time without an estimate
    tgt = r.summary()["target"]
    assert tgt["bearing_error_deg"] < 3.0 and tgt["timeouts"] == 0
    assert tgt["lost_s"] == pytest.approx(lost_seconds(n.frames, r.duration), abs=1e-9)
