"""Controllers for the bicycle: a discrete LQR teacher gain-scheduled on speed (Riccati solved
in numpy by the structured doubling algorithm; no SciPy), the outer path loop that turns a
waypoint path into a desired lean, and the speed controller that sets the drive torque.

The balance law every controller here (and the learned MLP) implements is

    T_delta = T_ss(v) phi_d - K(v) (x - x_ss(v) phi_d),   x = (phi, delta, phi', delta')

where x_ss phi_d = (phi_d, delta_ss(v) phi_d, 0, 0) is the linear steady turn at lean phi_d
and T_ss its steer torque; K(v) is the LQR gain of the model discretised at the control rate.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from .model import Linear


def expm(a: np.ndarray) -> np.ndarray:
    """Matrix exponential by scaling and squaring of a 16-term Taylor series (small matrices)."""
    norm = np.linalg.norm(a, 1)
    k = max(0, int(math.ceil(math.log2(norm))) + 1) if norm > 0.5 else 0
    x = a / (2 ** k)
    out, term = np.eye(len(a)), np.eye(len(a))
    for i in range(1, 17):
        term = term @ x / i
        out = out + term
    for _ in range(k):
        out = out @ out
    return out


def discretize(A: np.ndarray, B: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation via the exponential of the block matrix [[A, B], [0, 0]]."""
    n, m = B.shape
    blk = np.zeros((n + m, n + m))
    blk[:n, :n], blk[:n, n:] = A, B
    e = expm(blk * dt)
    return e[:n, :n], e[:n, n:]


def dare(A, B, Q, R, tol: float = 1e-12, max_iter: int = 100) -> np.ndarray:
    """Solve X = A'XA - A'XB (R + B'XB)^-1 B'XA + Q with the structured doubling algorithm."""
    Ak, Gk, Hk = A.copy(), B @ np.linalg.solve(R, B.T), Q.copy()
    eye = np.eye(len(A))
    for _ in range(max_iter):
        W = np.linalg.inv(eye + Gk @ Hk)
        A1 = Ak @ W @ Ak
        G1 = Gk + Ak @ W @ Gk @ Ak.T
        H1 = Hk + Ak.T @ Hk @ W @ Ak
        done = np.linalg.norm(H1 - Hk, 1) <= tol * max(1.0, np.linalg.norm(H1, 1))
        Ak, Gk, Hk = A1, 0.5 * (G1 + G1.T), 0.5 * (H1 + H1.T)
        if done:
            return Hk
    raise ArithmeticError("dare: the doubling iteration did not converge (is (A, B) stabilisable?)")


def dlqr(A, B, Q, R) -> tuple[np.ndarray, np.ndarray]:
    """Discrete LQR: gain K (u = -K x) and the Riccati solution X."""
    X = dare(A, B, Q, R)
    K = np.linalg.solve(R + B.T @ X @ B, B.T @ X @ A)
    return K, X


# Weights of the teacher: lean and steer errors matter, rates a little, torque costs.
Q_DEFAULT = np.diag([400.0, 40.0, 10.0, 1.0])
R_DEFAULT = np.array([[1.0]])


class GainSchedule:
    """LQR gains, steady-turn steer and torque per unit lean, tabulated over speed and
    interpolated linearly (clamped at the ends)."""

    def __init__(self, lin: Linear, dt: float, speeds=None, Q=None, R=None):
        self.lin, self.dt = lin, float(dt)
        self.speeds = np.asarray(speeds if speeds is not None else np.arange(1.0, 10.01, 0.25), float)
        Q = Q_DEFAULT if Q is None else np.asarray(Q, float)
        R = R_DEFAULT if R is None else np.asarray(R, float)
        gains, steer, torque = [], [], []
        for v in self.speeds:
            A, B = lin.state_space(float(v))
            Ad, Bd = discretize(A, B[:, 1:2], self.dt)
            K, _ = dlqr(Ad, Bd, Q, R)
            gains.append(K[0])
            d, t = lin.steady_turn(float(v), 1.0)
            steer.append(d)
            torque.append(t)
        self.K = np.array(gains)           # (n_speeds, 4)
        self.steer_per_lean = np.array(steer)
        self.torque_per_lean = np.array(torque)
        self._turn = np.stack([self.steer_per_lean, self.torque_per_lean], axis=1)
        self._steer = self.steer_per_lean.tolist()
        self._speeds = self.speeds.tolist()

    def _where(self, v: float) -> tuple[int, float]:
        s = self._speeds
        v = min(max(v, s[0]), s[-1])
        i = min(bisect.bisect_right(s, v) - 1, len(s) - 2)
        return i, (v - s[i]) / (s[i + 1] - s[i])

    def at(self, v: float) -> tuple[np.ndarray, float, float]:
        """LQR gain K(v), steady-turn steer per unit lean and steer torque per unit lean."""
        i, f = self._where(v)
        K = self.K[i] * (1 - f) + self.K[i + 1] * f
        d, t = self._turn[i] * (1 - f) + self._turn[i + 1] * f
        return K, float(d), float(t)

    def lean_for_curvature(self, v: float, kappa: float) -> float:
        """Lean of the linear steady turn of curvature ``kappa`` [1/m] at speed v."""
        i, f = self._where(v)
        d = self._steer[i] * (1 - f) + self._steer[i + 1] * f
        # yaw rate v kappa = v delta cos(lambda) / w in a steady turn
        return kappa / (self.lin.yaw_gain * d)


class LQRTeacher:
    """The teacher: u = T_ss phi_d - K(v) (x - x_ss phi_d), computed from measurements."""

    def __init__(self, schedule: GainSchedule, torque_limit: float = 5.0):
        self.schedule, self.torque_limit = schedule, float(torque_limit)

    def __call__(self, obs: np.ndarray) -> float:
        """obs = (lean, lean rate, steer, steer rate, speed, desired lean) -> steer torque."""
        lean, lean_rate, steer, steer_rate, v, lean_d = (float(o) for o in obs)
        K, d, t = self.schedule.at(v)
        u = t * lean_d - (K[0] * (lean - lean_d) + K[1] * (steer - d * lean_d) + K[2] * lean_rate
                          + K[3] * steer_rate)
        return max(-self.torque_limit, min(self.torque_limit, float(u)))

    def batch(self, obs: np.ndarray) -> np.ndarray:
        s = self.schedule
        v = np.clip(obs[:, 4], s.speeds[0], s.speeds[-1])
        K = np.stack([np.interp(v, s.speeds, s.K[:, j]) for j in range(4)], axis=1)
        d = np.interp(v, s.speeds, s.steer_per_lean)
        t = np.interp(v, s.speeds, s.torque_per_lean)
        phi_d = obs[:, 5]
        x = obs[:, [0, 2, 1, 3]]  # (lean, steer, lean rate, steer rate): the model's state order
        err = x - np.stack([phi_d, d * phi_d, 0 * phi_d, 0 * phi_d], axis=1)
        u = t * phi_d - np.sum(K * err, axis=1)
        return np.clip(u, -self.torque_limit, self.torque_limit)


class Noisy:
    """A teacher with a random disturbance on the torque it applies, a fresh one every 20
    control steps (0.2 s at 100 Hz); it logs every observation it sees, and the torque it
    would have applied is the clean label (``train_balance``, ``policy.manoeuvre_data``)."""

    def __init__(self, teacher, sigma, rng, log):
        self.teacher, self.sigma, self.rng, self.log = teacher, sigma, rng, log
        self.hold, self.k = 0.0, 0

    def __call__(self, obs):
        u = self.teacher(obs)
        self.log.append(obs.copy())
        if self.k % 20 == 0:
            self.hold = self.rng.normal(0.0, self.sigma)
        self.k += 1
        return u + self.hold


class PathFollower:
    """Outer loop: pure pursuit on the rear contact point. A look-ahead point on the path gives
    a curvature; the linear steady turn gives the lean that rides it, clipped to ``max_lean``."""

    def __init__(self, path, schedule: GainSchedule, lookahead_s: float = 2.0,
                 min_lookahead: float = 5.0, max_lean: float = math.radians(15.0)):
        self.path, self.schedule = path, schedule
        self.lookahead_s, self.min_lookahead, self.max_lean = lookahead_s, min_lookahead, max_lean

    def __call__(self, x: float, y: float, heading: float, v: float) -> tuple[float, float, float]:
        """Desired lean, the signed lateral path error (right of the path positive) and the
        arc length of the nearest path point."""
        s0, lat = self.path.project(x, y)
        L = max(self.min_lookahead, self.lookahead_s * v)
        px, py = self.path.point(s0 + L)
        dx, dy = px - x, py - y
        alpha = math.atan2(dy, dx) - heading
        alpha = math.atan2(math.sin(alpha), math.cos(alpha))
        kappa = 2.0 * math.sin(alpha) / max(math.hypot(dx, dy), 1e-6)
        lean = self.schedule.lean_for_curvature(v, kappa)
        return max(-self.max_lean, min(self.max_lean, lean)), lat, s0


class SpeedController:
    """PI speed loop with resistance feed-forward; output is the drive torque."""

    def __init__(self, m_eff: float, wheel_radius: float, resistance, kp: float = 1.5, ki: float = 0.3,
                 torque_limit: float = 40.0):
        self.m_eff, self.r, self.resistance = m_eff, wheel_radius, resistance
        self.kp, self.ki, self.limit = kp, ki, torque_limit
        self.integral = 0.0

    def __call__(self, v_meas: float, v_ref: float, dt: float) -> float:
        e = v_ref - v_meas
        self.integral = max(-2.0, min(2.0, self.integral + e * dt))
        accel = self.kp * e + self.ki * self.integral
        torque = (self.m_eff * accel + self.resistance(max(v_ref, 0.0))) * self.r
        return max(-self.limit, min(self.limit, torque))
