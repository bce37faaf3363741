"""The Source and Sink base classes, the declared policies, and the END marker.

A source produces samples ``(timestamp, value)``; timestamps are stream time in seconds
(the clock's time since the run started). What happens to a sample after that (queueing,
dropping, validating, delivering to a graph input) is the scheduler's job, following the
policy the source declares:

- ``"latest"`` (keep-latest): only the newest undelivered sample is kept; older ones are
  dropped and counted (camera frames).
- ``"queue"``: a bounded FIFO of ``capacity`` samples; on overflow the ``overflow`` policy
  (``"drop-oldest"`` or ``"drop-newest"``) drops one sample and counts it (audio chunks).
- ``"never-drop"``: an unbounded FIFO; nothing is ever dropped, a backlog shows up as latency
  (control inputs). A backlog beyond ``capacity`` (default 100000) stops the run with an error
  instead of silently eating memory.

Values that are not finite or have the wrong shape are handled by ``invalid``: ``"reject"``
(count and discard; the input keeps its last value), ``"sanitise"`` (non-finite elements are
replaced by the last good value's, or 0, and counted; wrong shapes are still rejected), or
``"raise"`` (stop the run with an error naming the source and the problem).

``delay`` (seconds, default 0) holds each sample until its timestamp + delay before it is
delivered: with sensor timestamps, bursty arrivals reach the network evenly spaced.
"""
from __future__ import annotations

import math

from ..errors import TianrtError

POLICIES = ("latest", "queue", "never-drop")
OVERFLOWS = ("drop-oldest", "drop-newest")
INVALIDS = ("reject", "sanitise", "raise")
NEVER_DROP_LIMIT = 100_000
EPS = 1e-9  # seconds: a sample stamped within EPS of a tick's time lands on that tick


class StreamError(TianrtError, RuntimeError):
    """A stream that cannot be set up or continued (bad binding, device that will not open,
    never-drop backlog overflow, a value the ``raise`` policy refuses)."""


class Terminated(KeyboardInterrupt):
    """Raised in the loop's thread when the process is asked to stop (SIGTERM, as systemd,
    ``docker stop`` and launch systems send): the run stops like on Ctrl-C, with
    ``stopped: terminated``."""


class _End:
    def __repr__(self):
        return "tianrt.stream.END"


END = _End()
"""Returned by a simulation callable (or an ``Source._read``) to say the stream is over."""


def _norm_invalid(v: str) -> str:
    v = {"sanitize": "sanitise"}.get(v, v)
    if v not in INVALIDS:
        raise StreamError(f"invalid= must be one of {', '.join(INVALIDS)}, got {v!r}")
    return v


class Source:
    """Base class of sources. Subclasses implement ``poll(t)`` and usually ``open``/``close``.

    ``timed`` sources know when their next sample is due (``next_time()``) and are polled only
    then; untimed (live) sources are polled every tick and stamp samples with the poll time.
    ``rate_hz`` is the nominal rate: it sets sample times of timed sources and lets the
    scheduler count misses (a period passing without a sample) on any source.
    """

    kind = "source"
    default_policy = "latest"
    timed = False
    # what a sample's timestamp is: "sensor" (the device's own time of the sample, mapped to
    # stream time), "due" (a file's, array's or simulation's own sample time), or "arrival"
    # (the time the sample was read: all a device without timestamps allows)
    time_base = "arrival"

    def __init__(self, *, name: str | None = None, rate_hz: float | None = None,
                 policy: str | None = None, capacity: int | None = None,
                 overflow: str = "drop-oldest", invalid: str = "reject", delay: float = 0.0):
        self.name = name or self.kind
        if not (delay >= 0 and math.isfinite(delay)):
            raise StreamError(f"source `{self.name}`: delay must be >= 0 seconds, got {delay!r}")
        self.delay = float(delay)
        if rate_hz is not None and not (rate_hz > 0 and math.isfinite(rate_hz)):
            raise StreamError(f"source `{self.name}`: rate_hz must be a positive number, got {rate_hz!r}")
        self.rate_hz = None if rate_hz is None else float(rate_hz)
        self.policy = policy or self.default_policy
        if self.policy not in POLICIES:
            raise StreamError(f"source `{self.name}`: policy must be one of {', '.join(POLICIES)}, "
                              f"got {self.policy!r}")
        if overflow not in OVERFLOWS:
            raise StreamError(f"source `{self.name}`: overflow must be one of {', '.join(OVERFLOWS)}, "
                              f"got {overflow!r}")
        if self.policy == "queue" and capacity is None:
            capacity = 8
        if capacity is not None and int(capacity) < 1:
            raise StreamError(f"source `{self.name}`: capacity must be >= 1, got {capacity!r}")
        self.capacity = None if capacity is None else int(capacity)
        self.overflow = overflow
        self.invalid = _norm_invalid(invalid)
        self.ended = False
        self.extra: dict[str, int] = {}  # source-specific counters shown in the report

    # -- hooks --------------------------------------------------------------------------
    def fit(self, shape: tuple, domain: str) -> None:
        """Told the shape of the graph input it feeds (once, before ``open``), so that e.g. a
        camera can size its frames to it. Sources bound to several inputs are not told."""

    def fit_rate(self, rate_hz: float, label: str) -> None:
        """Told the rate (Hz) that the graph input ``label`` it feeds declares, after ``fit``,
        when the input declares one; a source whose samples cannot match it says so here."""

    def open(self, clock, dt: float) -> None:
        """Acquire the device or file. ``clock.now()`` gives stream time; ``dt`` the tick."""

    def next_time(self) -> float:
        """Timed sources: stream time of the next sample (``inf`` when ended)."""
        return -math.inf

    def poll(self, t: float) -> list:
        """Samples that have arrived by stream time ``t``: a list of ``(timestamp, value)``.
        Set ``self.ended = True`` when no sample will ever come again."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; must be safe to call twice."""

    def describe(self) -> str:
        return self.kind

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}: {self.describe()}, policy={self.policy}>"


class TimedSource(Source):
    """A source whose k-th sample is due at ``start + k / rate_hz`` (or at ``times[k]``)."""

    timed = True
    time_base = "due"

    def __init__(self, *, start: float = 0.0, **kw):
        super().__init__(**kw)
        self.start = float(start)
        self._k = 0

    def _time_of(self, k: int) -> float:
        return self.start + k / self.rate_hz

    def next_time(self) -> float:
        return math.inf if self.ended else self._time_of(self._k)

    def poll(self, t: float) -> list:
        out = []
        while not self.ended and self._time_of(self._k) <= t + EPS:
            ts = self._time_of(self._k)
            v = self._read(self._k, ts)
            self._k += 1
            if v is END:
                self.ended = True
            elif v is not None:
                out.append((ts, v))
        return out

    def _read(self, k: int, ts: float):
        """The k-th sample's value (None: nothing this time; END: the stream is over)."""
        raise NotImplementedError


class Sink:
    """Base class of sinks: ``write(value, tick, t)`` for every value of the output it is bound
    to; ``open``/``close`` around a run."""

    kind = "sink"

    def open(self, clock, dt: float) -> None:
        pass

    def write(self, value, tick: int, t: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
