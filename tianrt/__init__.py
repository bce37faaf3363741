"""tianrt: a runtime for hybrid ANN/SNN graphs on edge machines, after the Tianjic chip.

    import tianrt as tr
    g = tr.Graph(dt=1e-3)
    x = g.input("x", shape=(16,))
    s = g.add(tr.bridge.RateEncoder(), x)
    s = g.add(tr.snn.Dense(16, 8), s)
    s = g.add(tr.snn.LIF(beta=0.9), s)
    g.output("y", g.add(tr.bridge.SpikeCount(window=16), s))
    out = tr.Runtime(g).run({"x": x_value}, ticks=16)

Names load on first use, so that ``import tianrt.kernels`` or ``tianrt.firmware_sim``
(the chip emulator, which must never load the graph or runtime) stays light.
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("tianrt")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"

# public name -> (module, attribute or None for the module itself). A function is never
# kept in a module of its own name (tr.convert lives in tianrt.conversion): importing such a
# submodule would rebind the package attribute to the module and shadow the function.
_PUBLIC = {
    "Graph": ("tianrt.graph", "Graph"),
    "Handle": ("tianrt.graph", "Handle"),
    "Sequential": ("tianrt.graph", "Sequential"),
    "Runtime": ("tianrt.runtime", "Runtime"),
    "RunResult": ("tianrt.runtime", "RunResult"),
    "save": ("tianrt.modelfile", "save"),
    "load": ("tianrt.modelfile", "load"),
    "ann": ("tianrt.ann", None),
    "snn": ("tianrt.snn", None),
    "bridge": ("tianrt.bridge", None),
    "q": ("tianrt.q", None),
    "TENSOR": ("tianrt.domains", "TENSOR"),
    "SPIKE": ("tianrt.domains", "SPIKE"),
    "CURRENT": ("tianrt.domains", "CURRENT"),
    "TianrtError": ("tianrt.errors", "TianrtError"),
    "GraphError": ("tianrt.errors", "GraphError"),
    "DomainError": ("tianrt.errors", "DomainError"),
    "ShapeError": ("tianrt.errors", "ShapeError"),
    "InputError": ("tianrt.errors", "InputError"),
    "ModelFileError": ("tianrt.errors", "ModelFileError"),
    "BackendError": ("tianrt.errors", "BackendError"),
    "convert": ("tianrt.conversion", "convert"),
    "quantize": ("tianrt.quantization", "quantize"),
    "chip": ("tianrt.chip", None),
    "train": ("tianrt.train", None),
    "stream": ("tianrt.stream", None),
    "opcount": ("tianrt.opcount", None),
    "interop": ("tianrt.interop", None),
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        mod, attr = _PUBLIC[name]
        m = importlib.import_module(mod)
        value = getattr(m, attr) if attr else m
        globals()[name] = value  # cache: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module 'tianrt' has no attribute {name!r}")


def __dir__():
    return __all__
