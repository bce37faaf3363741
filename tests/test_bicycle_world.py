"""Bicycle scenarios: the JSON format, its checks (errors name the field), path geometry."""
import json
import math

import numpy as np
import pytest

from tianrt.demos.bicycle import suite, world
from tianrt.demos.bicycle.world import ScenarioError, load_scenario, parse_scenario


def base():
    return {"duration": 5.0, "path": [[0, 0], [50, 0], [100, 10]]}


def test_minimal_scenario_gets_defaults():
    sc = parse_scenario(base())
    assert sc.control_hz == 100 and sc.physics_hz == 1000
    assert sc.initial["speed"] == 5.0 and sc.initial["heading"] == 0.0
    assert sc.limits.steer_torque == 5.0 and math.degrees(sc.limits.steer_angle) == pytest.approx(45)
    assert len(sc.lanes) == 1 and sc.target is None
    assert sc.target_speed(3.0) == 5.0


@pytest.mark.parametrize("patch,field", [
    ({"duration": "long"}, "'duration'"),
    ({"duration": -1}, "'duration'"),
    ({"control_hz": 50}, "'control_hz'"),
    ({"physics_hz": 1050}, "'physics_hz'"),
    ({"path": [[0, 0]]}, "'path'"),
    ({"path": [[0, 0], [0, 0]]}, "path: points 0 and 1 coincide"),
    ({"bicycle": {"speed": -2}}, "'bicycle.speed'"),
    ({"bicycle": {"lean": 1.2}}, "'bicycle.lean'"),
    ({"bicycle": {"spead": 3}}, "'bicycle.spead'"),
    ({"bicycle": {"params": {"base": "benchmark", "mF": 0}}}, "'mF'"),
    ({"bicycle": {"params": {"base": "benchmark", "trail": 0.1}}}, "trail"),
    ({"gusts": {"rate_hz": -1}}, "'gusts.rate_hz'"),
    ({"gusts": {"impulse": [5, 1]}}, "'gusts.impulse'"),
    ({"gusts": {"events": [[1.0]]}}, "'gusts.events[0]'"),
    ({"noise": {"lean": "x"}}, "'noise.lean'"),
    ({"limits": {"steer_torque": 0}}, "'limits.steer_torque'"),
    ({"speed_profile": [[0, 3], [0, 4]]}, "'speed_profile'"),
    ({"speed_profile": [[0, 30]]}, "'speed_profile'"),
    ({"world": {"obstacles": [{"kind": "tree", "x": 1, "y": 2}]}}, "'world.obstacles[0].kind'"),
    ({"world": {"obstacles": [{"kind": "cone", "y": 2}]}}, "'world.obstacles[0].x'"),
    ({"world": {"lanes": [{"points": [[0, 0], [1, 0]], "width": 0.1}]}}, "'world.lanes[0].width'"),
    ({"world": {"target": {"path": [[0, 0]], "speed": 1}}}, "'world.target.path'"),
    ({"wrld": {}}, "'wrld'"),
])
def test_bad_fields_are_named(patch, field):
    d = base()
    d.update(patch)
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(d, "bad.json")
    assert field in str(exc.value) and "bad.json" in str(exc.value)


def test_file_errors_name_the_file_and_position(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"duration": 5,\n "path": [[0, 0], [1, 0]],,}')
    with pytest.raises(ScenarioError, match=r"broken.json: not valid JSON at line 2"):
        load_scenario(p)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")
    p.write_text(json.dumps(suite.make("s_curve", 3, 10.0)))
    sc = load_scenario(p)
    assert sc.name == "s-curve-3" and sc.duration == 10.0


@pytest.mark.parametrize("duration", [3.0, 20.0, 60.0])
@pytest.mark.parametrize("kind", suite.KINDS)
def test_suite_scenarios_parse_and_roundtrip_through_json(kind, duration):
    d = suite.make(kind, 5, duration)
    sc = parse_scenario(json.loads(json.dumps(d)))
    assert sc.duration == duration and sc.seed == 5
    assert sc.look["light"] > 0 and sc.look["texture"] > 0
    if kind in ("follow", "obstacles"):
        assert sc.path.total > sc.speed_profile[:, 1].max() * duration
        assert (sc.target is not None) == (kind == "follow") and len(sc.obstacles) > 0
        return
    if kind == "errand":   # a standing start, the person, the spoken words within the ride
        assert sc.initial["speed"] == 0 and sc.target is not None and len(sc.obstacles) > 3
        assert sc.path.total > 7.0 * duration and [w for _, w in sc.speech.commands][0] == "go"
        assert all(t < duration for t, _ in sc.speech.commands)
        assert len(sc.speech.commands) == (3 if duration >= 30 else 1 + (duration > 4.0))
        return
    speeds = sc.speed_profile[:, 1]
    assert speeds.min() >= 3.0 and speeds.max() <= 7.0
    assert sc.path.total > speeds.max() * duration  # the path outlasts the ride
    assert sc.target is not None and len(sc.obstacles) == 8


def test_polyline_projection_and_points():
    pl = world.Polyline([[0, 0], [10, 0], [10, 10]])
    assert pl.total == 20.0
    assert pl.point(15.0) == (10.0, 5.0)
    assert pl.point(25.0) == (10.0, 15.0)  # extends straight past the end
    s, lat = pl.project(5.0, 2.0)
    assert s == 5.0 and lat == 2.0  # +y is to the right of +x (z down)
    s, lat = pl.project(12.0, 5.0)
    assert s == 15.0 and lat == -2.0
    assert pl.heading(15.0) == pytest.approx(math.pi / 2)


def test_gust_schedule_is_seeded():
    g = world.Gusts(rate_hz=0.5, impulse=(2.0, 4.0), events=[[1.0, 3.0]])
    a = g.schedule(60.0, np.random.default_rng(1))
    b = g.schedule(60.0, np.random.default_rng(1))
    assert a == b and (1.0, 3.0) in a
    mags = [abs(j) for t, j in a if (t, j) != (1.0, 3.0)]
    assert 10 < len(mags) < 60 and all(2.0 <= m <= 4.0 for m in mags)


def test_target_walks_along_its_path():
    d = base()
    d["world"] = {"target": {"path": [[0, 5], [20, 5]], "speed": 2.0, "start": 1.0}}
    sc = parse_scenario(d)
    assert sc.target.position(0.5)[:2] == (0.0, 5.0)
    assert sc.target.position(3.0)[:2] == (4.0, 5.0)
    assert sc.target.position(100.0)[:2] == (20.0, 5.0)


def test_shipped_example_scenario_loads():
    from tianrt.demos.bicycle.policy import DATA

    sc = load_scenario(DATA / "example_scenario.json")
    assert sc.name == "example-city" and sc.seed == 42
    assert [o.kind for o in sc.obstacles].count("box") == 2 and sc.target.start == 5.0
    assert sc.gusts.events == [[5.0, 10.0], [25.0, -10.0]]
    assert sc.target_speed(17.5) == pytest.approx(4.75)
