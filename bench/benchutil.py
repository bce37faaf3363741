"""Small pieces the benchmark scripts share (standard library only, so that a peer's venv,
e.g. the ONNX Runtime one of peer_ort_w2.py, can import it too)."""
from __future__ import annotations

import os
import sys
import time


def pin_one_cpu() -> str:
    """Pin this process to its first allowed CPU (less migration noise); says what was done."""
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def serve_steps(first_line: str, step) -> None:
    """The ``serve`` protocol of the side-by-side benchmarks: print ``first_line`` (the
    result to check and what is measured), then for every line ``n`` on stdin run ``step()``
    n times and answer the wall and process-CPU microseconds per call; an empty line ends."""
    print(first_line, flush=True)
    while True:
        line = sys.stdin.readline()
        if not line.strip():
            break
        n = int(line)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            step()
        t1, c1 = time.perf_counter(), time.process_time()
        print(f"{(t1 - t0) / n * 1e6:.3f} {(c1 - c0) / n * 1e6:.3f}", flush=True)
