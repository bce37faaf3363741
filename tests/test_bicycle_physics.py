"""The bicycle model against Meijaard, Papadopoulos, Ruina & Schwab (2007), Proc. R. Soc. A 463:
the matrices of section 5 computed from the Table 1 parameters, the Table 2 eigenvalues, the
weave and capsize speeds, and the simulated self-stability between them."""
import math

import numpy as np
import pytest

from tianrt.demos.bicycle.model import matrices, stable_speed_range
from tianrt.demos.bicycle.params import benchmark, from_dict
from tianrt.demos.bicycle.sim import Bicycle, Noise

# Published values (Meijaard et al. 2007, section 5 / Appendix B).
M_PUB = [[80.81722, 2.31941332208709], [2.31941332208709, 0.29784188199686]]
C1_PUB = [[0.0, 33.86641391492494], [-0.85035641456978, 1.68540397397560]]
K0_PUB = [[-80.95, -2.59951685249872], [-2.59951685249872, -0.80329488458618]]
K2_PUB = [[0.0, 76.59734589573222], [0.0, 2.65431523794604]]

# Table 2: eigenvalues at v = 0..10 m/s (the two real roots and the weave pair).
TABLE2 = {
    0: [-5.53094371765393, -3.13164324790656, 3.13164324790656, 5.53094371765393],
    1: [-7.11008014637442, -3.13423125066578, 3.52696170990070 - 0.80774027519930j,
        3.52696170990070 + 0.80774027519930j],
    2: [-8.67387984831735, -3.07158645641514, 2.68234517512745 - 1.68066296590675j,
        2.68234517512745 + 1.68066296590675j],
    3: [-10.35101467245920, -2.63366137253667, 1.70675605663975 - 2.31582447384325j,
        1.70675605663975 + 2.31582447384325j],
    4: [-12.15861426576450, -1.42944427361326, 0.41325331521125 - 3.07910818603206j,
        0.41325331521125 + 3.07910818603206j],
    5: [-14.07838969279820, -0.32286642900409, -0.77534188219585 - 4.46486771378823j,
        -0.77534188219585 + 4.46486771378823j],
    6: [-16.08537123098030, -0.00406690076970, -1.52644486584142 - 5.87673060598709j,
        -1.52644486584142 + 5.87673060598709j],
    7: [-18.15788466125262, 0.10268170574766, -2.13875644258362 - 7.19525913329805j,
        -2.13875644258362 + 7.19525913329805j],
    8: [-20.27940894394569, 0.14327879765713, -2.69348683581097 - 8.46037971396931j,
        -2.69348683581097 + 8.46037971396931j],
    9: [-22.43788559040858, 0.15790184030917, -3.21675402252485 - 9.69377351531791j,
        -3.21675402252485 + 9.69377351531791j],
    10: [-24.62459635017404, 0.16105338653172, -3.72016840437287 - 10.90681139476287j,
         -3.72016840437287 + 10.90681139476287j],
}
WEAVE, CAPSIZE = 4.29238253634111, 6.02426201538837


@pytest.fixture(scope="module")
def lin():
    return matrices(benchmark())


@pytest.mark.parametrize("name,pub", [("M", M_PUB), ("C1", C1_PUB), ("K0", K0_PUB), ("K2", K2_PUB)])
def test_matrices_match_the_paper(lin, name, pub):
    got, pub = getattr(lin, name), np.array(pub)
    nz = pub != 0
    np.testing.assert_allclose(got[nz], pub[nz], rtol=1e-9, atol=0)
    assert np.all(np.abs(got[~nz]) < 1e-12)


def _match(got, want, tol):
    got = list(got)
    for w in want:
        i = int(np.argmin([abs(g - w) for g in got]))
        assert abs(got[i] - w) < tol, f"eigenvalue {w} not found in {got}"
        got.pop(i)


@pytest.mark.parametrize("v", sorted(TABLE2))
def test_eigenvalues_match_table_2(lin, v):
    _match(lin.eigenvalues(float(v)), TABLE2[v], 1e-11)


def test_weave_and_capsize_speeds(lin):
    weave, capsize = stable_speed_range(lin)
    assert abs(weave - WEAVE) < 1e-6
    assert abs(capsize - CAPSIZE) < 1e-6
    assert lin.max_real(WEAVE - 1e-3) > 0 > lin.max_real(WEAVE + 1e-3)
    assert lin.max_real(CAPSIZE - 1e-3) < 0 < lin.max_real(CAPSIZE + 1e-3)


def _free_ride(v, seconds=10.0, lean=0.01):
    b = Bicycle(noise=Noise(0, 0, 0, 0, 0))
    b.drive.c_rr = b.drive.cda = 0.0  # hold the speed: no resistance, no drive
    b.limits.fall_lean = math.pi
    b.reset(speed=v, lean=lean)
    leans = []
    for _ in range(int(seconds * 100)):
        b.step(0.0, 0.0, 0.01)
        leans.append(b.state[0])
    return np.array(leans), b


def test_uncontrolled_bicycle_is_self_stable_only_between_weave_and_capsize():
    tail = slice(-100, None)  # the last second
    decays, b5 = _free_ride(5.0)
    assert np.max(np.abs(decays[tail])) < 0.01 * 0.2
    assert b5.state[7] == 5.0
    for v in (3.0, 7.0):
        grows, _ = _free_ride(v)
        assert np.max(np.abs(grows[tail])) > 0.01 * 2


def test_simulated_capsize_growth_rate_matches_the_eigenvalue():
    leans, _ = _free_ride(7.0, seconds=20.0)
    # after the weave has died out only the capsize mode remains: |lean| ~ exp(0.10268 t)
    rate = (math.log(abs(leans[1999])) - math.log(abs(leans[999]))) / 10.0
    assert rate == pytest.approx(TABLE2[7][1], rel=1e-4)


def test_other_bicycles_follow_the_formulas():
    b = benchmark()
    lin0 = matrices(from_dict({"base": "benchmark", "c": 0.0}))  # no trail: mu = 0
    # then C1[delta, phi] = -S_F cos(lambda) and the rest of the formulas lose their mu terms
    assert lin0.C1[1, 0] == pytest.approx(-b.IFyy / b.rF * math.cos(b.lam), rel=1e-12)
    assert lin0.M[0, 0] == matrices(b).M[0, 0]  # I_Txx does not depend on the trail
    # without spinning wheels (no gyroscopic terms) the benchmark is never self-stable
    assert stable_speed_range(matrices(from_dict({"base": "benchmark", "IRyy": 1e-6, "IFyy": 1e-6}))) is None


def test_integrator_runs_the_same_without_numba():
    from tianrt.demos.bicycle import sim

    py = getattr(sim.rk4_steps, "py_func", None)
    if py is None:  # numba is not installed: rk4_steps is already the Python function
        py = sim.rk4_steps
    b = Bicycle(noise=Noise(0, 0, 0, 0, 0))
    args = (b._Minv, b._C1, b._K0, b._K2, 9.81, b.lin.yaw_gain, b.lin.c, 3.0, 0.5, 20.0, b.m_eff, 5.0, 0.3, 0.7)
    s1 = np.array([0.02, -0.01, 0.1, 0.0, 0.3, 1.0, 2.0, 4.0])
    s2 = s1.copy()
    m1 = sim.rk4_steps(s1, 50, 1e-3, *args)
    m2 = py(s2, 50, 1e-3, *args)
    np.testing.assert_allclose(s1, s2, rtol=1e-12, atol=1e-15)
    assert m1 == pytest.approx(m2)


def test_bad_parameters_name_the_field():
    with pytest.raises(ValueError, match="'mB'"):
        from_dict({"base": "benchmark", "mB": -3})
    with pytest.raises(ValueError, match="missing parameter"):
        from_dict({"w": 1.0})
    with pytest.raises(ValueError, match="unknown parameter.*wheelbase"):
        from_dict({"base": "benchmark", "wheelbase": 1.0})


def test_steer_limits_and_torque_limits_hold():
    b = Bicycle(noise=Noise(0, 0, 0, 0, 0))
    b.limits.fall_lean = math.pi
    b.reset(speed=2.0)
    for _ in range(200):
        b.step(100.0, 0.0, 0.01)  # far beyond the motor's 5 N m
        assert abs(b.state[1]) <= b.limits.steer_angle + 1e-12
        assert b.applied[0] == 5.0
    assert abs(b.state[1]) == pytest.approx(b.limits.steer_angle)  # it reached a stop


def test_fall_detection_and_drive_model():
    b = Bicycle(noise=Noise(0, 0, 0, 0, 0))
    b.reset(speed=1.0, lean=0.05)
    for _ in range(300):
        b.step(0.0, 0.0, 0.01)
        if b.fallen:
            break
    assert b.fallen and b.max_lean > b.limits.fall_lean
    d = Bicycle(noise=Noise(0, 0, 0, 0, 0))
    d.reset(speed=5.0)
    for _ in range(100):
        d.step(0.0, 0.0, 0.01)
    assert 4.5 < d.state[7] < 5.0  # rolling and air resistance slow it down
    d.reset(speed=5.0)
    for _ in range(100):
        d.step(0.0, 30.0, 0.01)
    assert d.state[7] > 5.0
