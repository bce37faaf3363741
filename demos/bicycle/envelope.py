"""The balance networks' speed envelope: the speeds they are trained and calibrated on, a
scenario ridden at one constant speed, the torque's chatter, and the warning (or refusal)
for a scenario that leaves the envelope."""
from __future__ import annotations

import warnings

import numpy as np

from . import suite

# m/s: the speeds the balance networks are trained on (train_balance.BOX_LO/HI[4]) ...
TRAINED_SPEEDS = (2.0, 8.5)   # from 2 m/s: the follower's slowest speed (follow.V_MIN)
# ... and the constant-speed teacher rides the SNN conversion is calibrated on (policy.calibration_data)
CALIBRATION_SPEEDS = (2.0, 3.0, 4.5, 6.0, 7.5, 8.5)


class EnvelopeWarning(UserWarning):
    """A scenario asks for speeds the balance networks were not trained on."""


def fixed_speed(seed: int, speed: float, duration: float = 30.0) -> dict:
    """An ``s_curve`` scenario ridden at a constant ``speed``; above the suite's own speed its
    path's lateral offsets are scaled by (v_suite / speed)^2, so its curves need the same lean."""
    d = suite.make("s_curve", seed, duration)
    v0 = float(d["speed_profile"][0][1])
    k = min(1.0, (v0 / speed) ** 2)
    d["path"] = [[x, round(y * k, 3)] for x, y in d["path"]]
    d["bicycle"]["speed"] = float(speed)
    d["speed_profile"] = [[0.0, float(speed)]]
    d["name"] = f"fixed-{speed:g}-{seed}"
    return d


def chatter(torque) -> float:
    """RMS step-to-step change of a torque trace (N m per control step)."""
    u = np.asarray(torque, np.float64)
    return float(np.sqrt(np.mean(np.diff(u) ** 2))) if len(u) > 1 else 0.0


def outside(speeds, trained=TRAINED_SPEEDS) -> list:
    """The speeds (m/s) of ``speeds`` outside the trained envelope (a speed of 0, standing
    still before the start, is not riding and counts as inside)."""
    lo, hi = trained
    return sorted({float(v) for v in np.asarray(speeds, np.float64).ravel() if v > 0 and not lo <= v <= hi})


def message(speeds, name: str = "scenario", trained=TRAINED_SPEEDS) -> str | None:
    """What to say when ``speeds`` leave the trained envelope (None: they do not)."""
    bad = outside(speeds, trained)
    if not bad:
        return None
    lo, hi = trained
    return (f"{name}: speed(s) {', '.join(f'{v:g}' for v in bad)} m/s are outside the balance network's "
            f"trained envelope {lo:g}-{hi:g} m/s, where it is untested (the LQR teacher covers 1-10 m/s): "
            f"keep the speed profile within {lo:g}-{hi:g} m/s, ride with the teacher (--controller lqr), "
            "or retrain on a wider box with `python -m tianrt.demos.bicycle.train_balance`")


def check_speeds(speeds, name: str = "scenario", strict: bool = False, trained=TRAINED_SPEEDS) -> list:
    """Warn (``EnvelopeWarning``; ``strict``: raise ValueError) when a scenario's target or
    initial speeds leave the balance network's trained envelope; returns the speeds outside."""
    msg = message(speeds, name, trained)
    if msg and strict:
        raise ValueError(msg)
    if msg:
        warnings.warn(msg, EnvelopeWarning, stacklevel=2)
    return outside(speeds, trained)


def scenario_speeds(sc) -> list:
    """A parsed scenario's initial and target speeds (an initial speed of 0 is a standing start:
    the brain's pilot launches from its stand, ``pilot.Pilot``)."""
    v0 = sc.initial.get("speed", 0.0)
    return [v0] * (v0 != 0) + [*np.asarray(sc.speed_profile)[:, 1]]


def trained_speeds(graph=None) -> tuple:
    """A balance graph's trained speed range (its metadata ``trained_speeds``; models trained
    before it was recorded: the 2.5-7.5 m/s box they were trained on)."""
    meta = getattr(graph, "metadata", None) or {}
    lo, hi = meta.get("trained_speeds", (2.5, 7.5) if graph is not None else TRAINED_SPEEDS)
    return float(lo), float(hi)


def check_scenario(sc, graph=None, strict: bool = False) -> list:
    """``check_speeds`` on a parsed scenario's initial and target speeds, against ``graph``'s
    trained envelope (the balance network that will ride it)."""
    return check_speeds(scenario_speeds(sc), f"scenario {sc.name}", strict, trained_speeds(graph))
