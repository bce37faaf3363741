"""tianrt: a runtime for hybrid ANN/SNN graphs on edge machines, after the Tianjic chip.

    import tianrt as tr
    g = tr.Graph(dt=1e-3)
    x = g.input("x", shape=(16,))
    s = g.add(tr.bridge.RateEncoder(), x)
    s = g.add(tr.snn.Dense(16, 8), s)
    s = g.add(tr.snn.LIF(beta=0.9), s)
    g.output("y", g.add(tr.bridge.SpikeCount(window=16), s))
    out = tr.Runtime(g).run({"x": x_value}, ticks=16)
"""
from importlib.metadata import PackageNotFoundError, version as _version

from . import ann, bridge, q, snn
from .domains import CURRENT, SPIKE, TENSOR
from .errors import (BackendError, DomainError, GraphError, InputError, ModelFileError, ShapeError,
                     TianrtError)
from .graph import Graph, Handle, Sequential
from .modelfile import load, save
from .runtime import RunResult, Runtime

try:
    __version__ = _version("tianrt")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"

__all__ = ["Graph", "Handle", "Sequential", "Runtime", "RunResult", "save", "load", "ann", "snn",
           "bridge", "q", "TENSOR", "SPIKE", "CURRENT", "TianrtError", "GraphError", "DomainError",
           "ShapeError", "InputError", "ModelFileError", "BackendError", "__version__"]


def __getattr__(name):
    # Heavier parts load on first use so that `import tianrt` stays fast on a small board.
    import importlib

    lazy = {"convert": ("tianrt.convert", "convert"), "quantize": ("tianrt.quantize", "quantize"),
            "chip": ("tianrt.chip", None), "train": ("tianrt.train", None),
            "stream": ("tianrt.stream", None), "nir": ("tianrt.nir_io", None)}
    if name in lazy:
        mod, attr = lazy[name]
        m = importlib.import_module(mod)
        return getattr(m, attr) if attr else m
    raise AttributeError(f"module 'tianrt' has no attribute {name!r}")
