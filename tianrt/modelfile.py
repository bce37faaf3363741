"""Model files (.tnr): a whole graph with its weights, versioned, no pickle.

Layout: a zip archive as written by ``numpy.savez`` holding ``__header__`` (UTF-8 JSON as
a uint8 array) and one array per parameter (``a0``, ``a1``, ...). The header lists the
nodes in build order with their op, configuration, inputs and array keys, the outputs,
and a SHA-256 digest of every array and of the graph description, so truncated, corrupt
or tampered files are refused. Loading only looks node types up in a registry: it never
executes code from the file. Byte layout and fields: docs/model-format.md.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import ann, bridge, q, snn  # noqa: F401  (their node types register themselves)
from .errors import GraphError, ModelFileError
from .graph import Delay, Graph, Input
from .node import NODE_TYPES

FORMAT = "tianrt-model"
VERSION = 1
HEADER_KEY = "__header__"


def _digest(graph_desc: dict, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(graph_desc, sort_keys=True).encode())
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(_array_digest(arrays[k]).encode())
    return h.hexdigest()


def _array_digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def describe(g: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON graph description and the arrays it refers to."""
    nodes, arrays = [], {}
    for name, e in g.entries.items():
        keys = {}
        for pname, arr in e.node.arrays().items():
            key = f"a{len(arrays)}"
            arrays[key] = np.ascontiguousarray(arr)
            keys[pname] = key
        nodes.append({"name": name, "op": e.node.op, "inputs": list(e.inputs), "source": e.source,
                      "config": e.node.config(), "arrays": keys})
    desc = {"name": g.name, "dt": g.dt, "nodes": nodes, "outputs": dict(g.outputs),
            "metadata": g.metadata,
            "array_info": {k: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _array_digest(a)}
                           for k, a in arrays.items()}}
    return desc, arrays


def save(g: Graph, path) -> Path:
    """Write ``g`` to ``path`` (conventionally ``.tnr``); the graph is validated first."""
    g.validate()
    desc, arrays = describe(g)
    header = {"format": FORMAT, "version": VERSION, "writer": _writer(), "graph": desc,
              "digest": _digest(desc, arrays)}
    raw = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # file object: numpy must not append '.npz' to the name
        np.savez(f, **{HEADER_KEY: raw}, **arrays)
    os.replace(tmp, path)  # never leave a half-written model behind
    return path


def _writer() -> str:
    from . import __version__
    return f"tianrt {__version__}"


def load(path) -> Graph:
    """Read a model file written by ``save``; every problem names the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "no such file")
    data = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelFileError(path, f"not a tianrt model file (no zip archive found in {len(data)} bytes; "
                                   "truncated or not written by tianrt.save)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if HEADER_KEY not in z.files:
                raise ModelFileError(path, f"no {HEADER_KEY} entry: not a tianrt model file")
            raw = z[HEADER_KEY]
            header = _parse_header(path, raw)
            keys = list(header["graph"].get("array_info", {}))
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise ModelFileError(path, f"arrays {missing[:5]} listed in the header are missing")
            arrays = {k: z[k] for k in keys}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(path, f"corrupt archive ({type(exc).__name__}: {exc})") from None
    return _rebuild(path, header, arrays)


def _parse_header(path, raw) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(path, "header entry is not a byte string")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(path, f"header format is {header.get('format') if isinstance(header, dict) else None!r}, "
                                   f"expected {FORMAT!r}")
    v = header.get("version")
    if not isinstance(v, int):
        raise ModelFileError(path, f"header version {v!r} is not an integer")
    if v > VERSION:
        raise ModelFileError(path, f"file version {v} is newer than this tianrt reads (up to {VERSION}); "
                                   "upgrade tianrt")
    if v < 1:
        raise ModelFileError(path, f"file version {v} is not a valid version")
    if not isinstance(header.get("graph"), dict) or not isinstance(header.get("digest"), str):
        raise ModelFileError(path, "header lacks the graph description or its digest")
    return header


def _rebuild(path, header: dict, arrays: dict[str, np.ndarray]) -> Graph:
    desc = header["graph"]
    info = desc.get("array_info", {})
    for k, a in arrays.items():
        want = info[k]
        if a.dtype.str != want.get("dtype") or list(a.shape) != want.get("shape"):
            raise ModelFileError(path, f"array {k} is {a.dtype.str} {list(a.shape)}, header says "
                                       f"{want.get('dtype')} {want.get('shape')}")
        if _array_digest(a) != want.get("sha256"):
            raise ModelFileError(path, f"array {k} does not match its SHA-256 digest (file tampered or corrupt)")
    if _digest(desc, arrays) != header["digest"]:
        raise ModelFileError(path, "graph description does not match its digest (file tampered or corrupt)")
    try:
        g = Graph(dt=float(desc["dt"]), name=str(desc["name"]))
        g.metadata = dict(desc.get("metadata") or {})
        delays = []
        for nd in desc["nodes"]:
            name, op = nd["name"], nd["op"]
            cls = NODE_TYPES.get(op)
            if cls is None:
                raise ModelFileError(path, f"node `{name}` has unknown op {op!r} (written by a newer tianrt?)")
            fields = {f.name for f in dataclasses.fields(cls)}
            cfg = dict(nd.get("config") or {})
            unknown = sorted(set(cfg) - fields)
            if unknown:
                raise ModelFileError(path, f"node `{name}` ({op}) has unknown settings {unknown}")
            params = {p: arrays[k] for p, k in (nd.get("arrays") or {}).items()}
            if cls is Input:
                g.input(name, tuple(cfg["shape"]), domain=cfg["domain"], rate_hz=cfg.get("rate_hz"))
            elif cls is Delay:
                g.delay(tuple(cfg["shape"]), domain=cfg["domain"], name=name)
                delays.append((name, nd.get("source")))
            else:
                try:
                    node = cls(**cfg, **params)
                except (TypeError, ValueError) as exc:
                    raise ModelFileError(path, f"node `{name}` ({op}): {exc}") from None
                g.add(node, *nd["inputs"], name=name)
        for name, src in delays:
            g.connect(name, src)
        for k, v in desc["outputs"].items():
            g.output(k, v)
        g.validate()
    except ModelFileError:
        raise
    except GraphError as exc:
        raise ModelFileError(path, f"graph does not build: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(path, f"malformed graph description ({type(exc).__name__}: {exc})") from None
    return g
