"""Synchronised sets: several sources delivered together, as one matched set of samples whose
sensor times lie within a tolerance of each other (approximate-time synchronisation, as ROS 2
``message_filters`` does).

Matching is greedy over the queues, in time order: while every source of the group has a
sample waiting (and due, after its ``delay``), look at the oldest waiting sample of each. If
their times span at most ``tolerance``, they are delivered as one set (one set per tick). If
not, the oldest of them can never be matched - every other source's later samples are newer
still - so it is discarded and counted as ``unmatched`` (and in the source's ``dropped``).
A source that has not yet sent its part of a set holds the others back (their queues fill by
their own policy), so a group is as fast as its slowest member.
"""
from __future__ import annotations

from .base import EPS, StreamError


class SyncGroup:
    """Feeds delivered as matched sets."""

    def __init__(self, feeds, tolerance: float):
        if len(feeds) < 2:
            raise StreamError("synchronise: give two or more sources")
        if not (tolerance >= 0):
            raise StreamError(f"synchronise: tolerance must be >= 0 seconds, got {tolerance!r}")
        self.feeds = list(feeds)
        self.tolerance = float(tolerance)
        self.stride = min(f.stride for f in self.feeds)
        self.sets = 0
        self.unmatched = 0

    @property
    def name(self) -> str:
        return "+".join(f.name for f in self.feeds)

    def match(self, t: float):
        """The set to deliver at stream time ``t`` as a list of ``(feed, ts, item, k)``, or None;
        discards (and counts) samples that can no longer be matched."""
        feeds, tol = self.feeds, self.tolerance
        while True:
            heads = []
            for f in feeds:
                if not f.buf or f.buf[0][0] + f.delay > t + EPS:
                    return None
                heads.append(f.buf[0][0])
            lo, hi = min(heads), max(heads)
            if hi - lo <= tol + EPS:
                self.sets += 1
                return [(f, *f.buf.popleft()) for f in feeds]
            f = feeds[heads.index(lo)]
            f.buf.popleft()
            f.stats.dropped += 1
            f.unmatched += 1
            self.unmatched += 1

    def as_dict(self) -> dict:
        return {"sources": [f.name for f in self.feeds], "tolerance_s": self.tolerance,
                "sets": self.sets, "unmatched": self.unmatched}
