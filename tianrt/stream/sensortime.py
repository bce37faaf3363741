"""Sensor time: mapping a device's own clock onto stream time, and counting lost samples by
their sequence numbers.

A sensor stamps each sample on its own clock (microseconds since boot, a camera driver's
buffer time, ...), whose epoch the host does not know. ``SensorClock`` learns the offset
between the two from the samples themselves: every sample reaches the host *after* it was
taken, so ``arrival - sensor_time`` is the offset plus a transport delay that is never
negative; the smallest value seen is the best estimate of the offset (the sample that
travelled fastest is taken to have taken no time). A sample is then placed at
``sensor_time + offset``, never later than its arrival.

This undoes what a USB-serial adapter does to a 200 Hz IMU when it flushes every 16 ms: the
samples of a burst keep their 5 ms spacing instead of all looking 0 ms old. The placed times
are one constant (the fastest transport delay, typically well under a millisecond) too late, and
it follows a device clock that runs fast; a device clock that runs slow makes samples look
older over time (by its drift: 100 ppm is 0.1 ms per second), and a device clock that jumps
back (a reboot) restarts the estimate.
"""
from __future__ import annotations

import math


class SensorClock:
    """Maps sensor times (seconds, the device's epoch) to stream time."""

    def __init__(self):
        self.offset = math.inf
        self.last = -math.inf
        self.restarts = 0

    def place(self, arrival, sensor_times: list[float]) -> list[float]:
        """Stream times of the samples of one read: ``arrival`` is the stream time they
        arrived (one for all, or one per sample). The offset learnt from the whole read
        applies to all of its samples."""
        if not sensor_times:
            return []
        arrivals = list(arrival) if isinstance(arrival, (list, tuple)) else [arrival] * len(sensor_times)
        if sensor_times[0] < self.last - 1.0:  # the device clock went back: it restarted
            self.offset, self.restarts = math.inf, self.restarts + 1
        self.last = sensor_times[-1]
        self.offset = min(self.offset, min(a - s for a, s in zip(arrivals, sensor_times)))
        return [min(s + self.offset, a) for a, s in zip(arrivals, sensor_times)]


class SequenceCounter:
    """Counts samples lost in transit from gaps in 32-bit sequence numbers (which wrap)."""

    def __init__(self, bits: int = 32):
        self.mod = 1 << bits
        self.prev = None
        self.lost = 0
        self.out_of_order = 0

    def see(self, seq: int) -> None:
        if self.prev is not None:
            gap = (seq - self.prev) % self.mod
            if gap == 0 or gap > self.mod // 2:  # a repeat or an older sample
                self.out_of_order += 1
                return
            self.lost += gap - 1
        self.prev = seq
