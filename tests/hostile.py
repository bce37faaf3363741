"""Helpers for the hostile-input tests: a wall-clock timeout and an allocation cap."""
from __future__ import annotations

import contextlib
import signal
import tracemalloc


@contextlib.contextmanager
def within(seconds: float):
    """Raise TimeoutError in the main thread if the block runs longer than ``seconds``
    (a blocking open or read is interrupted by the signal)."""
    def alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def allocation_cap(max_bytes: int):
    """Fail if the block's peak traced allocation (numpy arrays included) exceeds ``max_bytes``."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()
    assert peak <= max_bytes, f"peak allocation {peak:,} bytes exceeds the cap of {max_bytes:,}"
