"""The balance network in tianrt: the shipped MLP imitates the teacher, rides in closed loop
through tr.stream's scheduler (the same ride as stepping the Runtime directly), on the
reference and numba backends, as an ANN and converted to an SNN; and the demo command."""
import json

import cv2
import numpy as np
import pytest

import tianrt as tr
from tianrt.demos.bicycle import policy, suite, world
from tianrt.demos.bicycle.cli import main as demo_main
from tianrt.demos.bicycle.run import run, run_stream, teacher_for


@pytest.fixture(scope="module")
def ann():
    return policy.load()


@pytest.fixture(scope="module")
def ride():
    sc = world.parse_scenario(suite.make("gust_suite", 3, 8.0))
    return sc, run(sc, teacher_for(sc), "lqr", keep_traces=True)


@pytest.fixture(scope="module")
def snn(ann):
    return policy.to_snn(ann, policy.calibration_data(10.0), T=16)


def test_shipped_model_is_a_small_mlp_that_imitates_the_teacher(ann, ride):
    sc, r = ride
    assert list(ann.inputs) == ["obs"] and list(ann.outputs) == ["torque"]
    assert ann.metadata["control_hz"] == 100.0 and ann.metadata["inputs"][5] == "lean_desired"
    assert sum(e.node.n_params() for e in ann.entries.values()) < 5000
    obs = r.traces["obs"]
    out = tr.Runtime(ann).run({"obs": obs.astype(np.float32)})["torque"][:, 0]
    err = out - teacher_for(sc).batch(obs)
    assert np.sqrt(np.mean(err ** 2)) < 0.05  # N m; the teacher's torques reach ~1 N m here


def test_stream_ride_is_the_direct_ride(ann, ride):
    sc, teacher = ride
    direct = run(sc, policy.NetworkPolicy(ann), "mlp", keep_traces=True)
    stream = run_stream(sc, ann, "reference", keep_traces=True)
    np.testing.assert_array_equal(direct.traces["torque"], stream.traces["torque"])
    assert not stream.fell and stream.delay_steps == 0
    assert stream.rms_path_error <= 1.5 * teacher.rms_path_error
    assert stream.stream["ticks"] >= 800 and stream.stream["outputs"]["torque"]["values"] == 800


def test_numba_backend_rides_like_the_reference(ann, ride):
    sc, _ = ride
    ref = run_stream(sc, ann, "reference", keep_traces=True)
    nb = run_stream(sc, ann, "numba", keep_traces=True)
    assert not nb.fell
    np.testing.assert_allclose(nb.traces["torque"], ref.traces["torque"], atol=1e-3)


def test_snn_rides_one_step_late_on_both_backends(snn, ride):
    sc, teacher = ride
    assert snn.metadata["delay_steps"] == 1 and snn.dt == pytest.approx(0.01 / 16)
    kinds = {e.node.op for e in snn.entries.values()}
    assert "snn.LIF" in kinds and "bridge.MembraneReadout" in kinds
    ref = run_stream(sc, snn, "reference", keep_traces=True)
    direct = run(sc, policy.NetworkPolicy(snn), "snn", keep_traces=True)
    np.testing.assert_allclose(direct.traces["torque"], ref.traces["torque"], atol=1e-6)
    assert ref.traces["torque"][0] == 0.0  # nothing computed yet during the first step
    nb = run_stream(sc, snn, "numba")
    for r in (ref, nb):
        assert not r.fell and r.delay_steps == 1
        assert r.rms_path_error <= 1.5 * teacher.rms_path_error


def test_demo_command_writes_summary_and_video(tmp_path, capsys):
    code = demo_main(["--kind", "straight", "--duration", "3", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "bicycle-straight-0-summary.json").read_text())
    rides = {r["controller"]: r for r in summary["rides"]}
    assert set(rides) == {"mlp/reference/stream", "lqr"}
    assert rides["mlp/reference/stream"]["fell"] is False
    assert summary["camera"]["frames"] == 90
    assert (tmp_path / "bicycle-straight-0-mlp.mp4").stat().st_size > 10_000


def test_demo_command_writes_a_still_of_the_video(tmp_path, capsys):
    code = demo_main(["--kind", "straight", "--duration", "1", "--no-teacher", "--still", "0.5", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "bicycle-straight-0-summary.json").read_text())
    still = cv2.imread(summary["still"])
    assert summary["still"] == str(tmp_path / "bicycle-straight-0-still.png") and still.shape == (380, 880, 3)
    for argv, why in ((["--no-video"], "drop --no-video"), (["--duration", "1"], "after the ride's end")):
        assert demo_main(["--kind", "straight", "--still", "2", *argv, "--out", str(tmp_path)]) == 2
        assert why in capsys.readouterr().err


def test_demo_command_says_when_the_still_cannot_be_written(tmp_path, capsys, monkeypatch):
    """A still that cannot be written (a full disk, say) ends the ride with one line naming the
    file, not a traceback."""
    monkeypatch.setattr(cv2, "imwrite", lambda *a, **k: False)
    code = demo_main(["--kind", "straight", "--duration", "1", "--no-teacher", "--still", "0.5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3 and "could not write the still" in err and "bicycle-straight-0-still.png" in err


def test_demo_command_names_the_bad_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"path": [[0, 0], [10, 0]], "gusts": {"rate_hz": "often"}}))
    assert demo_main(["--scenario", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "'gusts.rate_hz'" in err
    assert demo_main(["--model", str(tmp_path / "none.tnr"), "--out", str(tmp_path / "o")]) == 2
    assert "no balance model at" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the inputs are known good


def test_evaluation_script_tables_a_short_run():
    from tianrt.demos.bicycle import evaluate

    res = evaluate.evaluate(n=2, duration=4.0, controllers=("lqr", "mlp/reference", "snn/numba"), log=lambda *a: None)
    tab = res["table"]
    assert tab["lqr"]["ratio_max"] == 1.0 and tab["mlp/reference"]["falls"] == 0
    assert tab["snn/numba"]["delay_steps"] == 1 and res["seeds"] == [0, 1]
    assert all(r["passed"] for r in tab.values())
    md = evaluate.markdown(tab)
    assert md.count("\n") == 4 and "| snn/numba | 0/2 |" in md
