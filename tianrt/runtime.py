"""One Runtime API over all backends (after ONNX Runtime's session/execution providers).

``Runtime(graph, backend=...)`` lowers the graph to a Plan and hands it to a backend;
what every backend shares (input checks, the generic ``run`` loop, checkpoints) is
``tianrt.backends.base.Backend``.
"""
from __future__ import annotations

import numpy as np

from .backends.base import Backend, RunResult  # noqa: F401 (re-exported)
from .errors import BackendError
from .graph import Graph

_BACKENDS: dict[str, str] = {
    "reference": "tianrt.backends.reference:ReferenceBackend",
    "numba": "tianrt.backends.numba:NumbaBackend",
    "chip": "tianrt.backends.chip:ChipBackend",
}


def get_backend(name: str) -> type[Backend]:
    """The backend class for ``name``; "auto" is numba where numba is installed, else the
    numpy reference (the fallback on machines without numba: docs/numba-backend.md)."""
    import importlib

    if name == "auto":
        from .kernels._jit import HAVE_NUMBA
        name = "numba" if HAVE_NUMBA else "reference"
    if name not in _BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(_BACKENDS)} or 'auto'")
    mod, cls = _BACKENDS[name].split(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if exc.name == mod:
            raise BackendError(f"backend {name!r} is not available in this build of tianrt") from None
        raise
    return getattr(module, cls)


class Runtime:
    """Run a graph on a backend: ``step`` (one tick), ``run`` (many), ``reset``, ``state``."""

    def __init__(self, graph: Graph, backend: str = "reference", **options):
        if not isinstance(graph, Graph):
            raise BackendError(f"Runtime takes a tr.Graph, got {type(graph).__name__}")
        self.graph = graph
        self.backend = backend
        self._impl = get_backend(backend)(graph.build(), **options)
        # Bound directly so that a streaming step costs one Python call into the backend.
        self.step = self._impl.step
        self.advance = self._impl.advance

    def step(self, inputs: dict | None = None) -> dict:  # replaced per instance in __init__
        """Advance one tick; returns the outputs that produced a value at this tick."""
        return self._impl.step(inputs)

    def advance(self, inputs: dict | None = None, max_ticks: int = 1) -> tuple[int, dict]:  # bound in __init__
        """``step(inputs)``, then up to ``max_ticks - 1`` further ticks without new inputs,
        stopping after the first tick whose outputs have a value. Returns (ticks run, that
        tick's outputs or {}). Equal to as many ``step`` calls; the numba backend runs the
        ticks after the first in one loop (tr.stream's scheduler hands it the ticks between
        samples this way)."""
        return self._impl.advance(inputs, max_ticks)

    def run(self, inputs: dict, ticks: int | None = None) -> RunResult:
        """Many ticks: with ``ticks`` (an int >= 1), values are presented at the first tick
        (and held, or presented once: spike inputs with ``hold=False``); without, each input
        has a leading time axis (one slice per tick). Every tick is checked before the first
        runs: a refused run changes nothing."""
        return self._impl.run(inputs, ticks)

    def reset(self) -> None:
        """Clear all state (membranes, windows, held values, tick counter, batch size)."""
        self._impl.reset()

    def state(self) -> dict[str, np.ndarray]:
        """A checkpoint of the running stream: a flat dict of arrays (savable with np.savez).
        Only reads: before the first input it describes the fresh state at batch 1."""
        return self._impl.state()

    def load_state(self, state: dict) -> None:
        """Restore a checkpoint made by ``state()`` on a runtime of the same graph; it is
        checked in full first, and a refused one changes nothing."""
        self._impl.load_state(state)

    @property
    def tick(self) -> int:
        """The number of ticks since the last reset."""
        return self._impl.t

    def counters(self) -> dict:
        """Hardware counters of a backend that keeps them (chip: rounds, cycles, MACs,
        synaptic events, spikes, packets, hops, energy; docs/chip.md)."""
        fn = getattr(self._impl, "counters", None)
        if fn is None:
            raise BackendError(f"backend {self.backend!r} keeps no hardware counters; use backend='chip'")
        return fn()

    def close(self) -> None:
        close = getattr(self._impl, "close", None)
        if close is not None:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
