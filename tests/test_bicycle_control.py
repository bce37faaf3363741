"""The LQR teacher and the outer loops: Riccati solution, closed-loop stability over the speed
range, steady turns, and short closed-loop rides."""
import math

import numpy as np
import pytest

from tianrt.demos.bicycle import control, suite, world
from tianrt.demos.bicycle.model import matrices
from tianrt.demos.bicycle.params import benchmark
from tianrt.demos.bicycle.run import run, schedule_for, teacher_for


@pytest.fixture(scope="module")
def lin():
    return matrices(benchmark())


def test_expm_and_discretize():
    a = np.array([[0.0, -1.0], [1.0, 0.0]]) * 2.5
    e = control.expm(a)
    np.testing.assert_allclose(e, [[math.cos(2.5), -math.sin(2.5)], [math.sin(2.5), math.cos(2.5)]], atol=1e-12)
    Ad, Bd = control.discretize(np.array([[-2.0]]), np.array([[1.0]]), 0.1)
    assert Ad[0, 0] == pytest.approx(math.exp(-0.2))
    assert Bd[0, 0] == pytest.approx((1 - math.exp(-0.2)) / 2)


@pytest.mark.parametrize("v", [1.5, 3.0, 4.29, 5.0, 7.0, 9.0])
def test_dare_solution_and_stable_closed_loop(lin, v):
    A, B = lin.state_space(v)
    Ad, Bd = control.discretize(A, B[:, 1:2], 0.01)
    Q, R = control.Q_DEFAULT, control.R_DEFAULT
    K, X = control.dlqr(Ad, Bd, Q, R)
    res = Ad.T @ X @ Ad - Ad.T @ X @ Bd @ np.linalg.solve(R + Bd.T @ X @ Bd, Bd.T @ X @ Ad) + Q - X
    assert np.abs(res).max() < 1e-8 * np.abs(X).max()
    assert np.all(np.linalg.eigvalsh(X) > 0)
    assert np.max(np.abs(np.linalg.eigvals(Ad - Bd @ K))) < 0.999


def test_steady_turn_is_an_equilibrium(lin):
    for v in (3.0, 5.0, 7.0):
        d, t = lin.steady_turn(v, 0.1)
        f = (lin.g * lin.K0 + v * v * lin.K2) @ np.array([0.1, d])
        np.testing.assert_allclose(f, [0.0, t], atol=1e-12)


def test_teacher_scalar_and_batch_agree_and_respect_the_torque_limit(lin):
    t = control.LQRTeacher(schedule_for(benchmark(), 0.01))
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.3, 0.3, size=(300, 6))
    x[:, 4] = rng.uniform(0.5, 11, size=300)
    b = t.batch(x)
    np.testing.assert_allclose([t(o) for o in x], b, atol=1e-12)
    assert np.abs(b).max() == 5.0


@pytest.mark.parametrize("kind", ["straight", "s_curve", "speed_changes"])
def test_teacher_rides_short_scenarios(kind):
    sc = world.parse_scenario(suite.make(kind, 2, 12.0))
    r = run(sc, teacher_for(sc), "lqr", keep_traces=True)
    assert not r.fell and r.duration == pytest.approx(12.0)
    assert r.rms_path_error < 0.5 and r.max_lean_deg < 20
    assert r.gusts >= 1 and np.abs(r.traces["gust"]).max() > 0


def test_a_strong_gust_without_control_is_a_fall():
    d = suite.make("straight", 0, 6.0)
    d["gusts"] = {"rate_hz": 0.0, "events": [[1.0, 30.0]]}
    d["bicycle"]["speed"] = 3.0
    d["speed_profile"] = [[0.0, 3.0]]
    sc = world.parse_scenario(d)
    r = run(sc, lambda obs: 0.0, "none")
    assert r.fell and r.fall_time < 6.0
    assert run(sc, teacher_for(sc), "lqr").fell is False


def test_teacher_tolerates_two_steps_of_actuation_delay():
    sc = world.parse_scenario(suite.make("gust_suite", 1, 15.0))
    base = run(sc, teacher_for(sc), "lqr")

    class Late:
        delay_steps = 2

        def __init__(self, inner):
            self.inner = inner

        def __call__(self, obs):
            return self.inner(obs)

    late = run(sc, Late(teacher_for(sc)), "lqr+2")
    assert late.delay_steps == 2 and not late.fell
    assert late.rms_path_error <= 1.2 * base.rms_path_error
