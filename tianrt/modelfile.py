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
import json
import os
import re
from pathlib import Path

import numpy as np

from . import ann, bridge, npzio, q, snn  # noqa: F401  (their node types register themselves)
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
    if path.is_dir():
        raise ModelFileError(path, "cannot save: it is a directory; give a file name such as "
                                   f"{path / ((g.name or 'model') + '.tnr')}")
    if not path.parent.is_dir():
        raise ModelFileError(path, f"cannot save: directory {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    created = False
    try:
        with open(tmp, "wb") as f:  # file object: numpy must not append '.npz' to the name
            created = True
            np.savez(f, **{HEADER_KEY: raw}, **arrays)
        os.replace(tmp, path)  # never leave a half-written model behind
    except OSError as exc:
        if created:
            tmp.unlink(missing_ok=True)
        raise ModelFileError(path, f"cannot save ({exc.strerror or exc})") from None
    return path


def _writer() -> str:
    from . import __version__
    return f"tianrt {__version__}"


# Limits (docs/limits.md); module constants so that tests and embedders can lower them.
MAX_FILE_BYTES = 4 << 30       # a model file on disk
MAX_ARRAY_BYTES = 4 << 30      # all arrays together, as the JSON header declares them
MAX_HEADER_BYTES = 64 << 20    # the JSON header
MAX_JSON_DEPTH = 64            # nesting of objects/lists in the JSON header


def load(path) -> Graph:
    """Read a model file written by ``save``; every problem names the file and what is wrong.

    Only regular files up to ``MAX_FILE_BYTES`` are read. The JSON header is read and checked
    first; each array member's .npy header must then declare exactly the dtype and shape the
    JSON header lists, within ``MAX_ARRAY_BYTES`` in all, before any of its data is read."""
    path = Path(path)

    def fail(problem: str) -> ModelFileError:
        return ModelFileError(path, problem)

    with npzio.open_regular(path, MAX_FILE_BYTES, fail) as f:
        size = os.fstat(f.fileno()).st_size
        z = npzio.NpzArchive(f, size, fail, kind="a tianrt model file", writer="tianrt.save")
        if HEADER_KEY not in z.members:
            raise fail(f"no {HEADER_KEY} entry: not a tianrt model file")
        header = _parse_header(path, z.read(HEADER_KEY, MAX_HEADER_BYTES))
        info = _array_info(path, header["graph"])
        missing = [k for k in info if k not in z.members]
        if missing:
            raise fail(f"arrays {missing[:5]} listed in the header are missing")
        arrays = {k: z.read(k, nb, dt, sh) for k, (dt, sh, nb) in info.items()}
    return _rebuild(path, header, arrays)


def _array_info(path, desc: dict) -> dict[str, tuple[np.dtype, tuple, int]]:
    """The header's array_info checked: key -> (dtype, shape, bytes); total within the cap."""
    def fail(problem: str) -> ModelFileError:
        return ModelFileError(path, problem)

    info = desc.get("array_info", {})
    if not isinstance(info, dict):
        raise fail("header field graph.array_info is not an object")
    out, total = {}, 0
    for k, v in info.items():
        where = f"header graph.array_info.{k}"
        if not isinstance(v, dict) or not isinstance(v.get("sha256"), str):
            raise fail(f"{where} must be an object with dtype, shape and sha256")
        dt = npzio.check_dtype(v.get("dtype"), fail, where)
        if dt.str != v.get("dtype"):
            raise fail(f"{where}: dtype {v.get('dtype')!r} is not in numpy's canonical form {dt.str!r}")
        sh = npzio.check_shape(v.get("shape"), fail, where)
        nb = npzio.nbytes(dt, sh)
        total += nb
        if total > MAX_ARRAY_BYTES:
            raise fail(f"header declares more than {npzio.human(MAX_ARRAY_BYTES)} of arrays "
                       f"(reached at {k}: {dt.str} {list(sh)}); this tianrt reads at most that")
        out[k] = (dt, sh, nb)
    return out


_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)


def _json_depth(text: str) -> int:
    """Deepest nesting of [ and { in JSON text, outside strings (no recursion)."""
    # every quote starts a match that ends at its closing quote or at the end of the text, so
    # the scan is linear even for unterminated strings full of escaped quotes
    stripped = _STRING.sub("", text)
    steps = np.frombuffer(stripped.encode("utf-8", "replace"), np.uint8)
    delta = np.isin(steps, (0x5B, 0x7B)).astype(np.int64) - np.isin(steps, (0x5D, 0x7D))
    return int(np.cumsum(delta).max(initial=0))


def _parse_header(path, raw) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(path, "header entry is not a byte string")
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(path, f"header is not valid JSON (not UTF-8: {exc})") from None
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(path, f"header is nested {depth} levels deep; at most {MAX_JSON_DEPTH} are read")
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(path, f"header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(path, f"header format is {header.get('format') if isinstance(header, dict) else None!r}, "
                                   f"expected {FORMAT!r}")
    v = header.get("version")
    if not isinstance(v, int) or isinstance(v, bool):
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
                # files written before `hold` existed held every input
                g.input(name, tuple(cfg["shape"]), domain=cfg["domain"], rate_hz=cfg.get("rate_hz"),
                        hold=cfg.get("hold", True))
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
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as exc:
        raise ModelFileError(path, f"malformed graph description ({type(exc).__name__}: {exc})") from None
    return g
