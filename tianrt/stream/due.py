"""The next tick with work (docs/streaming.md, Ticks where nothing is due): the scheduler's
loop (tickloop.py) jumps from one such tick to the next instead of visiting the ticks between,
on which it would poll no source, deliver nothing and step no runtime.

A tick n (stream time n * dt) may have work when

- a runtime steps on it (n is a multiple of the runtime's stride);
- a source is due: n * dt >= its wake time (its next sample, or the time its next miss is
  counted; -inf for a live source, which is polled every tick);
- a queued sample may be delivered: n is a multiple of the feed's stride (its synchronised
  group's, for a member of one) and n * dt + EPS >= the oldest sample's time + the source's
  delay;
- on the wall clock under ``overrun="drop-stale"``, a sample is queued (it may go stale);
- a replayed run's recorded skip starts at n.

``NextDue(...)(n, end)`` is the first tick >= n that may have work (at most ``end``). It may
answer a tick with nothing to do (a synchronised set still incomplete, say): visiting such a
tick changes nothing. It never answers past a tick with work: the floating-point tests are the
loop's own (``n * dt >= wake``, ``head + delay <= n * dt + EPS``), evaluated at the same ticks.
"""
from __future__ import annotations

import math
from bisect import bisect_left

from .base import EPS

TABLE = 1 << 16  # runtime stride patterns up to this period are looked up in a table


def first_at(x: float, n: int, dt: float, eps: float = 0.0) -> int:
    """The first tick k >= n with ``k * dt + eps >= x`` (``x`` finite, or -inf)."""
    if n * dt + eps >= x:
        return n
    k = max(n, int((x - eps) / dt) - 1)  # below the answer: k * dt <= x - eps - dt (to rounding)
    while k * dt + eps < x:
        k += 1
    return k


class NextDue:
    """The first tick at or after n that may have work, for one run of the loop."""

    def __init__(self, strides, feeds, groups, dt: float, *, stale: bool = False, skips=None):
        strides = sorted(set(strides))
        period = 1
        for s in strides:
            period = period * s // math.gcd(period, s)
        self.strides = strides
        self.period = period
        self.gap = None  # gap[n % period]: ticks from n to the next runtime tick
        if period <= TABLE:
            gap = [0] * (period + 1)
            for i in range(period - 1, -1, -1):
                gap[i] = 0 if any(i % s == 0 for s in strides) else gap[i + 1] + 1
            self.gap = gap
        self.feeds, self.groups, self.dt = feeds, groups, dt
        self.stale = stale
        self.skips = sorted(skips) if skips else None

    def __call__(self, n: int, end) -> int:
        dt = self.dt
        if self.gap is not None:
            j = n + self.gap[n % self.period]
        else:
            j = n + min(-n % s for s in self.strides)
        if j > n:
            for f in self.feeds:
                w = f.wake
                if w < j * dt:  # polled (or a miss counted) before the next runtime tick
                    j = first_at(w, n, dt)
                    if j == n:
                        return n
                buf = f.buf
                if buf:
                    if self.stale:
                        return n
                    stride = f.stride if f.group is None else f.group.stride
                    x = buf[0][0] + f.delay
                    if x <= j * dt + EPS:  # deliverable before the next runtime tick
                        k = first_at(x, n, dt, EPS)
                        k += -k % stride
                        if k < j:
                            j = k
                            if j == n:
                                return n
            if self.skips is not None:
                i = bisect_left(self.skips, n)
                if i < len(self.skips) and self.skips[i] < j:
                    j = self.skips[i]
        return j if j < end else end
