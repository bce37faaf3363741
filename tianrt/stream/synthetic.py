"""Array and simulation sources: values from memory, or from a callable the scheduler
advances (a physics simulation, a signal generator)."""
from __future__ import annotations

import math

import numpy as np

from .base import END, StreamError, TimedSource


class ArraySource(TimedSource):
    """Samples from an array with a leading time axis (or any sequence of values).

    Sample k is due at ``start + k / rate_hz``, or at ``times[k]`` (seconds, non-decreasing);
    with neither, one sample per tick of the graph (``rate_hz = 1 / dt``). ``loop=True``
    replays the values forever.
    """

    kind = "array"
    default_policy = "never-drop"

    def __init__(self, values, rate_hz: float | None = None, *, times=None, loop: bool = False, **kw):
        super().__init__(rate_hz=rate_hz, **kw)
        if isinstance(values, np.ndarray):
            if values.ndim == 0:
                raise StreamError(f"source `{self.name}`: values need a leading time axis, got a scalar")
            self.values = values
        else:
            self.values = list(values)
        if len(self.values) == 0:
            raise StreamError(f"source `{self.name}`: no values")
        self.times = None
        if times is not None:
            if rate_hz is not None:
                raise StreamError(f"source `{self.name}`: give rate_hz or times, not both")
            if loop:
                raise StreamError(f"source `{self.name}`: loop=True needs rate_hz, not times")
            tt = np.asarray(times, np.float64)
            if tt.shape != (len(self.values),):
                raise StreamError(f"source `{self.name}`: times has shape {tt.shape}, expected "
                                  f"({len(self.values)},) - one time per value")
            if not np.isfinite(tt).all() or np.any(np.diff(tt) < 0):
                raise StreamError(f"source `{self.name}`: times must be finite and non-decreasing")
            self.times = tt
        self.loop = bool(loop)

    def fit(self, shape, domain):
        shape = tuple(shape)
        if isinstance(self.values, np.ndarray) and tuple(self.values.shape[1:]) != shape:
            each = tuple(self.values.shape[1:])
            hint = (f"; reshape it to {(len(self.values),) + shape}"
                    if int(np.prod(each)) == int(np.prod(shape)) else "")
            raise StreamError(f"source `{self.name}`: an array of shape {self.values.shape} holds "
                              f"{len(self.values)} samples of shape {each}, but the input it feeds "
                              f"takes {shape}{hint}")

    def open(self, clock, dt):
        if self.rate_hz is None and self.times is None:
            self.rate_hz = 1.0 / dt
        self._k = 0
        self.ended = False

    def _time_of(self, k):
        if self.times is not None:
            return float(self.times[k]) if k < len(self.times) else math.inf
        return self.start + k / self.rate_hz

    def _read(self, k, ts):
        n = len(self.values)
        if k >= n and not self.loop:
            return END
        return self.values[k % n]

    def poll(self, t):
        out = super().poll(t)
        if not self.loop and self._k >= len(self.values):
            self.ended = True
        return out

    def describe(self):
        when = "times" if self.times is not None else (
            f"{self.rate_hz:g} Hz" if self.rate_hz else "every tick")
        return f"{len(self.values)} values at {when}" + (", looped" if self.loop else "")


class SimulationSource(TimedSource):
    """A callable advanced by the scheduler: ``fn(t)`` is called at t = start, start + 1/rate_hz,
    ... (stream seconds) and returns the sensor values at t - one array, or a dict mapping
    graph input names to arrays, or None (no sample this time), or ``tianrt.stream.END``.

    The callable advances its own simulation up to t. Commands flow back through sinks, which
    run right after the runtime's step in the same tick: a command computed at tick n acts on
    the simulation from its next call on (one sample of actuation delay, as on a real robot).
    """

    kind = "sim"
    default_policy = "never-drop"
    may_be_keyed = True

    def __init__(self, fn, rate_hz: float, **kw):
        if not callable(fn):
            raise StreamError(f"SimulationSource needs a callable fn(t), got {type(fn).__name__}")
        if rate_hz is None:
            raise StreamError("SimulationSource needs rate_hz (how often to call the simulation)")
        super().__init__(rate_hz=rate_hz, **kw)
        self.fn = fn

    def open(self, clock, dt):
        self._k = 0
        self.ended = False

    def _read(self, k, ts):
        return self.fn(ts)

    def describe(self):
        return f"{getattr(self.fn, '__qualname__', type(self.fn).__name__)} at {self.rate_hz:g} Hz"
