"""The linearised Whipple/Carvallo bicycle: M q'' + v C1 q' + (g K0 + v^2 K2) q = f.

q = (lean phi, steer delta), f = (lean torque T_phi, steer torque T_delta). The four matrices
are computed from the 25 physical parameters with the formulas of Meijaard, Papadopoulos,
Ruina & Schwab (2007), Appendix A, so any bicycle can be simulated. Also: the first-order
state-space form, eigenvalues against speed, and the weave and capsize speeds that bound the
self-stable range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .params import BicycleParams

G = 9.81  # gravity used by the paper's benchmark [m/s^2]


@dataclass(frozen=True)
class Linear:
    M: np.ndarray
    C1: np.ndarray
    K0: np.ndarray
    K2: np.ndarray
    g: float
    yaw_gain: float  # cos(lambda)/w: yaw rate = (v delta + c delta') cos(lambda)/w
    c: float         # trail, for the yaw-rate kinematics

    def state_space(self, v: float) -> tuple[np.ndarray, np.ndarray]:
        """x' = A x + B [T_phi, T_delta] with x = (phi, delta, phi', delta')."""
        Minv = np.linalg.inv(self.M)
        A = np.zeros((4, 4))
        A[0:2, 2:4] = np.eye(2)
        A[2:4, 0:2] = -Minv @ (self.g * self.K0 + v * v * self.K2)
        A[2:4, 2:4] = -Minv @ (v * self.C1)
        B = np.zeros((4, 2))
        B[2:4, :] = Minv
        return A, B

    def eigenvalues(self, v: float) -> np.ndarray:
        """The four eigenvalues at speed v, sorted by real part then imaginary part."""
        ev = np.linalg.eigvals(self.state_space(v)[0])
        return ev[np.lexsort((ev.imag, ev.real))]

    def max_real(self, v: float) -> float:
        return float(np.max(self.eigenvalues(v).real))

    def steady_turn(self, v: float, lean: float) -> tuple[float, float]:
        """Steer angle and steer torque that hold a steady lean (linear steady turn, T_phi = 0)."""
        K = self.g * self.K0 + v * v * self.K2
        steer = -K[0, 0] * lean / K[0, 1]
        torque = K[1, 0] * lean + K[1, 1] * steer
        return float(steer), float(torque)


def matrices(p: BicycleParams, g: float = G) -> Linear:
    """M, C1, K0, K2 from the physical parameters (Meijaard et al. 2007, Appendix A)."""
    sl, cl = math.sin(p.lam), math.cos(p.lam)
    # The whole bicycle T, rigidly locked, about the rear contact point.
    mT = p.mR + p.mB + p.mH + p.mF
    xT = (p.xB * p.mB + p.xH * p.mH + p.w * p.mF) / mT
    zT = (-p.rR * p.mR + p.zB * p.mB + p.zH * p.mH - p.rF * p.mF) / mT
    ITxx = (p.IRxx + p.IBxx + p.IHxx + p.IFxx + p.mR * p.rR ** 2 + p.mB * p.zB ** 2
            + p.mH * p.zH ** 2 + p.mF * p.rF ** 2)
    ITxz = p.IBxz + p.IHxz - p.mB * p.xB * p.zB - p.mH * p.xH * p.zH + p.mF * p.w * p.rF
    IRzz, IFzz = p.IRxx, p.IFxx  # wheels are planar-symmetric
    ITzz = IRzz + p.IBzz + p.IHzz + IFzz + p.mB * p.xB ** 2 + p.mH * p.xH ** 2 + p.mF * p.w ** 2
    # The front assembly A (front frame + front wheel).
    mA = p.mH + p.mF
    xA = (p.xH * p.mH + p.w * p.mF) / mA
    zA = (p.zH * p.mH - p.rF * p.mF) / mA
    IAxx = p.IHxx + p.IFxx + p.mH * (p.zH - zA) ** 2 + p.mF * (p.rF + zA) ** 2
    IAxz = p.IHxz - p.mH * (p.xH - xA) * (p.zH - zA) + p.mF * (p.w - xA) * (p.rF + zA)
    IAzz = p.IHzz + IFzz + p.mH * (p.xH - xA) ** 2 + p.mF * (p.w - xA) ** 2
    uA = (xA - p.w - p.c) * cl - zA * sl  # perpendicular distance of A's mass centre to the steer axis
    IAll = mA * uA ** 2 + IAxx * sl ** 2 + 2 * IAxz * sl * cl + IAzz * cl ** 2
    IAlx = -mA * uA * zA + IAxx * sl + IAxz * cl
    IAlz = mA * uA * xA + IAxz * sl + IAzz * cl
    mu = p.c / p.w * cl
    SR, SF = p.IRyy / p.rR, p.IFyy / p.rF  # gyrostatic coefficients
    ST = SR + SF
    SA = mA * uA + mu * mT * xT

    M = np.array([[ITxx, IAlx + mu * ITxz],
                  [IAlx + mu * ITxz, IAll + 2 * mu * IAlz + mu ** 2 * ITzz]])
    K0 = np.array([[mT * zT, -SA],
                   [-SA, -SA * sl]])
    K2 = np.array([[0.0, (ST - mT * zT) / p.w * cl],
                   [0.0, (SA + SF * sl) / p.w * cl]])
    C1 = np.array([[0.0, mu * ST + SF * cl + ITxz / p.w * cl - mu * mT * zT],
                   [-(mu * ST + SF * cl), IAlz / p.w * cl + mu * (SA + ITzz / p.w * cl)]])
    return Linear(M, C1, K0, K2, float(g), cl / p.w, p.c)


def _bisect(f, lo: float, hi: float, tol: float = 1e-13) -> float:
    flo = f(lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


def stable_speed_range(lin: Linear, v_max: float = 15.0, step: float = 0.01) -> tuple[float, float] | None:
    """(weave speed, capsize speed): the speeds between which all eigenvalues have negative
    real part, found by a scan and refined by bisection; None if the bicycle is never self-stable."""
    vs = np.arange(0.0, v_max + step, step)
    stable = [lin.max_real(v) < 0 for v in vs]
    if not any(stable):
        return None
    i = stable.index(True)
    j = i
    while j + 1 < len(vs) and stable[j + 1]:
        j += 1
    weave = _bisect(lin.max_real, vs[i - 1], vs[i]) if i > 0 else 0.0
    capsize = _bisect(lin.max_real, vs[j], vs[j + 1]) if j + 1 < len(vs) else math.inf
    return weave, capsize
