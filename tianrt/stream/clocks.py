"""The scheduler's two clocks. Both count stream time in seconds from the start of a run.

- ``SimClock``: simulated time; waiting is free, so a run is deterministic and goes as fast
  as the machine allows (all tests use it).
- ``WallClock``: real time from ``time.perf_counter``; waiting sleeps, and the lateness of
  each tick (how long after its scheduled time it actually started) is measured.
"""
from __future__ import annotations

import time


class Clock:
    kind = "clock"
    realtime = False

    def start(self, at: float = 0.0) -> None:
        """Called when a run starts or resumes: stream time ``at`` is now."""

    def now(self) -> float:
        raise NotImplementedError

    def wait_until(self, t: float) -> None:
        raise NotImplementedError


class SimClock(Clock):
    """Simulated time: ``wait_until(t)`` jumps to ``t`` at once."""

    kind = "sim"

    def __init__(self):
        self.t = 0.0

    def start(self, at: float = 0.0) -> None:
        self.t = float(at)

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        if t > self.t:
            self.t = t


class WallClock(Clock):
    """Real time. ``spin`` seconds before a deadline the clock stops sleeping and busy-waits,
    trading CPU for punctuality (0 by default: on a shared machine sleeping is kinder)."""

    kind = "wall"
    realtime = True

    def __init__(self, spin: float = 0.0):
        self.spin = float(spin)
        self.t0 = time.perf_counter()

    def start(self, at: float = 0.0) -> None:
        self.t0 = time.perf_counter() - float(at)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def wait_until(self, t: float) -> None:
        target = self.t0 + t
        left = target - time.perf_counter()
        if left > self.spin:
            time.sleep(left - self.spin)
        if self.spin:
            while time.perf_counter() < target:
                pass


def make_clock(clock) -> Clock:
    if isinstance(clock, Clock):
        return clock
    if clock in ("sim", "simulated", None):
        return SimClock()
    if clock in ("wall", "real", "realtime"):
        return WallClock()
    from ..errors import InputError
    raise InputError(f"clock must be 'sim', 'wall' or a tianrt.stream.Clock, got {clock!r}")
