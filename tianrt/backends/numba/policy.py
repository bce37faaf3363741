"""The numba backend's choices that depend on the machine and the workload, in one place:
the synapse modes, the crossover activity where an event loop gives way to a dense pass
(measured by ``tianrt warmup --calibrate``, calibrate.py, or the defaults below), and the
per-layer convolution algorithm, timed on the layer's own buffers."""
from __future__ import annotations

import time

from ...errors import BackendError
from ...kernels import synapse

MODES = {"event": synapse.EVENT, "dense": synapse.DENSE, "auto": synapse.AUTO}
CONV_MODES = ("auto", "direct", "im2col")
# Input activity (active inputs / all inputs) above which a dense pass beats the event loop,
# used unless `tianrt warmup --calibrate` measured this machine (calibrate.py);
# measured by `bench/bench_kernels.py scaling` on a 1024->1024 layer (docs/benchmarks.md):
# at batch 1 the event loop stays ahead of both the dense loop and BLAS up to ~70-90 %
# activity; at batch 32 BLAS's weight reuse wins from 30-70 % (varies run to run).
DEFAULT_CROSSOVER = 0.8
DEFAULT_CROSSOVER_BATCH = 0.5
# crossover_for: the batch at which DEFAULT_CROSSOVER_BATCH is measured, and the per-event
# overhead of the event loop in multiply-adds (fitted: bench_kernels.py batch).
BATCH_REF, EVENT_OVERHEAD = 32, 16
# A tensor Dense layer with at most this many weights runs on the synapse loop at batch 1.
SMALL_DENSE = 16384
# A synapse weight matrix with fewer non-zeros than this is run from CSR rows.
CSR_DENSITY = 0.25

# conv_choice's measurements: (input shape with batch, weight shape, stride, padding, outputs)
# -> the faster algorithm, for the life of the process
_CONV_MEASURED: dict[tuple, str] = {}


def check_modes(synapse_mode, names) -> None:
    """``synapse_mode`` is one of MODES or a dict node name -> mode over ``names``."""
    if isinstance(synapse_mode, dict):
        bad = [k for k in synapse_mode if k not in names]
        if bad:
            raise BackendError(f"synapse_mode names unknown node(s) {bad}; nodes: {sorted(names)}")
        for k, m in synapse_mode.items():
            if m not in MODES:
                raise BackendError(f"synapse_mode[{k!r}] = {m!r}; choose one of {', '.join(MODES)}")
    elif synapse_mode not in MODES:
        raise BackendError(f"synapse_mode = {synapse_mode!r}; choose one of {', '.join(MODES)} "
                           "or give a dict node name -> mode")


def crossovers(crossover: float | None) -> tuple[float, float, bool]:
    """(batch-1 crossover, batch crossover, given explicitly) from the option, the stored
    calibration of this machine, or the defaults."""
    from . import calibrate
    if crossover is not None:
        c = float(crossover)
        if not 0.0 <= c <= 1.0:
            raise BackendError(f"crossover is a fraction of active inputs in [0, 1], got {crossover}")
        return c, c, True
    cal = calibrate.load()
    if cal is not None:
        return cal["batch1"], cal["batch_n"], False
    return DEFAULT_CROSSOVER, DEFAULT_CROSSOVER_BATCH, False


def crossover_for(batch: int, n_out: int, crossover: float, crossover_batch: float, given: bool) -> float:
    """The activity above which a float synapse of ``n_out`` outputs goes dense at this
    batch size. The batch crossover is measured at batch 32; larger batches make BLAS
    relatively faster (better weight reuse) and the event loop slower (its (batch, n_out)
    output no longer stays in L1), and a short fan-out pays the per-event cost (a branch,
    often mispredicted, and the row setup) on little work, so the measured value is scaled
    by sqrt(32 / batch) and n_out / (n_out + 16) -- fitted to the sweep of
    bench/bench_kernels.py batch (docs/benchmarks.md). An explicit crossover is used as given."""
    if batch == 1:
        return crossover
    if given:
        return crossover_batch
    return crossover_batch * min(1.0, (BATCH_REF / batch) ** 0.5) * n_out / (n_out + EVENT_OVERHEAD)


def conv_choice(conv_mode: str, entry, forms: dict, outs: list, x_shape: tuple) -> str:
    """The algorithm for a convolution layer: ``conv_mode`` if not "auto"; else the faster
    of ``forms`` (name -> fn(t)) timed on the layer's own buffers (best of 5 after a
    warm-up call), remembered per layer shape for the process. Which one wins depends on
    the shape and the machine (on W2: the 3x3 direct kernel on all three layers, 1.5-2x
    ahead of im2col + BLAS; docs/benchmarks.md). The timing runs overwrite the layer's
    value arrays (``outs``), which are zeroed again afterwards."""
    if conv_mode != "auto":
        return conv_mode
    n = entry.node
    key = (x_shape, n.weight.shape, n.stride, n.padding, len(outs))
    choice = _CONV_MEASURED.get(key)
    if choice is None:
        times = {}
        for name, fn in forms.items():
            fn(0)  # warm-up (and compile or load from the cache)
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                fn(0)
                best = min(best, time.perf_counter() - t0)
                if best > 0.01:  # a big layer: one timing tells, keep the bind short
                    break
            times[name] = best
        choice = _CONV_MEASURED[key] = min(times, key=times.get)
        for a in outs:
            a.fill(0)
    return choice
