"""Parallel sweeps of the bicycle evaluations (demos/bicycle/sweep.py): the same seeded rides
serially, on two spawned local processes and on a dask.distributed LocalCluster in this
process give the same results, seed for seed (all but the wall-clock fields)."""
import sys

import pytest

from tianrt.demos.bicycle import evaluate, speed_eval, sweep

CTRLS = ("lqr", "mlp/numba", "snn/numba")


def _quiet(*a, **k):
    pass


@pytest.fixture(scope="module")
def serial():
    return evaluate.evaluate(n=2, duration=0.6, controllers=CTRLS, first_seed=3, log=_quiet, workers=1)


def _same(a, b):
    assert a["seeds"] == b["seeds"]
    assert sweep.deterministic(a["results"]) == sweep.deterministic(b["results"])


def test_serial_rides_are_real_and_in_order(serial):
    for c in CTRLS:
        rows = serial["results"][c]
        assert [r["seed"] for r in rows] == [3, 4] and all(r["controller"] == c for r in rows)
        assert all(r["duration"] == pytest.approx(0.6) and r["rms_path_error"] > 0 for r in rows)
    # the timing fields exist and are what `deterministic` drops
    r = serial["results"]["snn/numba"][0]
    assert "wall_s" in r and "step_s" in r["stream"]
    d = sweep.deterministic(r)
    assert "wall_s" not in d and "latency_us" not in d and "step_s" not in d["stream"]
    assert d["stream"]["ticks"] == r["stream"]["ticks"]


def test_local_processes_equal_serial(serial):
    _same(serial, evaluate.evaluate(n=2, duration=0.6, controllers=CTRLS, first_seed=3, log=_quiet, workers=2))


def test_dask_local_cluster_equals_serial(serial):
    distributed = pytest.importorskip("distributed")   # in the test extra (tianrt[sweeps])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        # by address, as `--dask tcp://HOST:PORT` does
        par = evaluate.evaluate(n=2, duration=0.6, controllers=CTRLS, first_seed=3, log=_quiet,
                                dask=cluster.scheduler_address)
        _same(serial, par)
        with distributed.Client(cluster, set_as_default=False) as client:   # or a Client
            assert sweep.run_tasks(pow, [(2, 5), (3, 2)], dask=client) == [32, 9]


def test_speed_eval_parallel_equals_serial():
    kw = dict(speeds=(3.0, 8.0), n=2, duration=0.8, log=_quiet)
    assert speed_eval.evaluate(workers=1, **kw) == speed_eval.evaluate(workers=2, **kw)


def test_speed_eval_rides_the_seeds_from_first_seed():
    """``first_seed`` picks seeds nobody tuned on: the summary of seed 7 alone is seed 7's ride."""
    res = speed_eval.evaluate(speeds=(5.0,), n=1, first_seed=7, duration=0.5, log=_quiet)
    one = speed_eval.ride(5.0, 7, 0.5)
    for name in ("lqr", "mlp", "snn"):
        assert res["5"][name]["rms_path_error_mean"] == one[name]["rms_path_error"]
        assert res["5"][name]["chatter_Nm"] == one[name]["chatter"]
    assert one["mlp"]["rms_path_error"] != speed_eval.ride(5.0, 0, 0.5)["mlp"]["rms_path_error"]


def test_run_tasks_keeps_order_and_checks_workers():
    assert sweep.run_tasks(pow, [(2, k) for k in range(6)], workers=2) == [2 ** k for k in range(6)]
    assert sweep.run_tasks(pow, [], workers=3) == []
    with pytest.raises(ValueError, match="workers must be >= 1"):
        sweep.run_tasks(pow, [(1, 1), (2, 2)], workers=0)


def test_dask_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)   # as if not installed
    with pytest.raises(RuntimeError, match=r"optional extra: pip install 'tianrt\[sweeps\]'"):
        sweep.run_tasks(pow, [(1, 1)], dask="tcp://127.0.0.1:1")


def test_cli_rejects_bad_workers(capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--workers", "0", "--n", "1"])
    assert e.value.code == 2 and "--workers must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        speed_eval.main(["--workers", "-1"])
    assert e.value.code == 2


def test_cli_on_a_dask_scheduler_over_tcp_equals_serial(tmp_path):
    """`python -m ... --dask tcp://HOST:PORT`: the module runs as __main__, yet its tasks reach
    the workers by name (sweep.importable), and the results are the serial ones."""
    import json
    import subprocess

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        out = tmp_path / "se.json"
        p = subprocess.run([sys.executable, "-m", "tianrt.demos.bicycle.speed_eval", "--speeds", "5", "--n", "2",
                            "--duration", "0.5", "--json", str(out), "--dask", cluster.scheduler_address],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
    serial = speed_eval.evaluate(speeds=(5.0,), n=2, duration=0.5, log=_quiet, workers=1)
    assert json.loads(out.read_text()) == json.loads(json.dumps(serial))
