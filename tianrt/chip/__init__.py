"""tianrt.chip: compile integer graphs onto unified cores and talk to a (simulated) chip.

    image, report = tr.chip.compile(qgraph, tr.chip.ChipSpec())
    print(report)
    part = tr.chip.compile_many({"a": qgraph_a, "b": qgraph_b}, tr.chip.ChipSpec())  # one region each
    chip = tr.chip.open_many(part, port="auto")        # one board, one link, the regions' layout
    rt_a = tr.Runtime(qgraph_a, backend="chip", session=chip, region="a")

Light on import: the compiler (and with it the graph modules) loads on first use, so that
the emulator can import ``tianrt.chip.image_format`` / ``tianrt.chip.protocol`` cheaply.
"""
from __future__ import annotations

import importlib

from .spec import ChipSpec, SpecError

_LAZY = {
    "compile": ("tianrt.chip.compiler", "compile"),
    "compile_many": ("tianrt.chip.partition", "compile_many"),
    "Partition": ("tianrt.chip.partition", "Partition"),
    "open_many": ("tianrt.chip.session", "open_many"),
    "ChipSession": ("tianrt.chip.session", "ChipSession"),
    "CompileError": ("tianrt.chip.errors", "CompileError"),
    "CapacityError": ("tianrt.chip.errors", "CapacityError"),
    "MappingReport": ("tianrt.chip.report", "MappingReport"),
    "ImageFormatError": ("tianrt.chip.image_format", "ImageFormatError"),
    "ChipLink": ("tianrt.chip.link", "ChipLink"),
    "LinkError": ("tianrt.chip.errors", "LinkError"),
    "LinkWarning": ("tianrt.chip.errors", "LinkWarning"),
}

__all__ = ["ChipSpec", "SpecError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tianrt.chip' has no attribute {name!r}")
