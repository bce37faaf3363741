"""Input arrays for the command line: reading them from a file and fitting them to a graph.

``read_arrays`` reads an ``.npz`` (one array per name) or a bare ``.npy`` (one array)
through ``npzio``: regular files only, at most ``MAX_FILE_BYTES`` on disk and
``MAX_ARRAY_BYTES`` of arrays, every member fully read and CRC-checked here, so nothing
fails lazily later. ``fit_inputs`` names the graph input each array feeds (an ``.npy`` feeds
a single-input graph) and checks its shape before anything runs, saying how the leading
axis was read (time without ``--ticks``, one held value with it). Errors are
``InputError`` naming the file. Limits: docs/limits.md.
"""
from __future__ import annotations

import os

import numpy as np

from . import npzio
from .errors import InputError

MAX_FILE_BYTES = 4 << 30      # an input file on disk
MAX_ARRAY_BYTES = 4 << 30     # all its arrays together, as their .npy headers declare them
NPY = None                    # the key under which a bare .npy's array is returned


def read_arrays(path, what: str = "inputs", fail=None) -> dict:
    """{name: array} from an .npz, or {NPY: array} from an .npy (told apart by content).
    ``fail(problem) -> TianrtError`` makes the caller's error (default: InputError)."""
    if fail is None:
        def fail(problem: str) -> InputError:
            return InputError(f"cannot read {what} from {path}: {problem}")

    with npzio.open_regular(path, MAX_FILE_BYTES, fail) as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(6) == npzio.NPY_MAGIC:
            f.seek(0)
            return {NPY: npzio.read_npy(f, size, MAX_ARRAY_BYTES, fail)}
        f.seek(0)
        z = npzio.NpzArchive(f, size, fail, kind="an .npz or .npy file", writer="numpy.savez / numpy.save")
        out, left = {}, MAX_ARRAY_BYTES
        for name in z.names:
            a = z.read(name, left)
            left -= a.nbytes
            out[name] = a
        return out


def graph_inputs(graph) -> dict[str, tuple[int, ...]]:
    """The graph's inputs in declaration order: name -> per-sample shape."""
    return {n: tuple(e.shape) for n, e in graph.entries.items() if e.node.op == "graph.Input"}


def _fits(shape: tuple, spec: tuple) -> bool:
    return shape == spec or (len(shape) == len(spec) + 1 and shape[1:] == spec)


def fit_inputs(graph, arrays: dict, ticks: int | None, source) -> dict[str, np.ndarray]:
    """Name every array by the graph input it feeds and check its shape, or raise InputError.

    With ``ticks`` an array is one value held for that many ticks: shape S or (batch, *S).
    Without, axis 0 is time: shape (T, *S) or (T, batch, *S)."""
    specs = graph_inputs(graph)
    if NPY in arrays:
        if len(specs) != 1:
            raise InputError(f"{source}: an .npy file holds one array, but graph {graph.name!r} has "
                             f"{len(specs)} inputs ({', '.join(specs)}); give an .npz with one array per input")
        arrays = {next(iter(specs)): arrays[NPY]}
    if not arrays:
        raise InputError(f"{source}: holds no arrays; graph {graph.name!r} takes "
                         + ", ".join(f"{n} {s}" for n, s in specs.items()))
    out = {}
    for k, a in arrays.items():
        if k not in specs:
            raise InputError(f"{source}: graph {graph.name!r} has no input {k!r}; its inputs are "
                             f"{', '.join(specs)}")
        s = specs[k]
        if a.dtype.kind == "c":
            raise InputError(f"{source}: input `{k}` holds complex numbers ({a.dtype}); inputs are real")
        if ticks is not None:
            if not _fits(a.shape, s):
                hint = (f"; it looks like {a.shape[0]} ticks of {a.shape[1:]}: drop --ticks to feed one "
                        "slice per tick" if a.ndim >= 1 and _fits(a.shape[1:], s) else "")
                raise InputError(f"{source}: input `{k}` has shape {a.shape}; with --ticks it is one value "
                                 f"held for {ticks} ticks, so it must be {s} or (batch, {_dims(s)}){hint}")
        else:
            if a.ndim == 0 or not _fits(a.shape[1:], s):
                per = a.shape[1:] if a.ndim else None
                hint = (f"; to present this one value and hold it, pass --ticks N" if _fits(a.shape, s)
                        else f"; give an array of shape (ticks, {_dims(s)})")
                got = (f"without --ticks axis 0 is time, so that is {a.shape[0]} tick(s) of shape {per}"
                       if a.ndim else "without --ticks an input needs a leading time axis")
                raise InputError(f"{source}: input `{k}` has shape {a.shape}; {got}, but the input takes "
                                 f"{s} (or (batch, {_dims(s)})) per tick{hint}")
        batch = a.shape[-len(s) - 1] if a.ndim == len(s) + (2 if ticks is None else 1) else None
        if batch == 0:
            raise InputError(f"{source}: input `{k}` has shape {a.shape}: a batch of 0 samples; "
                             "give at least one")
        if ticks is None and a.shape[0] == 0:
            raise InputError(f"{source}: input `{k}` has shape {a.shape}: 0 ticks along the time axis "
                             "(axis 0), nothing to run")
        out[k] = a
    return out


def _dims(s: tuple) -> str:
    return ", ".join(map(str, s))
