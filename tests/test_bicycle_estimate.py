"""Dead reckoning from the noisy wheel speed and yaw-rate gyro stays within a drift bound."""
import math

import numpy as np

from tianrt.demos.bicycle import estimate, suite, world
from tianrt.demos.bicycle.run import ClosedLoop, teacher_for
from tianrt.demos.bicycle.sim import PSI, X, Y


def _ride(seed, duration):
    sc = world.parse_scenario(suite.make("gust_suite", seed, duration))
    loop, teacher = ClosedLoop(sc), teacher_for(sc)
    est = estimate.DeadReckoning(sc.initial["x"], sc.initial["y"], sc.initial["heading"], seed)
    from tianrt.demos.bicycle.model import matrices
    gyro = estimate.YawGyro(matrices(sc.bicycle), seed)
    err, dist = [], 0.0
    while not loop.done:
        obs = loop.observe()
        s = loop.bike.state
        err.append(math.hypot(est.x - s[X], est.y - s[Y]))
        est.step(obs[4], gyro.read(s), loop.dt)
        dist += s[7] * loop.dt
        loop.act(teacher(obs))
    s = loop.bike.state
    return max(err), abs(math.remainder(est.heading - s[PSI], 2 * math.pi)), dist


def test_dead_reckoning_drift_is_bounded():
    # bound: the gyro bias (3 sigma 1.5 mrad/s) turns the heading by 0.09 rad in 60 s, which
    # displaces the end of a ~300 m ride by ~0.5 * 0.0015 * v * t^2 < 15 m; measured far less.
    for seed in (0, 1, 2):
        drift, head, dist = _ride(seed, 60.0)
        assert head < 0.1
        assert drift < 0.03 * dist, (seed, drift, dist)     # under 3 % of the distance ridden


def test_gyro_reads_the_kinematic_yaw_rate():
    sc = world.parse_scenario(suite.make("straight", 0, 5.0))
    from tianrt.demos.bicycle.model import matrices
    g = estimate.YawGyro(matrices(sc.bicycle), 0)
    s = np.zeros(8)
    s[1], s[7] = 0.1, 5.0                   # steer 0.1 rad at 5 m/s
    reads = [g.read(s) for _ in range(2000)]
    assert abs(np.mean(reads) - g.true_rate(s)) < 0.002
    assert g.true_rate(s) == g.lin.yaw_gain * 0.5
