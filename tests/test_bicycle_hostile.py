"""Hostile scenarios and options for the bicycle demo (issue 12, items 13-14): every numeric
field finite and in its physical range, the lean limit bounded to the linearised model's
range, names that are file names, the documented exit status (0 upright, 1 fell, 2 bad usage
or input, 3 runtime failure); and a seeded fuzz of scenario files."""
import copy
import json
import math
import os

import numpy as np
import pytest
from hostile import allocation_cap, within

import tianrt as tr
from tianrt.demos.bicycle import suite, world
from tianrt.demos.bicycle.cli import EXIT_BAD, EXIT_OK, EXIT_RUNTIME
from tianrt.demos.bicycle.cli import main as demo_main
from tianrt.demos.bicycle.run import ClosedLoop
from tianrt.demos.bicycle.world import ScenarioError, load_scenario, parse_scenario


def base(**extra):
    d = {"duration": 5.0, "path": [[0, 0], [50, 0], [100, 10]]}
    d.update(extra)
    return d


def refused(d, match):
    with pytest.raises(ScenarioError, match=match) as e:
        parse_scenario(d, "ride.json")
    assert str(e.value).startswith("scenario ride.json: ")
    assert isinstance(e.value, tr.TianrtError)


# -- 13. numbers: finite, in range ------------------------------------------------------------

def test_nan_and_infinite_gust_times_are_refused(tmp_path):
    for text, match in (("NaN", r"'gusts\.events\[1\]' must be a \[t, impulse\] pair of finite numbers, got \[nan, 5\]"),
                        ("Infinity", r"'gusts\.events\[1\]' must be a \[t, impulse\] pair of finite numbers")):
        p = tmp_path / "g.json"
        p.write_text('{"duration": 5, "path": [[0, 0], [50, 0]], "gusts": {"events": [[1, 5], [%s, 5]]}}' % text)
        with pytest.raises(ScenarioError, match=match):
            load_scenario(p)


@pytest.mark.parametrize("event,match", [
    ([True, 5.0], r"'gusts\.events\[0\]' must be a \[t, impulse\] pair of finite numbers, got \[True, 5\.0\]"),
    ([-1.0, 5.0], r"'gusts\.events\[0\]': time -1\.0 must be within \[0, 3600\] s"),
    ([1.0, 1e6], r"'gusts\.events\[0\]': impulse 1000000\.0 must be within \+-100 N m s"),
    ([1.0, False], r"pair of finite numbers"),
])
def test_gust_events_out_of_range(event, match):
    refused(base(gusts={"events": [event]}), match)


@pytest.mark.parametrize("param", ["IByy", "IHyy"])
def test_negative_inertias_are_refused(param):
    refused(base(bicycle={"params": {"base": "benchmark", param: -0.5}}),
            rf"bicycle parameter '{param}' must be > 0 and <= 1000, got -0\.5")


def test_unphysical_inertia_tensor_and_centre_below_ground():
    refused(base(bicycle={"params": {"base": "benchmark", "IBxz": 10.0}}),
            r"IBxx, IBzz, IBxz \(9\.2, 2\.8, 10\.0\) are not a physical inertia")
    refused(base(bicycle={"params": {"base": "benchmark", "zB": 0.3}}), r"'zB' .* must be above the ground")


@pytest.mark.parametrize("deg", [31, 53, 90])
def test_fall_lean_is_bounded_to_the_linear_models_range(deg):
    refused(base(limits={"fall_lean_deg": deg}),
            rf"'limits\.fall_lean_deg' must be <= 30\.0 \(the linearised model's range\), got {deg}")
    assert math.degrees(parse_scenario(base(limits={"fall_lean_deg": 30})).limits.fall_lean) == pytest.approx(30)


@pytest.mark.parametrize("patch,match", [
    ({"physics_hz": 1e9}, r"'physics_hz' must be <= 20000"),
    ({"duration": 1e9}, r"'duration' must be <= 3600"),
    ({"gusts": {"rate_hz": 1e6}}, r"'gusts\.rate_hz' must be <= 10"),
    ({"noise": {"lean": 1e300}}, r"'noise\.lean' must be <= 1"),
    ({"bicycle": {"x": 1e300}}, r"'bicycle\.x' must be <= 100000"),
    ({"path": [[0, 0], [1e300, 0]]}, r"'path\[1\]' = \[1e\+300, 0\]: values must be within \+-100000"),
    ({"seed": 2 ** 70}, r"'seed' must be an integer in \[0, 2\*\*63\)"),
    ({"world": {"obstacles": [{"kind": "cone", "x": 1, "y": 2, "yaw": float("inf")}]}},
     r"'world\.obstacles\[0\]\.yaw' must be a finite number"),
])
def test_other_numbers_out_of_range(patch, match):
    refused(base(**patch), match)


# -- 14. tracebacks and messages --------------------------------------------------------------

@pytest.mark.parametrize("name", ["sub/dir", "../up", "", ".hidden", "a" * 65, 7])
def test_names_must_be_file_names(name):
    refused(base(name=name), r"field 'name' must be 1 to 64 letters, digits")


def test_scenario_file_name_that_is_not_a_name_falls_back(tmp_path):
    p = tmp_path / "my ride (1).json"
    p.write_text(json.dumps(base()))
    assert load_scenario(p).name == "scenario"


def test_infinite_gust_impulse():
    refused(base(gusts={"impulse": [0, float("inf")]}), r"'gusts\.impulse' must be \[min, max\] with 0 <= min <= max <= 100")


def test_speed_profile_type_error_says_t_speed():
    refused(base(speed_profile=[[0, "fast"]]), r"'speed_profile' must be a list of 1 to 100000 \[t, speed\] pairs")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_scenario_fifo_and_deep_json(tmp_path):
    fifo = tmp_path / "s.json"
    os.mkfifo(fifo)
    with within(5), pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with within(5), pytest.raises(ScenarioError, match="nested too deeply"):
        load_scenario(deep)


def cli(capsys, *argv):
    rc = demo_main(list(map(str, argv)))
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap.out, cap.err


def test_demo_name_sub_dir_exits_2_and_writes_nothing(tmp_path, capsys):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(base(name="sub/dir")))
    rc, _, err = cli(capsys, "--scenario", p, "--out", tmp_path / "o", "--controller", "lqr")
    assert rc == EXIT_BAD and "field 'name'" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,message", [
    (["--controller", "snn", "--T", "0"], "argument --T: must be a whole number of ticks in [1, 1000], got 0"),
    (["--backend", "foo"], "argument --backend: invalid choice: 'foo'"),
    (["--duration", "0.001"], "argument --duration: must be seconds in [0.1, 3600], got 0.001"),
    (["--duration", "nan"], "argument --duration: must be seconds in [0.1, 3600], got nan"),
    (["--camera-hz", "-1"], "argument --camera-hz"),
    (["--seed", "-1"], "argument --seed"),
])
def test_bad_options_exit_2_naming_the_option(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        demo_main([*argv, "--out", str(tmp_path / "o")])
    assert e.value.code == EXIT_BAD and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", ["demo", "speed_changes"])
def test_short_duration_rides_the_built_in_scenario(tmp_path, capsys, kind):
    rc, out, _ = cli(capsys, "--kind", kind, "--duration", 0.5, "--controller", "lqr", "--no-video",
                     "--camera-hz", 0, "--out", tmp_path)
    assert rc == EXIT_OK and "0.5 s" in out
    cli(capsys, "--kind", kind, "--duration", 0.5, "--write-scenario", tmp_path / "s.json")
    assert load_scenario(tmp_path / "s.json").duration == 0.5


def test_backend_that_cannot_run_exits_3(tmp_path, capsys, monkeypatch):
    def unavailable(*a, **k):
        raise tr.BackendError("backend 'numba' is not available in this build of tianrt")
    monkeypatch.setattr(tr, "Runtime", unavailable)
    rc, _, err = cli(capsys, "--backend", "numba", "--out", tmp_path / "o", "--no-video")
    assert rc == EXIT_RUNTIME and "cannot run the mlp controller on backend 'numba'" in err
    assert not (tmp_path / "o").exists()


# -- the fuzz -----------------------------------------------------------------------------------

HOSTILE = [float("nan"), float("inf"), -float("inf"), True, False, None, -1, 0, -0.0, 1e308, -1e308, 2 ** 64,
           1e-320, "5", "", [], {}, [[0, 0]], [[float("nan"), 1]], [1, 2, 3], "sub/dir", {"a": 1},
           0.5, 3, 20.0]  # and a few ordinary values


def _mutate(d, rng):
    """Replace one randomly chosen leaf (or subtree) of ``d`` with a hostile value."""
    d = copy.deepcopy(d)
    node, key = d, None
    for _ in range(6):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = keys[int(rng.integers(0, len(keys)))]
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or rng.random() < 0.25:
            break
        node = child
    if key is not None:
        node[key] = HOSTILE[int(rng.integers(0, len(HOSTILE)))]
    return d


def _finite(x) -> bool:
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        return math.isfinite(x)
    if isinstance(x, np.ndarray):
        return bool(np.isfinite(x).all())
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(_finite(v) for v in x)
    return True


def test_fuzz_scenarios(tmp_path):
    rng = np.random.default_rng(13)
    seeds = [suite.make(k, 1, 10.0) for k in ("demo", "speed_changes", "straight")]
    seeds.append(base(bicycle={"params": world.params_mod.benchmark().to_dict()},
                      gusts={"events": [[1.0, 5.0]], "impulse": [1, 2]},
                      limits={"fall_lean_deg": 20}, noise={"lean": 0.01},
                      world={"target": {"path": [[0, 3], [20, 3]], "speed": 1.0}}))
    outcome = {"ok": 0, "refused": 0}
    with allocation_cap(32 << 20):
        for i in range(400):
            d = _mutate(seeds[i % len(seeds)], rng)
            snapshot = json.dumps(d)
            with within(5):
                try:
                    sc = parse_scenario(d, "fuzz.json")
                except ScenarioError as exc:
                    assert str(exc).startswith("scenario fuzz.json: "), exc
                    assert "field" in str(exc) or "path" in str(exc) or "bicycle" in str(exc), exc
                    outcome["refused"] += 1
                else:
                    outcome["ok"] += 1
                    assert _finite(sc.initial) and _finite(sc.speed_profile) and _finite(sc.gusts.events)
                    assert 0 < sc.limits.fall_lean <= math.radians(30) and sc.gusts.rate_hz <= 10
                    assert all(v > 0 for v in (sc.bicycle.IByy, sc.bicycle.IHyy, sc.bicycle.mB))
                    if i % 25 == 0:  # a few control steps: the accepted numbers ride
                        sc.duration = 0.1
                        loop = ClosedLoop(sc)
                        while not loop.done:
                            loop.observe()
                            loop.act(0.0)
                        assert math.isfinite(loop.bike.max_lean)
            assert json.dumps(d) == snapshot  # parsing never changes the caller's dict
    assert outcome["refused"] > 150 and outcome["ok"] > 25, outcome


def test_fuzz_scenario_files_through_the_demo_command(tmp_path, capsys):
    """Damaged JSON text: the command exits 0 (scenario written back) or 2, never a traceback."""
    rng = np.random.default_rng(14)
    text = json.dumps(suite.make("straight", 2, 10.0)).encode()
    src, dst = tmp_path / "s.json", tmp_path / "w.json"
    codes = {}
    for i in range(150):
        b = bytearray(text)
        for _ in range(int(rng.integers(1, 4))):
            j = int(rng.integers(0, len(b)))
            op = rng.integers(0, 3)
            if op == 0:
                b[j] = int(rng.choice(list(b'[]{}",:0123456789-.eEnNaI\x00\xff')))
            elif op == 1:
                del b[j: j + int(rng.integers(1, 20))]
            else:
                b[j:j] = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"true", b"1e999", b"[[[["])
        src.write_bytes(bytes(b))
        with within(10):
            rc, _, err = cli(capsys, "--scenario", src, "--write-scenario", dst)
        codes[rc] = codes.get(rc, 0) + 1
        assert rc in (EXIT_OK, EXIT_BAD), (i, rc, err)
        if rc == EXIT_BAD:
            assert str(src) in err and not dst.exists(), (i, err)
        else:
            dst.unlink()
    assert codes.get(EXIT_BAD, 0) > 100, codes
