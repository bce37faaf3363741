"""The shipped vision CNN on a small held-out set (scenario seeds never used in training), in
float and int8; labels from the renderer (an occluded person is not visible)."""
import numpy as np
import pytest

import tianrt as tr
from tianrt.demos.bicycle import evaluate_nav, suite, train_vision, vision, world


@pytest.fixture(scope="module")
def cnn():
    return vision.load()


def test_labels_code_and_sectors():
    c = vision.bearing_code(10.0, True)
    assert np.argmax(c) == 9 and c.max() == 1.0 and not vision.bearing_code(10.0, False).any()
    sc = world.parse_scenario({"path": [[0, 0], [100, 0]], "world": {"obstacles": [{"kind": "cone", "x": 7.6, "y": 0.0}]}})
    s = vision.sectors_truth(sc.obstacles, 0.6, 0.0, 0.0)
    assert s[3] == pytest.approx(vision.SECTOR_NEAR / 7.0) and s[0] == 0 and s[6] == 0


def test_cnn_accuracy_on_held_out_seeds(cnn):
    acc = evaluate_nav.accuracy(cnn, seeds=range(2), per_scenario={"follow": 12, "obstacles": 6})
    assert acc["frames"] == 36 and acc["visible_frames"] > 5
    assert acc["visible_accuracy"] >= 0.75
    assert acc["bearing_mae_deg"] <= 8.0
    assert acc["sector_mae"] <= 0.2 and acc["sector_trigger_recall"] >= 0.4
    by_range = acc["distance_by_range_m"]
    assert list(by_range) == ["2-6", "6-10", "10-15"] and by_range["2-6"]["frames"] > 0
    assert sum(r["frames"] for r in by_range.values()) <= acc["visible_frames"]


def test_sensor_model_misses_far_obstacles_more_than_near_ones(cnn):
    """The figures behind avoid.free_weight, on a few validation scenes: the CNN reports
    something for most obstacles within 8 m, for fewer beyond, and for few empty sectors."""
    sm = evaluate_nav.sensor_model(cnn, seeds={"obstacles": range(2000, 2008)}, per_scenario=10)
    near = [sm[b] for b in ("0-4", "4-6", "6-8")]
    far = [sm[b] for b in ("10-12", "12-15")]
    p = lambda bins: sum(b["p_nothing"] * b["sectors"] for b in bins) / sum(b["sectors"] for b in bins)
    assert all(b["sectors"] > 0 for b in near + far)
    assert p(near) < 0.3 < p(far) and sm["empty"]["p_nothing"] > 0.8
    # an empty sector's false reports are rarer near than far (avoid.occupied_weight)
    assert sm["report 4-6"]["p_report_empty"] < sm["report 12-14"]["p_report_empty"]
    assert sm["report 4-6"]["p_hit"] > sm["report 4-6"]["p_report_empty"]
    # by kind: every sector with an obstacle is a cone's or a box's, and both kinds are there
    kinds = sm["by_kind"]
    assert all(kinds["cone"][b]["sectors"] + kinds["box"][b]["sectors"] == sm[b]["sectors"] for b in kinds["box"])
    assert all(sum(r["sectors"] for r in kinds[k].values()) > 0 for k in ("cone", "box"))
    q10, q25, q50 = sm["report 6-8"]["true_over_reported_p10_p25_p50"]
    assert 0 < q10 <= q25 <= q50 < 1.2


def test_int8_network_agrees_with_float(cnn):
    q = tr.quantize(cnn, {"frame": vision.calibration_frames(32)}, name="vision-int8")
    sc = world.parse_scenario(suite.make("follow", 3, 20.0))
    lab = vision.Labeller(sc)
    tx, ty, th = sc.target.position(5.0)
    frame = lab.cam.frame(tx - 6 * np.cos(th), ty - 6 * np.sin(th), th, 0.0, 5.0)
    x = vision.normalise(frame[None])[0]
    a = np.asarray(tr.Runtime(cnn).step({"frame": x})["y"]).reshape(-1)
    b = np.asarray(tr.Runtime(q).step({"frame": x})["y"]).reshape(-1)
    assert np.abs(a - b).max() < 0.15


def test_training_scenes_break_the_lane_shortcut():
    """Mixed training scenes hold a person and obstacles in the same frames, and every training
    lane gets its own width (a network that read the scene's kind from the lane took a box on a
    follow route for the person); evaluation scenes keep the suite's widths."""
    x, y = train_vision.dataset({"mixed": range(3000, 3004)}, {"mixed": 10}, 0)
    person, obstacle = y[:, 15] > 0.5, (y[:, vision.SLICES["sectors"]] > 0.3).any(axis=1)
    assert x.shape == (40, 48, 64) and (person & obstacle).mean() >= 0.2
    assert (person & ~obstacle).any() and (obstacle & ~person).any()
    widths = [train_vision.scene("follow", s).lanes[0].width for s in range(1000, 1006)]
    assert len(set(widths)) == 6 and all(train_vision.LANE_WIDTH[0] <= w <= train_vision.LANE_WIDTH[1] for w in widths)
    assert train_vision.scene("follow", 1000, vary=False).lanes[0].width == 4.0
    on_route = train_vision.scene("mixed", 3000).obstacles
    assert len(on_route) > len(train_vision.scene("follow", 3000).obstacles)


def test_more_looks_add_new_scenes_and_keep_the_old_frames():
    """``--looks 2`` (the default) trains on TRAIN_SEEDS plus a block of new scenario seeds per
    kind: never a validation, evaluation or ride seed (< 1000), and the first block's frames are
    unchanged."""
    one, two = train_vision.train_seeds(1), train_vision.train_seeds(2)
    assert train_vision.train_seeds() == two
    for kind, blocks in two.items():
        seen = [s for r in blocks for s in r]
        assert blocks[0] == train_vision.TRAIN_SEEDS[kind] and one[kind] == blocks[:1]
        assert len(set(seen)) == len(seen) == 2 * len(train_vision.TRAIN_SEEDS[kind])
        assert min(seen) >= 1000 and not set(seen) & set(train_vision.VAL_SEEDS[kind])
    x1, y1 = train_vision.dataset({"mixed": [range(3000, 3002)]}, {"mixed": 3}, 0)
    x2, y2 = train_vision.dataset({"mixed": [range(3000, 3002), range(6000, 6002)]}, {"mixed": 3}, 0)
    assert len(x2) == 12 and np.array_equal(x2[:6], x1) and np.array_equal(y2[:6], y1)
    with pytest.raises(ValueError, match="choose 1 to"):
        train_vision.train_seeds(1 + len(train_vision.MORE_LOOKS) + 1)


def test_near_box_frames_put_a_box_1_5_to_6_m_ahead_and_leave_the_other_frames_alone():
    """The ``near_box`` scenes (their own seeds, never a validation or ride seed) give frames
    before a box on the path, most with a box 1.5-6 m away in a sector; the other kinds' frames
    are the same with or without them."""
    x, y, box = train_vision.dataset({"near_box": [range(7000, 7004)]}, {"near_box": 12}, 0, boxes=True)
    sectors = y[:, vision.SLICES["sectors"]]
    near = (box & (sectors >= vision.sector_value(6.0))).any(axis=1)
    assert x.shape == (48, 48, 64) and near.mean() >= 0.7
    assert min(train_vision.NEAR_BOX_SEEDS) >= 1000 and not set(train_vision.NEAR_BOX_SEEDS) & {
        s for blocks in train_vision.train_seeds().values() for r in blocks for s in r}
    alone = train_vision.dataset({"mixed": [range(3000, 3002)]}, {"mixed": 3}, 0)
    both = train_vision.dataset({"mixed": [range(3000, 3002)], "near_box": [range(7000, 7001)]},
                                {"mixed": 3, "near_box": 2}, 0)
    assert len(both[0]) == 8 and np.array_equal(both[0][:6], alone[0]) and np.array_equal(both[1][:6], alone[1])
    with pytest.raises(ValueError, match="give 0"):
        train_vision.train(near_box_frames=-1)


def test_the_person_explains_away_its_own_sector_readings():
    """A sector reading at the person's bearing and about their distance is the person, not an
    obstacle; one clearly nearer than the person, or in another sector, stays; labels do not
    change (they never put the person in a sector)."""
    near = vision.sector_value
    s = np.array([0.0, near(9.0), 0.0, near(6.5), near(3.0), 0.0, near(6.0)])
    out = vision.explain_person(s, bearing=-1.0, distance=6.0)       # sector 3 spans -5..5 degrees
    assert out[3] == 0.0 and out[1] == s[1] and out[6] == s[6]
    assert out[4] == s[4]                  # 3 m: nearer than 0.7 x 6 m, something between us and them
    y = np.zeros(vision.N_OUT)
    y[vision.SLICES["code"]] = vision.bearing_code(-1.0, True)
    y[15], y[16] = 1.0, vision.distance_value(6.0)
    y[vision.SLICES["sectors"]] = s
    assert vision.decode(y).sectors[3] == 0.0 and vision.decode(y, explain=False).sectors[3] == s[3]
    assert vision.decode(y).explained.tolist() == [k == 3 for k in range(7)]   # what the map must not call free
    assert not vision.decode(y, explain=False).explained.any()
    y[15] = 0.0                            # nobody seen: nothing to explain
    np.testing.assert_allclose(vision.decode(y).sectors, s)
    assert not vision.decode(y).explained.any()
    # a person seen, but less surely than the brain needs to assert one (brain.SEEN_ON): the
    # reading stays, as the CNN takes cones for a far person at such a visibility (round 13)
    y[15] = 0.6
    assert vision.decode(y).bearing is not None and not vision.decode(y).explained.any()
    np.testing.assert_allclose(vision.decode(y).sectors, s)
    y[15] = vision.EXPLAIN_VISIBLE
    assert vision.decode(y).explained[3]


def test_the_person_explains_sectors_as_surely_as_the_brain_asserts_the_person():
    from tianrt.demos.bicycle import brain

    assert vision.EXPLAIN_VISIBLE == brain.SEEN_ON


def test_a_mirrored_frame_has_the_mirrored_labels():
    """``train_vision.mirrored``: the frame flipped left to right, the person's bearing code and
    the sectors read backwards; rendering the mirrored world would give the same labels, so a
    person on the right becomes one on the left and a sector's obstacle moves to its mirror."""
    sc = world.parse_scenario({"path": [[0, 0], [100, 0]], "world": {"obstacles": [{"kind": "cone", "x": 8.0, "y": -1.5}]}})
    y = np.zeros((1, vision.N_OUT), np.float32)
    y[0, vision.SLICES["code"]] = vision.bearing_code(12.0, True)
    y[0, 15], y[0, 16] = 1.0, vision.distance_value(7.0)
    y[0, vision.SLICES["sectors"]] = vision.sectors_truth(sc.obstacles, 0.6, 0.0, 0.0)
    x = np.arange(48 * 64, dtype=np.uint8).reshape(1, 48, 64)
    xm, ym = train_vision.mirrored(x, y)
    assert np.array_equal(xm[0, :, 0], x[0, :, -1]) and xm.flags["C_CONTIGUOUS"]
    assert vision.decode(ym[0]).bearing == pytest.approx(-vision.decode(y[0]).bearing)
    assert ym[0, 15] == y[0, 15] and ym[0, 16] == y[0, 16]
    other_side = world.parse_scenario({"path": [[0, 0], [100, 0]], "world": {"obstacles": [{"kind": "cone", "x": 8.0, "y": 1.5}]}})
    assert np.allclose(ym[0, vision.SLICES["sectors"]], vision.sectors_truth(other_side.obstacles, 0.6, 0.0, 0.0))
    x2, y2 = train_vision.mirrored(xm, ym)
    assert np.array_equal(x2, x) and np.array_equal(y2, y)


def test_the_map_replay_measures_what_the_map_holds_on_the_same_readings(cnn, monkeypatch):
    """evaluate_nav.map_quality: the obstacle map from the CNN along one scene's path, open
    loop. Cones on the path are mapped from afar and held as they come near; the same readings
    replayed give the same figures, and a map that never marks anything holds nothing."""
    from tianrt.demos.bicycle import avoid

    cache = {}
    r = evaluate_nav.map_quality(cnn, kinds=("obstacles",), seeds=range(700, 701), replays=cache)
    assert r["frames"] > 500 and r["cone"]["obstacles"] > 0
    assert r["cone"]["first_mapped_8m_or_farther"] >= 0.5 and r["cone"]["held_3_8m"] >= 0.8
    assert evaluate_nav.map_quality(cnn, kinds=("obstacles",), seeds=range(700, 701), replays=cache) == r
    monkeypatch.setattr(avoid, "L_OCC", 0.0)
    blind = evaluate_nav.map_quality(cnn, kinds=("obstacles",), seeds=range(700, 701), replays=cache)
    assert blind["cone"]["first_mapped_m_median"] == 0.0 and blind["cone"]["held_3_8m"] == 0.0
    assert blind["false_cells_per_frame"] == blind["phantom_cells_per_frame"] == 0.0
