"""The brain acting (demos/bicycle/pilot.py): the neural state machine's state chooses the
behaviour, spoken commands are obeyed, the stand holds the bicycle before "go" and after "stop";
and ``tianrt demo bicycle``'s default ride (the errand scenario with the whole brain) writes the
commands heard and obeyed and the state sequence in its summary."""
import json
import math

import numpy as np
import pytest

from ride_log import lost_seconds
from tianrt.demos.bicycle import brain as B
from tianrt.demos.bicycle import cli, pilot, policy, render, speech, suite, world
from tianrt.demos.bicycle.run import run_stream, schedule_for


def _errand(commands, duration, seed=3):
    d = suite.make("errand", seed, 30.0)
    d["duration"] = duration
    d["speech"] = {"commands": commands, "snr_db": 15, "noise": ["motor", "wind"]}
    return world.parse_scenario(d)


@pytest.fixture(scope="module")
def ride():
    sc = _errand([[0.3, "go"], [4.0, "faster"], [6.5, "right"], [8.0, "stop"]], 11.0)
    audio, said = speech.track(sc.speech, sc.duration, sc.seed)
    b = B.Brain(audio=audio)
    pl = pilot.Pilot(sc, schedule_for(sc.bicycle, 1.0 / sc.control_hz), b)
    cam = render.SensorCamera(render.Scene(sc))
    r = run_stream(sc, policy.load(), "numba", camera_hz=30.0, camera=cam, nav=pl, brain=b, keep_traces=True)
    return r, pl, said


@pytest.fixture(scope="module")
def brain():
    """One brain for the geometry tests' pilots (they never step it)."""
    return B.Brain()


@pytest.fixture
def pl(brain):
    """A fresh pilot on the errand scenario, never ridden: the geometry tests set its map,
    scenario and state themselves, so no test sees another's."""
    sc = _errand([[0.3, "go"]], 11.0)
    return pilot.Pilot(sc, schedule_for(sc.bicycle, 1.0 / sc.control_hz), brain)


def test_every_spoken_command_is_heard_and_obeyed_in_time(ride):
    r, pl, said = ride
    cmd = r.brain["commands"]
    assert [w for _, w in cmd["heard"]] == [x["word"] for x in said] == ["go", "faster", "right", "stop"]
    for (t, w), x in zip(cmd["heard"], said):
        assert x["t"] <= t <= x["end"] + 0.6, (w, t, x)
    assert [w for _, w, _ in cmd["obeyed"]] == ["go", "faster", "right", "stop"] and not cmd["not_obeyed"]
    assert all(dt <= pilot.OBEY_S for _, _, dt in cmd["obeyed"])
    assert pl.speed_offset == pilot.SPEED_STEP and pl.lane == -pilot.LANE


def test_faster_raises_the_cruise_but_the_speed_stays_within_sight(ride):
    """"faster" moves the cruise set point above V_SIGHT; the bicycle rides no faster than that
    limit (plus the speed loop's overshoot), the speed the CNN's range for a cone allows."""
    r, pl, _ = ride
    t, v = r.traces["t"], r.traces["speed"]
    faster = r.brain["commands"]["heard"][1][0]
    assert pl.cruise(faster + 1.0) > pilot.V_SIGHT + 0.4   # (without the limit it would ride that)
    assert v[t > faster + 1.0].max() > pilot.V_SIGHT - 0.3, "it does speed up to the limit"
    assert v.max() < pilot.V_SIGHT + 0.25


def test_the_brain_tracks_in_the_pilots_world_frame_and_lost_s_is_the_time_without_estimate(ride):
    r, pl, _ = ride
    tgt = r.summary()["target"]
    est = np.array([f[3] for f in pl.frames])
    assert np.isfinite(est).any() and (~np.isfinite(est)).any()
    assert tgt["lost_s"] == pytest.approx(lost_seconds(pl.frames, r.duration), abs=1e-9)
    assert pl.brain.heading() == math.degrees(pl.est.pose[2])   # the ring's frame: the pilot's dead reckoning
    assert abs(pl.brain.heading()) > 2.0                         # (the ride turned: the frames differ)


def test_the_state_machine_drives_and_the_stand_holds(ride):
    r, pl, said = ride
    assert not r.fell and r.collisions == 0
    states = r.brain["nsm"]["states"]
    assert states[:2] == ["idle", "ride"] and states[-2:] == ["stop_requested", "idle"]
    t, v, lean = r.traces["t"], r.traces["speed"], r.traces["lean"]
    go = r.brain["commands"]["heard"][0][0]
    before = t < go
    assert np.all(v[before] == 0) and np.all(lean[before] == 0), "on the stand until go is heard"
    stand = pl.stand_changes
    assert stand[0][1] == "up" and stand[-1][1] == "down" and stand[-1][0] > r.brain["commands"]["heard"][-1][0]
    up = (t > stand[0][0]) & (t < stand[-1][0])
    assert v[up].min() >= pilot.V_STAND - 0.3, "rides no slower than it can balance while off the stand"
    end = t > stand[-1][0] + 1.0
    assert np.all(lean[end] == 0) and v[-1] < v[up].max() / 2, "braked onto the stand after stop"


def test_default_demo_is_the_brain_errand_and_reports_commands(tmp_path, capsys):
    code = cli.main(["--duration", "4", "--no-video", "--out", str(tmp_path)])
    assert "heard go; obeyed 1 of 1; states idle > ride" in capsys.readouterr().out
    summary = json.loads(next(tmp_path.glob("bicycle-errand-0-summary.json")).read_text())
    assert code == 0
    assert [w for _, w in summary["commands"]["heard"]] == ["go"]
    assert [w for _, w, _ in summary["commands"]["obeyed"]] == ["go"]
    assert summary["nsm"]["states"][:2] == ["idle", "ride"]
    assert math.isclose(summary["duration_s"], 4.0)


def test_lqr_cannot_ride_with_the_brain(tmp_path, capsys):
    assert cli.main(["--controller", "lqr", "--no-video", "--duration", "2", "--out", str(tmp_path)]) == 2
    assert "--brain off" in capsys.readouterr().err


def test_demo_rides_the_whole_brain_on_the_chip_over_a_pty(tmp_path):
    """``--chip``: every network quantised onto one 156-core chip (firmware_sim on a pty), the
    pilot obeying the state machine that runs there; the summary says how many cores."""
    code = cli.main(["--chip", "--controller", "snn", "--duration", "2.5", "--no-video", "--out", str(tmp_path)])
    summary = json.loads(next(tmp_path.glob("bicycle-errand-0-summary.json")).read_text())
    assert code == 0 and summary["chip"]["cores"] <= summary["chip"]["cores_chip"] == 156
    assert summary["chip"]["networks"] == ["balance", "nsm", "vision", "cann", "voice"]
    assert [c[1] for c in summary["commands"]["obeyed"]] == ["go"] and summary["nsm"]["states"][:2] == ["idle", "ride"]


@pytest.mark.parametrize("argv,why", [(["--chip"], "--controller snn"),
                                      (["--chip", "--controller", "snn", "--brain", "off", "--kind", "demo"], "whole brain"),
                                      (["--chip", "--controller", "snn", "--vision", "truth"], "diagnostic")])
def test_chip_demo_refuses_what_cannot_run_there(tmp_path, capsys, argv, why):
    assert cli.main([*argv, "--no-video", "--duration", "2", "--out", str(tmp_path)]) == 2
    assert why in capsys.readouterr().err


def test_the_stand_lets_go_only_with_the_way_ahead_clear(pl):
    """Off the stand the bicycle rides straight until it can balance; it must not be launched
    at something the map holds a few metres ahead (it stays on the stand), but may be beside it."""
    from tianrt.demos.bicycle import avoid, vision

    for y_cone, clear in ((0.2, False), (3.0, True)):
        sc = world.parse_scenario({"path": [[0, 0], [100, 0]], "world": {"obstacles": [{"kind": "cone", "x": 13.0, "y": y_cone}]}})
        pl.map = avoid.ObstacleMap()
        for x in np.arange(8.0, 10.0, 0.1):      # seen from the stand's position and a little before
            pl.map.update(x, 0.0, 0.0, vision.sectors_truth(sc.obstacles, x, 0.0, 0.0))
        assert pl._launch_clear(10.0, 0.0, 0.0) is clear
    pl.map = avoid.ObstacleMap()
    assert pl._launch_clear(10.0, 0.0, 0.0)


def _boxes_ride(at: float, offsets, duration: float):
    """An errand lane with boxes across the path ``at`` metres from the start (at these lateral
    offsets), a spoken "go", labels as perception (rows of boxes are scenes the CNN was never
    shown), from the stand at the start: (result, pilot, scenario)."""
    d = suite.make("errand", 3, 30.0)
    d["duration"] = duration
    d["speech"] = {"commands": [[0.3, "go"]], "snr_db": 15, "noise": ["motor", "wind"]}
    path = world.parse_scenario(d).path
    (px, py), h = path.point(at), path.heading(at)
    d["world"]["obstacles"] = [{"kind": "box", "x": px - off * math.sin(h), "y": py + off * math.cos(h), "size": 1.0,
                                "height": 1.1, "yaw": math.degrees(h)} for off in offsets]
    d["world"]["target"] = None
    sc = world.parse_scenario(d)
    audio, _ = speech.track(sc.speech, sc.duration, sc.seed)
    b = B.Brain(audio=audio)
    pl = pilot.Pilot(sc, schedule_for(sc.bicycle, 1.0 / sc.control_hz), b, perception="truth")
    r = run_stream(sc, policy.load(), "numba", camera_hz=30.0, camera=render.SensorCamera(render.Scene(sc)), nav=pl,
                   brain=b, keep_traces=True)
    return r, pl, sc


def test_the_pilot_brakes_to_its_stand_before_a_wall_it_cannot_pass():
    """A row of boxes across the whole road 30 m ahead: no offset passes it, so once the planned
    trajectory touches it nearer than the bicycle can stop (``Navigator._stopping``), the pilot
    brakes onto its stand and stays there: a stop, not a crash."""
    r, pl, _ = _boxes_ride(30.0, np.arange(-6.0, 6.01, 1.0), 13.0)
    assert r.collisions == 0 and not r.fell
    assert len(pl.emergency) == 1 and pl.stand_changes[-1][1] == "down" and pl.stand_changes[-1][0] > pl.emergency[0]
    assert r.traces["speed"][-1] < 0.1 and pl.stand


def test_the_last_line_swerves_to_a_way_that_does_not_touch_before_it_brakes(pl):
    """``Pilot._last_line``: the planned trajectory touches the map 2 m ahead at 3 m/s (nearer
    than the bicycle can stop). If some candidate does not touch within its stopping distance,
    the pilot takes the nearest such offset and rides on; only if none does, it brakes."""
    from tianrt.demos.bicycle import avoid

    offsets = avoid.OFFSETS
    pl.stand, pl._braking, pl.emergency, pl.swerves = False, False, [], []
    pl.offset, pl.contact = 1.0, 2.0
    pl.contacts = np.where(offsets <= -1.0, math.inf, 2.0)
    pl._last_line(10.0, 3.0)
    assert pl.offset == -1.0 and not pl._braking and pl.swerves == [10.0] and pl.emergency == []
    pl.offset, pl.contact = 1.0, 2.0
    pl.contacts = np.full(len(offsets), 2.0)
    pl._last_line(12.0, 3.0)
    assert pl.offset == 1.0 and pl._braking and pl.emergency == [12.0]


def test_the_stand_turns_the_bicycle_to_a_clear_way_and_launches_past_a_box():
    """A box 7 m ahead of the stand: the way straight ahead stays blocked, so after
    ``TURN_AFTER`` the stand turns the handlebar and rolls the bicycle round to a clear
    heading (``Pilot._turn_to_launch``), then launches straight and rides past the box (before
    round 9 it stood there until the ride ended). A box 4.5 m ahead is nearer than the CNN's
    sectors resolve (saturated: the map never places it): the bicycle neither launches into it
    (before round 9 it did) nor turns into what it cannot place; it waits."""
    r, pl, sc = _boxes_ride(7.0, [0.0], 12.0)
    assert r.collisions == 0 and not r.fell
    assert len(pl.turns) == 1 and pl.turns[0][0] >= 0.3 + pilot.TURN_AFTER and pl.turns[0][1] is not None
    assert [c for _, c in pl.stand_changes] == ["up"] and r.traces["speed"][-1] > pilot.V_LAUNCH
    r, pl, sc = _boxes_ride(4.5, [0.0], 8.0)
    assert r.collisions == 0 and pl.stand and pl.turns == [] and r.traces["speed"][-1] < 0.1


def test_stand_turn_geometry_refuses_a_turn_into_what_the_map_holds(pl):
    """``_turn_to_launch`` on a map made from the labels while riding up to the stand's position:
    boxes ahead from the path to the right only turn left; a wall across the road leaves no
    turn (the bicycle waits)."""
    from tianrt.demos.bicycle import avoid, vision

    for boxes, want in (([(6.0, 0.0), (6.0, -1.0), (6.0, -2.0), (6.0, -3.0)], 1),
                        ([(6.0, y) for y in np.arange(-8.0, 8.01, 1.0)], 0)):
        sc = world.parse_scenario({"path": [[0, 0], [100, 0]], "world": {"obstacles": [
            {"kind": "box", "x": 10.0 + bx, "y": by, "size": 1.0} for bx, by in boxes]}})
        pl.sc, pl.map, pl._turn_sign, pl.offset, pl.percept = sc, avoid.ObstacleMap(), 0, 0.0, None
        for x in np.arange(0.0, 10.01, 0.25):     # seen while riding up to the stand's position
            pl.map.update(x, 0.0, 0.0, vision.sectors_truth(sc.obstacles, x, 0.0, 0.0))
        assert not pl._launch_clear(10.0, 0.0, 0.0)
        assert pl._turn_to_launch(10.0, 0.0, 0.0) is bool(want) and pl._turn_sign == want


def test_the_roll_out_onto_the_stand_steers_away_from_what_the_map_holds(pl):
    """``Pilot._roll_out`` on a map made from the labels while riding up: the stand down at 2 m/s
    with a box 2.6 m ahead a little to one side steers the handlebar to the other side, and the
    arc taken keeps clearer than rolling straight, and the turn goes on once begun; with the box
    beside the way, or rolling slower than V_ROLL, the handlebar stays straight."""
    from tianrt.demos.bicycle import avoid, vision

    for (bx, by), v, want in (((12.6, -0.3), 2.0, 1), ((12.6, 0.3), 2.0, -1),
                              ((12.6, 3.0), 2.0, 0), ((12.6, -0.3), 0.2, 0)):
        sc = world.parse_scenario({"path": [[0, 0], [100, 0]], "world": {"obstacles": [
            {"kind": "box", "x": bx, "y": by, "size": 1.0}]}})
        pl.sc, pl.map, pl.percept, pl._roll_sign, pl.roll_steers = sc, avoid.ObstacleMap(), None, 0, []
        for x in np.arange(0.0, 10.01, 0.25):     # seen while riding up to where the stand comes down
            pl.map.update(x, 0.0, 0.0, vision.sectors_truth(sc.obstacles, x, 0.0, 0.0))
        pl._roll_out(30.0, 10.0, 0.0, 0.0, v)
        assert pl.stand_steer == want * pilot.STAND_STEER and len(pl.roll_steers) == abs(want)
        if want:    # the arc over the roll-out (1.8 m) keeps clearer than rolling straight
            cells, s = pl.map.occupied(10.0, 0.0, 6.0), np.linspace(0.0, 1.8, 19)
            arc = pl._footprint_gaps(cells, *pl._stand_arc(10.0, 0.0, 0.0, want, s * pl._stand_k()))
            straight = pl._footprint_gaps(cells, 10.0 + s, np.zeros_like(s), np.zeros_like(s))
            assert np.maximum(avoid.CONTACT - arc, 0).sum() < np.maximum(avoid.CONTACT - straight, 0).sum()
            assert arc[-1].min() > straight[-1].min()   # and stops clearer
            pl.map = avoid.ObstacleMap()             # the box out of the map (beside, out of view): the turn goes on
            pl._roll_out(30.1, 10.0, 0.0, 0.0, v)
            assert pl.stand_steer == want * pilot.STAND_STEER and len(pl.roll_steers) == 1


def test_a_person_kept_in_mind_is_forgotten_when_their_place_is_in_plain_view(pl):
    """``Pilot._forget_person``: the person kept in mind (the speed limit behind them) is dropped
    once where they should be is in view and near, nothing the map holds in between, and the CNN
    has seen nobody for FORGET_S; kept while seen, while too far, or behind a box."""
    from tianrt.demos.bicycle import avoid, estimate, vision

    nobody = vision.Percept(visible=0.0, bearing=None, distance=0.0, sectors=np.zeros(7), code=np.zeros(15))
    somebody = vision.Percept(visible=0.9, bearing=0.0, distance=6.0, sectors=np.zeros(7), code=np.zeros(15))
    box = world.parse_scenario({"path": [[0, 0], [100, 0]],
                                "world": {"obstacles": [{"kind": "box", "x": 14.0, "y": 0.0, "size": 1.0}]}})

    def watch(ahead, percept, boxes=None):
        pl.sc = world.parse_scenario({"path": [[0, 0], [100, 0]]})
        pl.est = estimate.DeadReckoning(10.0, 0.0, 0.0, seed=0)
        pl.map, pl.v_person, pl._unseen_since, pl.forgotten = avoid.ObstacleMap(), 0.0, None, []
        for x in np.arange(5.0, 10.01, 0.25) if boxes else ():
            pl.map.update(x, 0.0, 0.0, vision.sectors_truth(boxes.obstacles, x, 0.0, 0.0))
        pl._person = (10.0 + ahead, 0.0)
        for t in np.arange(20.0, 21.5, 1 / 30):
            pl._forget_person(t, percept)
        return pl._person is None

    assert watch(6.0, nobody) and pl.forgotten and pl.forgotten[0] >= 20.0 + pilot.FORGET_S
    assert not watch(6.0, somebody)             # seen: kept
    assert not watch(15.0, nobody)              # too far to be sure
    assert not watch(6.0, nobody, boxes=box)    # the box 4 m ahead may hide them


def test_following_closes_in_no_faster_than_the_person_was_recently_measured(pl):
    """``Pilot._follow_person``: coming up on the person, the set point is at most V_CLOSE above the
    slowest speed estimated for them over the last ``follow.CLOSE_WINDOW_S`` — a speed estimate
    that has just risen with a distance read too far (errand seed 16, round 9) does not let the
    bicycle close in at 6 m/s; with the estimate steady the usual follow law acts."""
    from tianrt.demos.bicycle import follow

    pl.bearing, pl.heading_at_frame = 0.0, math.degrees(pl.est.pose[2])
    pl.distance, pl.v_person = 11.0, 5.0
    pl._v_recent.clear()
    pl._v_recent.extend([1.5] * 30 + [5.0] * 30)
    _, v_ref = pl._follow_person(5.0)
    assert v_ref == pytest.approx(1.5 + pilot.V_CLOSE)
    pl._v_recent.extend([4.5] * 60)                 # steady: the follow law decides
    pl.v_person = 4.5
    _, v_ref = pl._follow_person(5.0)
    assert v_ref == pytest.approx(pl._follow_speed()) and v_ref == pytest.approx(follow.V_MAX)
