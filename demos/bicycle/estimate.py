"""Dead reckoning: the bicycle's pose estimated from the wheel speed and the IMU's yaw rate,
both with their noise, integrated from the known start. The true pose is used only to score.

Yaw-rate gyro: the kinematic yaw rate (v delta + c delta') cos(lambda) / w plus white noise
(``GYRO_NOISE`` rad/s per reading) and a constant bias drawn per ride (``GYRO_BIAS`` rad/s
RMS, what remains after a standstill calibration of a MEMS gyro). Wheel speed: the speed
sensor of ``sim.Bicycle.sense`` (white noise, 0.02 m/s) with a scale error drawn per ride
(``SCALE_ERR`` RMS: tyre radius). Integration: heading by the gyro, position by the midpoint
heading of the step.
"""
from __future__ import annotations

import math

import numpy as np

from .sim import DELTA, DELTAD, V

GYRO_NOISE = 0.01     # rad/s, white, per reading
GYRO_BIAS = 0.0005    # rad/s RMS, constant per ride (about 100 deg/h)
SCALE_ERR = 0.003     # relative RMS error of the wheel-speed scale


class YawGyro:
    def __init__(self, lin, seed: int):
        self.lin = lin
        self.rng = np.random.default_rng([seed, 23])
        self.bias = float(self.rng.normal(0, GYRO_BIAS))

    def true_rate(self, state) -> float:
        return self.lin.yaw_gain * (state[V] * state[DELTA] + self.lin.c * state[DELTAD])

    def read(self, state) -> float:
        return self.true_rate(state) + self.bias + float(self.rng.normal(0, GYRO_NOISE))


class DeadReckoning:
    """x, y, heading from speed and yaw-rate readings, one control step at a time."""

    def __init__(self, x: float, y: float, heading: float, seed: int):
        self.x, self.y, self.heading = float(x), float(y), float(heading)
        self.scale = 1.0 + float(np.random.default_rng([seed, 29]).normal(0, SCALE_ERR))
        self.rate = 0.0           # the last yaw-rate reading [rad/s]

    def step(self, speed: float, yaw_rate: float, dt: float) -> None:
        v = max(0.0, speed) * self.scale
        mid = self.heading + 0.5 * yaw_rate * dt
        self.x += v * math.cos(mid) * dt
        self.y += v * math.sin(mid) * dt
        self.heading += yaw_rate * dt
        self.rate = yaw_rate

    @property
    def pose(self) -> tuple[float, float, float]:
        return self.x, self.y, self.heading
