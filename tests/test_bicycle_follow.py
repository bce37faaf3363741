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


def _percept(bearing, distance):
    return vision.Percept(1.0, bearing, float(distance), np.zeros(7), np.zeros(15))


def test_person_speed_estimate_rides_out_the_cnns_distance_noise(nav):
    """The CNN reads the person's distance with ~12 % error that persists over ~5 frames
    (docs/bicycle.md); the person's speed, estimated from how that distance changes, must not
    follow it: a speed set point swinging by metres per second is what let the follower fall
    back to 7-8 m behind a steadily jogging person."""
    sc, _ = nav
    n = follow.Navigator(sc, "follow", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))
    rng = np.random.default_rng(3)
    v, d, err, est = 3.7, 5.0, 0.0, []
    n.v_now, n.v_person = v, v
    for k in range(30 * 20):                       # 20 s at the camera's 30 frames per second
        err = 0.8 * err + np.sqrt(1 - 0.8 ** 2) * rng.normal(0.0, 0.12)   # AR(1), lag-1 correlation 0.8
        n._range(_percept(5.0, d * (1.0 + err)))
        if k >= 60:
            est.append(n.v_person)
    est = np.array(est)
    assert abs(est.mean() - v) < 0.3 and est.std() < 0.5 and np.abs(est - v).max() < 1.5, (est.mean(), est.std())


def test_readings_at_the_frames_edge_give_a_bearing_not_a_distance(nav):
    """A person at the edge of the 70-degree view is cut by the frame, and the CNN then reads
    them much too near or too far; those readings only keep the track alive."""
    sc, _ = nav
    n = follow.Navigator(sc, "follow", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))
    n.v_now = n.v_person = 3.0
    for _ in range(30):
        n._range(_percept(10.0, 5.0))
    assert n.distance == pytest.approx(5.0, abs=0.05)
    for _ in range(20):                            # 0.67 s at the edge, read at 3 m
        n._range(_percept(follow.EDGE_DEG + 2.0, 3.0))
    assert n.distance == pytest.approx(5.0, abs=0.05) and n.v_person == pytest.approx(3.0, abs=1e-9)
    n._range(_percept(10.0, 5.2))                  # back in view: the same track, filtered (no restart)
    assert 5.0 < n.distance < 5.2


def test_desired_lean_is_slew_limited_and_reaches_its_target(nav):
    """A change of behaviour steps the outer loop's desired lean by up to 20 degrees within a
    frame; the navigator hands the balance network a ramp at LEAN_SLEW instead (from the path,
    and for SWITCH_S after the person's pursuit takes over; then the pursuit passes unchanged)."""
    sc, _ = nav
    n = follow.Navigator(sc, "follow", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))
    dt = 1.0 / sc.control_hz
    wanted = [np.radians(-7.0)] * 50 + [np.radians(15.0)] * 100 + [0.0] * 60
    out = np.array([n._slew(w, dt) for w in wanted])
    assert np.abs(np.diff(out)).max() <= follow.LEAN_SLEW * dt + 1e-12
    assert out[49] == pytest.approx(np.radians(-7.0)) and out[149] == pytest.approx(np.radians(15.0))
    ramp = np.radians(22.0) / follow.LEAN_SLEW            # seconds from -7 to +15 degrees
    k = 50 + int(np.ceil(ramp / dt))
    assert out[k - 2] < np.radians(15.0) and out[k] == pytest.approx(np.radians(15.0))
    # the person's pursuit takes over: ramped at first, then passed through
    n._lean = 0.0
    steps = int(round(follow.SWITCH_S / dt))
    first = [n._slew(np.radians(15.0), dt, person=True) for _ in range(steps)]
    assert np.abs(np.diff([0.0] + first)).max() <= follow.LEAN_SLEW * dt + 1e-12
    assert n._slew(np.radians(-10.0), dt, person=True) == pytest.approx(np.radians(-10.0))
    assert n._slew(np.radians(5.0), dt, person=False) == pytest.approx(np.radians(-10.0) + follow.LEAN_SLEW * dt)


def test_the_slowest_recent_speed_estimate_spans_the_window(nav):
    """``Navigator.v_person_low``: the slowest person's speed estimated over the last
    CLOSE_WINDOW_S of frames (the errand's pilot closes in no faster than V_CLOSE above it)."""
    sc, _ = nav
    n = follow.Navigator(sc, "follow", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))
    n.v_now = n.v_person = 1.0
    for _ in range(30):
        n._range(_percept(0.0, 8.0))
    assert n.v_person_low() == pytest.approx(1.0, abs=0.05)
    seen = []
    for k in range(90):                            # the reading runs away: the estimate rises
        n._range(_percept(0.0, 8.0 + 0.1 * k))
        seen.append(n.v_person)
    window = int(round(follow.CLOSE_WINDOW_S * 30))
    assert n.v_person > 2.5 and seen[-1] > seen[-window]
    assert n.v_person_low() == pytest.approx(min(seen[-window:]))


def test_the_navigator_swerves_when_its_plan_touches_nearer_than_a_stop():
    """``Navigator._swerve``: the planned trajectory touches the map 2 m ahead at 3 m/s, nearer
    than the bicycle could stop (``_stopping``); the navigator takes the nearest offset whose
    trajectory does not touch within that distance (obstacles seed 203 rode into a cone the map
    held), and says so when none is left (the pilot then brakes onto its stand)."""
    from tianrt.demos.bicycle import avoid

    sc = world.parse_scenario(suite.make("obstacles", 0, 8.0))
    n = follow.Navigator(sc, "avoid", run.schedule_for(sc.bicycle, 1.0 / sc.control_hz))
    assert 2.0 < n._stopping(3.0) < 10.0 and n._stopping(5.0) > n._stopping(3.0)
    n.offset, n.contact = 1.0, 2.0
    n.contacts = np.where(avoid.OFFSETS <= -1.0, np.inf, 2.0)
    assert n._swerve(10.0, 3.0) and n.offset == -1.0 and n.swerves == [10.0]
    n.offset, n.contact = 1.0, np.inf                     # a plan that touches nothing is kept
    assert n._swerve(11.0, 3.0) and n.offset == 1.0 and n.swerves == [10.0]
    n.contact, n.contacts = 2.0, np.full(len(avoid.OFFSETS), 2.0)
    assert not n._swerve(12.0, 3.0) and n.offset == 1.0
