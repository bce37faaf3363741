"""Interoperability: NIR export/import and ONNX import (``tr.interop``).

    nir_graph, notes = tr.interop.to_nir(g)          # tianrt -> nir.NIRGraph (+ what peers lose)
    tr.interop.write_nir(g, "model.nir")             # ... and to an HDF5 file
    g = tr.interop.read_nir("model.nir", dt=1e-3)    # NIR (file or nir.NIRGraph) -> tr.Graph
    g = tr.interop.read_onnx("model.onnx")           # ONNX ANN -> tr.Graph of tr.ann nodes

The optional packages (``nir``, ``h5py``, ``onnx``: ``pip install 'tianrt[interop]'``) are
imported only when one of these functions runs. Mapping tables, the discretisation of NIR's
continuous-time neurons and porting notes: docs/interop.md.
"""
from __future__ import annotations

from ._common import InteropError, InteropWarning
from .nir_export import to_nir, write_nir
from .nir_import import from_nir, read_nir
from .onnx_io import read_onnx

__all__ = ["InteropError", "InteropWarning", "from_nir", "read_nir", "to_nir", "write_nir", "read_onnx"]
