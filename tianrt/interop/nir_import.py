"""NIR import (``tr.interop.read_nir``): a NIR file or ``nir.NIRGraph`` as a tr.Graph:
subgraphs flattened, cycles cut by one-tick delays, continuous-time neurons discretised
(nir_format.py, docs/interop.md §2), tianrt's own extension nodes and metadata restored."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..graph import Graph
from ._common import InteropError, need
from .nir_format import as_str, meta_of
from .nir_nodes import NodeBuilder


def read_nir(source, *, dt: float = 1e-3, input_domain: str = "spike", name: str | None = None) -> Graph:
    """Read a NIR graph (a file path or a ``nir.NIRGraph``) into a ``tr.Graph``.

    dt: the time step the file's continuous-time parameters are discretised with (NIR files
        do not carry one; use the exporter's, e.g. the ``dt`` given to snnTorch's export).
        Files written by tianrt carry their own and ignore this argument.
    input_domain: "spike" (binary events, default) or "current" for the graph inputs.
    """
    if isinstance(source, (str, Path)):
        d, where = _read_file(Path(source)), str(source)
    else:
        nir = need("nir", "NIR import")
        if not isinstance(source, nir.NIRGraph):
            raise InteropError(f"read_nir takes a NIR file path or a nir.NIRGraph, got {type(source).__name__}")
        d, where = source.to_dict(), "NIR graph"
    return _Importer(d, where, float(dt), input_domain, name).build()


from_nir = read_nir


def _read_file(path: Path) -> dict:
    h5py = need("h5py", "NIR import")
    if not path.exists():
        raise InteropError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise InteropError(f"{path}: no `node` group: not a NIR file")
            return _h5_to_dict(f["node"])
    except OSError as exc:
        raise InteropError(f"{path}: not an HDF5 (NIR) file ({exc})") from None


def _h5_to_dict(group) -> dict:
    import h5py
    out = {}
    for k, item in group.items():
        if isinstance(item, h5py.Group):
            out[k] = _h5_to_dict(item)
        else:
            v = item[()]
            out[k] = v.decode("utf8") if isinstance(v, bytes) else v
    return out


class _Importer(NodeBuilder):
    """Flattens subgraphs, cuts recurrence with one-tick delays and builds tianrt nodes."""

    def __init__(self, d, where, dt, input_domain, name):
        if as_str(d.get("type", "NIRGraph")) != "NIRGraph":
            raise InteropError(f"{where}: the top node is a {as_str(d.get('type'))}, not a NIRGraph")
        if input_domain not in ("spike", "current"):
            raise InteropError(f"read_nir: input_domain must be 'spike' or 'current', got {input_domain!r}")
        self.where, self.input_domain = where, input_domain
        gm = meta_of(d)
        self.tianrt = bool(gm)
        self.dt = float(gm.get("dt", dt))
        self.g = Graph(dt=self.dt, name=name or gm.get("name") or Path(where).stem or "nir")
        self.g.metadata = dict(gm.get("metadata") or {})
        self.nodes: dict[str, dict] = {}
        self.edges: list[tuple[str, str]] = []
        self._kinds: dict[str, str] = {}  # subgraph Input/Output nodes, now identities
        self._flatten(d, prefix="", top=True)
        self.h: dict[str, str] = {}  # NIR node -> tianrt entry name

    # -- structure ---------------------------------------------------------------------------
    def _flatten(self, d, prefix, top):
        nodes = d.get("nodes") or {}
        for k, nd in nodes.items():
            full = prefix + k
            t = as_str(nd.get("type"))
            if t == "NIRGraph":
                self._flatten(nd, prefix=full + ".", top=False)
                self.nodes[full] = {"type": "_sub"}
            else:
                nd = dict(nd)
                if not top and t in ("Input", "Output"):
                    nd["type"] = "_identity"
                    self._kinds[full] = t
                self.nodes[full] = nd
        raw = d.get("edges")
        raw = [] if raw is None else list(raw)
        for a, b in raw:
            a, b = prefix + as_str(a), prefix + as_str(b)
            self.edges.append((self._port(a, "Output"), self._port(b, "Input")))

    def _port(self, ref, kind):
        """An edge end naming a subgraph means its (single) Output or Input node."""
        if ref in self.nodes and self.nodes[ref]["type"] == "_sub":
            inner = [k for k, v in self.nodes.items() if k.startswith(ref + ".") and k.count(".") == ref.count(".") + 1
                     and v.get("type") == "_identity" and self._was(k, kind)]
            if len(inner) != 1:
                raise InteropError(f"{self.where}: edge names subgraph `{ref}`, which has {len(inner)} "
                                   f"{kind} nodes; name one of them as `{ref}.<node>`")
            return inner[0]
        return ref

    def _was(self, k, kind):
        return self._kinds.get(k) == kind

    def _resolve(self):
        # remember which identities were Inputs/Outputs is not needed past _port; drop identities
        for k in [k for k, v in self.nodes.items() if v["type"] == "_sub"]:
            del self.nodes[k]
        for k in [k for k, v in self.nodes.items() if v["type"] == "_identity"]:
            preds = [a for a, b in self.edges if b == k]
            succs = [b for a, b in self.edges if a == k]
            self.edges = [(a, b) for a, b in self.edges if k not in (a, b)]
            self.edges += [(p, s) for p in preds for s in succs]
            del self.nodes[k]
        for a, b in self.edges:
            for x in (a, b):
                if x not in self.nodes:
                    raise InteropError(f"{self.where}: edge {a} -> {b} names `{x}`, which is not a node")

    def preds(self, k):
        return [a for a, b in self.edges if b == k]

    def _order(self):
        """Depth-first from the inputs; edges that close a cycle (not through a NIR Delay) get
        a one-tick tianrt delay, as peers read recurrent edges."""
        succ: dict[str, list[str]] = {k: [] for k in self.nodes}
        for a, b in self.edges:
            succ[a].append(b)
        state, back = {}, set()
        starts = [k for k, v in self.nodes.items() if as_str(v["type"]) in ("Input", "Delay")]
        starts += [k for k in self.nodes if not self.preds(k) and k not in starts]

        def visit(k):
            state[k] = 1
            for s in succ[k]:
                if as_str(self.nodes[s]["type"]) == "Delay":
                    continue
                if state.get(s) == 1:
                    back.add((k, s))
                elif s not in state:
                    visit(s)
            state[k] = 2

        for k in starts:
            if k not in state:
                visit(k)
        for k in self.nodes:
            if k not in state:
                visit(k)
        self.back = back
        # Kahn's order without the back edges and the edges into Delay nodes
        cut = lambda a, b: (a, b) in back or as_str(self.nodes[b]["type"]) == "Delay"  # noqa: E731
        indeg = {k: 0 for k in self.nodes}
        for a, b in self.edges:
            if not cut(a, b):
                indeg[b] += 1
        ready = [k for k in self.nodes if indeg[k] == 0]
        order = []
        while ready:
            k = ready.pop(0)
            order.append(k)
            for a, b in self.edges:
                if a == k and not cut(a, b):
                    indeg[b] -= 1
                    if indeg[b] == 0:
                        ready.append(b)
        return order

    # -- building ------------------------------------------------------------------------------
    def build(self) -> Graph:
        self._resolve()
        order = self._order()
        g = self.g
        self.delays: dict[tuple[str, str], str] = {}
        # one-tick delays: back edges and NIR Delay nodes are made first, connected last
        for a, b in sorted(self.back):
            shape, dom = self._hint(a)
            self.delays[(a, b)] = g.delay(shape, dom, name=self._name(f"{a}.delay")).name
        pending = []
        for k in order:
            nd = self.nodes[k]
            t = as_str(nd["type"])
            if t == "Delay":
                pending.append(k)
                self._delay(k, nd)
        for k in order:
            t = as_str(self.nodes[k]["type"])
            if t in ("Delay", "Output"):
                continue
            try:
                self._node(k, self.nodes[k], t)
            except InteropError:
                raise
            except Exception as exc:  # tianrt's own checks: name the NIR node
                hint = ""
                if isinstance(exc, (TypeError, ValueError)) and t in ("LIF", "IF", "CubaLIF", "LI", "I", "Threshold"):
                    hint = ("; a parameter differs between neurons where tianrt takes one value per layer "
                            "(beta and threshold may differ, alpha and v_reset may not): split the layer by "
                            "parameter value")
                raise InteropError(f"{self.where}: NIR node `{k}` ({t}): {exc}{hint}") from None
        for k in pending:
            (src,) = self._ins(k, raw=True) or [None]
            if src is None:
                raise InteropError(f"{self.where}: NIR Delay `{k}` has no input")
            chain = self.h[k + "#chain"].split("|")
            g.connect(chain[0], self._src(src, k))
            for a, b in zip(chain, chain[1:]):
                g.connect(b, a)
        for (a, b), dname in self.delays.items():
            g.connect(dname, self.h[a])
        for k in order:
            nd = self.nodes[k]
            if as_str(nd["type"]) == "Output":
                srcs = self._ins(k)
                if len(srcs) != 1:
                    raise InteropError(f"{self.where}: NIR Output `{k}` has {len(srcs)} inputs; tianrt "
                                       "outputs read one node")
                g.output(meta_of(nd).get("output", k), srcs[0])
        if not g.outputs:
            raise InteropError(f"{self.where}: the NIR graph has no Output node")
        g.validate()
        return g

    def _name(self, base):
        name, k = base.replace("/", "_"), 1
        while name in self.g.entries:
            k += 1
            name = f"{base}.{k}"
        return name

    def _src(self, a, b):
        """The tianrt entry carrying NIR node ``a``'s output into ``b``."""
        if (a, b) in self.delays:
            return self.delays[(a, b)]
        if a not in self.h:
            raise InteropError(f"{self.where}: NIR node `{b}` reads `{a}`, which has no tianrt counterpart yet")
        return self.h[a]

    def _ins(self, k, raw=False):
        ps = self.preds(k)
        if raw:
            return ps
        seen, out = set(), []
        for p in ps:
            s = self._src(p, k)
            if s not in seen:  # a recurrent synapse's two halves are one tianrt node
                seen.add(s)
                out.append(s)
        return out

    def _hint(self, k):
        """Shape and domain of NIR node ``k``'s output, for a delay made before ``k`` is built."""
        nd = self.nodes[k]
        t = as_str(nd["type"])
        m = meta_of(nd)
        if t in ("LIF", "IF", "CubaLIF", "Threshold"):
            key = {"Threshold": "threshold"}.get(t, "v_threshold")
            return tuple(np.shape(nd[key])), "spike"
        if t in ("Affine", "Linear"):
            if m.get("op") == "snn.Recurrent.rec":
                return self._hint(m["of"])
            return (int(np.shape(nd["weight"])[0]),), "current"
        if t in ("LI", "I", "Scale"):
            return tuple(np.shape(nd["r" if t != "Scale" else "scale"])), "current"
        raise InteropError(f"{self.where}: recurrent edge from `{k}` ({t}): tianrt needs to know its output "
                           "shape before building it; recurrence through LIF/IF/CubaLIF/LI/I/Affine/Linear "
                           "is supported")

    def _delay(self, k, nd):
        m = meta_of(nd)
        d = np.asarray(nd["delay"], np.float64)
        ticks = d / self.dt
        if d.size == 0 or not np.all(ticks == ticks.ravel()[0]) or abs(ticks.ravel()[0] - round(ticks.ravel()[0])) > 1e-6 \
                or round(ticks.ravel()[0]) < 1:
            raise InteropError(f"{self.where}: NIR Delay `{k}`: delays {np.unique(d)[:4].tolist()} s are not one "
                               f"whole number >= 1 of ticks dt = {self.dt:g} s; tianrt delays by whole ticks")
        n = int(round(ticks.ravel()[0]))
        srcs = self.preds(k)
        if len(srcs) != 1:
            raise InteropError(f"{self.where}: NIR Delay `{k}` has {len(srcs)} inputs, needs one")
        if m.get("op") == "graph.Delay":
            shape, dom = tuple(d.shape), m.get("domain", "spike")
        else:
            shape, dom = self._hint(srcs[0])
            shape = tuple(d.shape) if d.shape else shape
        names = []
        for i in range(n):
            names.append(self.g.delay(shape, dom, name=self._name(k if i == n - 1 else f"{k}.{i}")).name)
        # names[0] reads the source; each later one reads the previous; the last is the output
        self.h[k + "#chain"] = "|".join(names)
        self.h[k] = names[-1]

    def _add(self, node, *inputs, k):
        name = self._name(k)
        return self.g.add(node, *inputs, name=name).name


__all__ = ["read_nir", "from_nir"]
