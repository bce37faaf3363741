"""The bicycle simulation: linearised lean/steer dynamics with speed-varying coefficients,
heading and position kinematics, a drive model, actuator limits, gusts, sensor noise and
fall detection, integrated with fixed-step RK4 (default 1 kHz) inside each control step.

State (float64[8]): lean phi, steer delta, their rates, heading psi, rear-contact x, y, and
forward speed v. Per physics substep the right-hand side is

    M q'' = [T_phi + gust, T_delta] - v C1 q' - (g K0 + v^2 K2) q
    psi'  = (v delta + c delta') cos(lambda) / w            (Meijaard et al. 2007, eq. 7)
    x' = v cos psi,  y' = v sin psi
    m_eff v' = T_drive / rR - c_rr m g - 1/2 rho CdA v^2     (m_eff includes wheel spin inertia)

The steer hits hard stops at +-steer_max (the rate into the stop is zeroed); commanded
torques are clipped to the actuator limits before they reach the integrator. The integrator
is compiled with numba when it is available and runs as plain Python otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import G, Linear, matrices
from .params import BicycleParams, benchmark

try:  # numba is a tianrt dependency, but the demo also runs (slowly) without it
    from numba import njit
except (ImportError, OSError):  # pragma: no cover - no numba, or its llvmlite does not load
    def njit(*a, **k):
        return (lambda f: f) if not a or not callable(a[0]) else a[0]

PHI, DELTA, PHID, DELTAD, PSI, X, Y, V = range(8)
STATE_NAMES = ("lean", "steer", "lean_rate", "steer_rate", "heading", "x", "y", "speed")


@njit(cache=True)
def _deriv(s, out, Minv, C1, K0, K2, g, yaw_gain, trail, t_phi, t_delta, drive_force,
           m_eff, resist_const, resist_quad):
    phi, delta, phid, deltad, psi, v = s[0], s[1], s[2], s[3], s[4], s[7]
    v2 = v * v
    f0 = t_phi - v * (C1[0, 0] * phid + C1[0, 1] * deltad) \
        - (g * K0[0, 0] + v2 * K2[0, 0]) * phi - (g * K0[0, 1] + v2 * K2[0, 1]) * delta
    f1 = t_delta - v * (C1[1, 0] * phid + C1[1, 1] * deltad) \
        - (g * K0[1, 0] + v2 * K2[1, 0]) * phi - (g * K0[1, 1] + v2 * K2[1, 1]) * delta
    out[0] = phid
    out[1] = deltad
    out[2] = Minv[0, 0] * f0 + Minv[0, 1] * f1
    out[3] = Minv[1, 0] * f0 + Minv[1, 1] * f1
    out[4] = (v * delta + trail * deltad) * yaw_gain
    out[5] = v * math.cos(psi)
    out[6] = v * math.sin(psi)
    resist = resist_const + resist_quad * v2
    if v <= 0.0 and drive_force <= resist:
        out[7] = 0.0  # standing still: resistance does not push the bicycle backwards
    else:
        out[7] = (drive_force - resist) / m_eff


@njit(cache=True)
def rk4_steps(s, n, h, Minv, C1, K0, K2, g, yaw_gain, trail, t_phi, t_delta, drive_force,
              m_eff, resist_const, resist_quad, steer_max):
    """Advance state ``s`` in place by ``n`` RK4 steps of ``h`` seconds under constant inputs;
    applies the steer hard stops after every step. Returns the largest |lean| seen."""
    k1 = np.empty(8)
    k2 = np.empty(8)
    k3 = np.empty(8)
    k4 = np.empty(8)
    tmp = np.empty(8)
    max_lean = abs(s[0])
    for _ in range(n):
        _deriv(s, k1, Minv, C1, K0, K2, g, yaw_gain, trail, t_phi, t_delta, drive_force,
               m_eff, resist_const, resist_quad)
        for i in range(8):
            tmp[i] = s[i] + 0.5 * h * k1[i]
        _deriv(tmp, k2, Minv, C1, K0, K2, g, yaw_gain, trail, t_phi, t_delta, drive_force,
               m_eff, resist_const, resist_quad)
        for i in range(8):
            tmp[i] = s[i] + 0.5 * h * k2[i]
        _deriv(tmp, k3, Minv, C1, K0, K2, g, yaw_gain, trail, t_phi, t_delta, drive_force,
               m_eff, resist_const, resist_quad)
        for i in range(8):
            tmp[i] = s[i] + h * k3[i]
        _deriv(tmp, k4, Minv, C1, K0, K2, g, yaw_gain, trail, t_phi, t_delta, drive_force,
               m_eff, resist_const, resist_quad)
        for i in range(8):
            s[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
        if s[7] < 0.0:
            s[7] = 0.0
        if s[1] > steer_max:
            s[1] = steer_max
            if s[3] > 0.0:
                s[3] = 0.0
        elif s[1] < -steer_max:
            s[1] = -steer_max
            if s[3] < 0.0:
                s[3] = 0.0
        if abs(s[0]) > max_lean:
            max_lean = abs(s[0])
    return max_lean


@dataclass
class Limits:
    steer_angle: float = math.radians(45.0)   # hard stops [rad]
    steer_torque: float = 5.0                 # steer motor limit [N m]
    drive_torque: float = 40.0                # rear hub motor limit [N m]
    fall_lean: float = math.radians(30.0)     # |lean| beyond this counts as a fall [rad]


@dataclass
class Noise:
    """Standard deviations of white sensor noise (SI units, radians)."""
    lean: float = 0.002        # IMU attitude estimate
    lean_rate: float = 0.01    # gyro
    steer: float = 0.001       # steer encoder
    steer_rate: float = 0.01
    speed: float = 0.02        # wheel speed


@dataclass
class Drive:
    """Longitudinal resistance: rolling (c_rr m g) and aerodynamic (1/2 rho CdA v^2)."""
    c_rr: float = 0.006
    cda: float = 0.45
    rho: float = 1.2


class Bicycle:
    """One simulated bicycle. ``step(t_delta, t_drive, dt)`` advances one control step."""

    def __init__(self, params: BicycleParams | None = None, *, physics_hz: float = 1000.0,
                 limits: Limits | None = None, noise: Noise | None = None, drive: Drive | None = None,
                 seed: int = 0, g: float = G):
        self.params = params or benchmark()
        self.lin: Linear = matrices(self.params, g)
        if not physics_hz >= 1.0:
            raise ValueError(f"physics_hz must be >= 1, got {physics_hz}")
        self.physics_hz = float(physics_hz)
        self.limits = limits or Limits()
        self.noise = noise or Noise()
        self.drive = drive or Drive()
        p = self.params
        self.mass = p.mR + p.mB + p.mH + p.mF
        self.m_eff = self.mass + p.IRyy / p.rR ** 2 + p.IFyy / p.rF ** 2
        self._Minv = np.linalg.inv(self.lin.M)
        self._C1, self._K0, self._K2 = (np.ascontiguousarray(a, dtype=np.float64)
                                        for a in (self.lin.C1, self.lin.K0, self.lin.K2))
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros(8)
        self.t = 0.0
        self.fallen = False
        self.max_lean = 0.0
        self.gust_torque = 0.0   # lean torque currently applied by a gust [N m]
        self.applied = (0.0, 0.0)  # (steer torque, drive torque) after limits, last step

    def reset(self, speed: float = 5.0, lean: float = 0.0, steer: float = 0.0, lean_rate: float = 0.0,
              steer_rate: float = 0.0, heading: float = 0.0, x: float = 0.0, y: float = 0.0) -> None:
        self.state[:] = (lean, steer, lean_rate, steer_rate, heading, x, y, speed)
        self.t, self.fallen, self.max_lean, self.gust_torque = 0.0, False, abs(lean), 0.0

    def resistance(self, v: float) -> float:
        d = self.drive
        return d.c_rr * self.mass * self.lin.g + 0.5 * d.rho * d.cda * v * v

    def step(self, steer_torque: float, drive_torque: float, dt: float) -> None:
        """Hold the (limited) torques for one control step of ``dt`` seconds."""
        lim = self.limits
        tq = max(-lim.steer_torque, min(lim.steer_torque, float(steer_torque)))
        td = max(-lim.drive_torque, min(lim.drive_torque, float(drive_torque)))
        self.applied = (tq, td)
        n = max(1, int(round(dt * self.physics_hz)))
        d = self.drive
        ml = rk4_steps(self.state, n, dt / n, self._Minv, self._C1, self._K0, self._K2, self.lin.g,
                       self.lin.yaw_gain, self.lin.c, self.gust_torque, tq, td / self.params.rR,
                       self.m_eff, d.c_rr * self.mass * self.lin.g, 0.5 * d.rho * d.cda,
                       lim.steer_angle)
        self.t += n * (dt / n)
        self.max_lean = max(self.max_lean, ml)
        if ml > lim.fall_lean or not math.isfinite(ml) or not math.isfinite(self.state[5] + self.state[6]):
            self.fallen = True

    def hold_upright(self, parked: bool = False, steer: float = 0.0) -> None:
        """The stand: the frame upright, the handlebar at ``steer`` [rad] (straight unless the
        pilot turns it: held up, the bicycle rolls as a kinematic one, yaw rate v δ cos λ / w),
        no rolling backwards; ``parked`` (nothing drives it): below 0.05 m/s the wheels stop."""
        s = self.state
        s[PHI] = s[PHID] = s[DELTAD] = 0.0
        s[DELTA] = max(-self.limits.steer_angle, min(self.limits.steer_angle, steer))
        s[V] = 0.0 if s[V] < (0.05 if parked else 0.0) else s[V]

    def sense(self) -> np.ndarray:
        """Noisy sensors: (lean, lean rate, steer, steer rate, speed)."""
        s, nz = self.state, self.noise
        sig = (nz.lean, nz.lean_rate, nz.steer, nz.steer_rate, nz.speed)
        return np.array((s[PHI], s[PHID], s[DELTA], s[DELTAD], s[V])) + self.rng.standard_normal(5) * sig
