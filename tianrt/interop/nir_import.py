"""NIR import (``tr.interop.read_nir``): a NIR file or ``nir.NIRGraph`` as a tr.Graph:
subgraphs flattened, cycles cut by one-tick delays, continuous-time neurons discretised
(nir_format.py, docs/interop.md §2), tianrt's own extension nodes and metadata restored."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .. import ann, snn
from ..graph import Delay, Graph, Input
from ..node import NODE_TYPES
from ._common import InteropError, need
from .nir_format import EXT, F32, GAIN_TOL, above, as_str, meta_of


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


def _uniform(arr, what, where):
    a = np.asarray(arr, np.float64)
    flat = a.ravel()
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return a  # per-neuron: passed on; the node says whether it takes arrays


class _Importer:
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
                    hint = ("; its parameters differ between neurons and this tianrt takes one value per layer: "
                            "split the layer by parameter value")
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

    def _node(self, k, nd, t):
        g, m = self.g, meta_of(nd)
        op = m.get("op")
        cfg = dict(m.get("config") or {})
        if t == "Input":
            shape = tuple(int(x) for x in np.atleast_1d(nd["shape"]))
            dom = m.get("domain", self.input_domain)
            c = {"rate_hz": cfg.get("rate_hz")} if op == "graph.Input" else {}
            self.h[k] = g.input(k, shape, domain=dom, **c).name
            return
        if t == EXT:
            self._extension(k, nd, m)
            return
        if op == "snn.Recurrent.rec":
            return  # built with its Affine half
        ins = self._ins(k)
        if not ins:
            raise InteropError(f"{self.where}: NIR node `{k}` ({t}) has no input")
        if t in ("Affine", "Linear"):
            w = np.asarray(nd["weight"], F32)
            b = np.asarray(nd["bias"], F32) if t == "Affine" else np.zeros(w.shape[0], F32)
            if w.ndim != 2:
                raise InteropError(f"{self.where}: NIR {t} `{k}` has a weight of shape {w.shape}; tianrt "
                                   "takes (out, in) matrices")
            if op == "snn.Recurrent":
                rec = self.nodes.get(m.get("rec", ""))
                if rec is None:
                    raise InteropError(f"{self.where}: `{k}` is a tianrt recurrent synapse whose recurrent "
                                       f"half `{m.get('rec')}` is missing")
                (x,) = self._ins(k)
                (r,) = self._ins(m["rec"])
                node = snn.Recurrent(w.shape[1], w.shape[0], weight=w, weight_rec=np.asarray(rec["weight"], F32),
                                     bias=b, seed=int(cfg.get("seed", 0)))
                self.h[k] = self.h[m["rec"]] = self._add(node, x, r, k=k)
                return
            cls = ann.Dense if op == "ann.Dense" else snn.Dense
            self.h[k] = self._linear(k, ins, lambda i, bb: cls(w.shape[1], w.shape[0], weight=w, bias=bb,
                                                               seed=int(cfg.get("seed", 0))), b)
            return
        if t == "Conv2d":
            self._conv(k, nd, ins, op, cfg)
            return
        if t == "Conv1d":
            raise InteropError(f"{self.where}: NIR Conv1d `{k}`: tianrt has no 1-D convolution yet; "
                               "reshape to a Conv2d with a 1-wide kernel before export")
        if t in ("AvgPool2d", "SumPool2d"):
            self._pool(k, nd, ins, t, op)
            return
        if t == "Scale":
            s = np.asarray(nd["scale"], F32)
            self.h[k] = self._diag(k, ins, s, np.zeros_like(s), what="Scale")
            return
        if t == "Flatten":
            self._flatten_node(k, nd, ins, op)
            return
        if t in ("LIF", "IF", "CubaLIF", "LI", "I", "Threshold"):
            self._neuron(k, nd, t, ins, op, cfg)
            return
        raise InteropError(f"{self.where}: NIR node `{k}` has type {t!r}, which tianrt does not read "
                           "(readable: Input, Output, Affine, Linear, Conv2d, Scale, Flatten, AvgPool2d, SumPool2d, "
                           "Delay, LIF, IF, CubaLIF, LI, I, Threshold, subgraphs and tianrt.Extension)")

    def _linear(self, k, ins, make, b):
        """One synapse per input (NIR sums a node's inputs; the bias goes on the first)."""
        if len(ins) == 1:
            return self._add(make(0, b), ins[0], k=k)
        parts = [self._add(make(i, b if i == 0 else np.zeros_like(b)), h, k=f"{k}.{i}") for i, h in enumerate(ins)]
        return self._add(ann.Add(), *parts, k=k)

    def _sum(self, k, ins):
        """The summed input current of NIR node ``k`` (one tianrt entry)."""
        if len(ins) == 1:
            return ins[0]
        cur = []
        for i, h in enumerate(ins):
            e = self.g.entries[h]
            if e.domain == "spike":
                if len(e.shape) != 1:
                    raise InteropError(f"{self.where}: NIR node `{k}` sums spikes of `{h}` {e.shape} with other "
                                       "inputs; tianrt sums currents: put a synapse in between")
                n = e.shape[0]
                h = self._add(snn.Dense(n, n, weight=np.eye(n, dtype=F32)), h, k=f"{k}.in{i}")
            cur.append(h)
        return self._add(ann.Add(), *cur, k=f"{k}.sum")

    def _diag(self, k, ins, gain, bias, what):
        """Elementwise y = gain * x + bias as a synapse (Dense for vectors, 1x1 Conv2d for images)."""
        h = self._sum(k, ins) if len(ins) > 1 else ins[0]
        shape = self.g.entries[h].shape
        gain = np.broadcast_to(np.asarray(gain, F32), shape)
        bias = np.broadcast_to(np.asarray(bias, F32), shape)
        if len(shape) == 1:
            n = shape[0]
            return self._add(snn.Dense(n, n, weight=np.diag(gain).astype(F32), bias=bias), h, k=k)
        if len(shape) == 3:
            c = shape[0]
            gc, bc = gain.reshape(c, -1), bias.reshape(c, -1)
            if np.all(gc == gc[:, :1]) and np.all(bc == bc[:, :1]):
                w = np.zeros((c, c, 1, 1), F32)
                w[np.arange(c), np.arange(c), 0, 0] = gc[:, 0]
                return self._add(snn.Conv2d(c, c, 1, weight=w, bias=bc[:, 0]), h, k=k)
        raise InteropError(f"{self.where}: NIR node `{k}` ({what}) scales a {shape} signal elementwise; tianrt "
                           "does this for vectors, or per channel for (C, H, W)")

    def _conv(self, k, nd, ins, op, cfg):
        w = np.asarray(nd["weight"], F32)
        if w.ndim != 4:
            raise InteropError(f"{self.where}: NIR Conv2d `{k}` has a weight of shape {w.shape}, expected 4-D")
        groups = int(np.asarray(nd.get("groups", 1)))
        dil = np.atleast_1d(np.asarray(nd.get("dilation", 1))).tolist()
        if groups != 1 or any(int(x) != 1 for x in dil):
            raise InteropError(f"{self.where}: NIR Conv2d `{k}`: groups={groups}, dilation={dil}; tianrt "
                               "convolutions have groups=1 and no dilation")
        pad = nd.get("padding", 0)
        if isinstance(pad, (str, bytes)):
            pad = as_str(pad)
            if pad == "valid":
                pad = (0, 0)
            elif pad == "same" and w.shape[2] % 2 and w.shape[3] % 2:
                pad = (w.shape[2] // 2, w.shape[3] // 2)
            else:
                raise InteropError(f"{self.where}: NIR Conv2d `{k}`: padding {pad!r} with kernel {w.shape[2:]}; "
                                   "tianrt pads symmetrically ('same' needs odd kernels)")
        pad = tuple(int(x) for x in np.broadcast_to(np.atleast_1d(np.asarray(pad)), (2,)))
        stride = tuple(int(x) for x in np.broadcast_to(np.atleast_1d(np.asarray(nd.get("stride", 1))), (2,)))
        b = np.asarray(nd["bias"], F32) if "bias" in nd else np.zeros(w.shape[0], F32)
        b = np.broadcast_to(b, (w.shape[0],)).astype(F32)
        cls = ann.Conv2d if op == "ann.Conv2d" else snn.Conv2d
        self.h[k] = self._linear(k, ins, lambda i, bb: cls(w.shape[1], w.shape[0], w.shape[2:], stride, pad,
                                                           weight=w, bias=bb, seed=int(cfg.get("seed", 0))), b)

    def _pool(self, k, nd, ins, t, op):
        ks = tuple(int(x) for x in np.broadcast_to(np.atleast_1d(nd["kernel_size"]), (2,)))
        st = tuple(int(x) for x in np.broadcast_to(np.atleast_1d(nd["stride"]), (2,)))
        pd = tuple(int(x) for x in np.broadcast_to(np.atleast_1d(nd["padding"]), (2,)))
        if op == "ann.AvgPool2d":
            (h,) = ins
            self.h[k] = self._add(ann.AvgPool2d(ks, st, pd), h, k=k)
            return
        h = self._sum(k, ins)
        shape = self.g.entries[h].shape
        if len(shape) != 3:
            raise InteropError(f"{self.where}: NIR {t} `{k}` reads a {shape} signal, expected (C, H, W)")
        c = shape[0]
        w = np.zeros((c, c) + ks, F32)
        w[np.arange(c), np.arange(c)] = 1.0 if t == "SumPool2d" else 1.0 / (ks[0] * ks[1])
        self.h[k] = self._add(snn.Conv2d(c, c, ks, st, pd, weight=w), h, k=k)

    def _flatten_node(self, k, nd, ins, op):
        (h,) = ins if len(ins) == 1 else (None,)
        if h is None:
            raise InteropError(f"{self.where}: NIR Flatten `{k}` has {len(ins)} inputs, needs one")
        shape = self.g.entries[h].shape
        start, end = int(np.asarray(nd.get("start_dim", 0))), int(np.asarray(nd.get("end_dim", -1)))
        it = nd.get("input_type")
        it = None if it is None or isinstance(it, dict) else tuple(int(x) for x in np.atleast_1d(it))
        # full flatten of the per-sample shape; start_dim=1 with a leading batch axis in
        # input_type (as PyTorch-based exporters write) is the same thing
        full = (start == 0 and end in (-1, len(shape) - 1)) or (
            start == 1 and end == -1 and (it is None or len(it) == len(shape) + 1))
        if not full:
            raise InteropError(f"{self.where}: NIR Flatten `{k}` (start_dim={start}, end_dim={end}) of a {shape} "
                               "signal keeps some axes; tianrt flattens the whole sample")
        self.h[k] = self._add(ann.Flatten(), h, k=k)

    def _neuron(self, k, nd, t, ins, op, cfg):
        dt = self.dt
        if t == "Threshold":
            thr = _uniform(above(nd["threshold"]), "threshold", k)
            node = snn.LIF(beta=0.0, threshold=thr, reset="zero")
            self.h[k] = self._add(node, self._sum(k, ins), k=k)
            return
        if t in ("LIF", "LI"):
            tau = np.asarray(nd["tau"], np.float64)
            beta = 1.0 - dt / tau
            gain = dt * np.asarray(nd["r"], np.float64) / tau
            leak = dt * np.asarray(nd["v_leak"], np.float64) / tau
            alpha = None
        elif t in ("IF", "I"):
            r = np.asarray(nd["r"], np.float64)
            beta, gain, leak, alpha = np.ones_like(r), dt * r, np.zeros_like(r), None
        else:  # CubaLIF
            ts, tm = np.asarray(nd["tau_syn"], np.float64), np.asarray(nd["tau_mem"], np.float64)
            alpha, beta = 1.0 - dt / ts, 1.0 - dt / tm
            gain = (dt / ts) * np.asarray(nd.get("w_in", 1.0), np.float64) * dt * np.asarray(nd["r"], np.float64) / tm
            leak = dt * np.asarray(nd["v_leak"], np.float64) / tm
            if np.any(leak != 0):
                raise InteropError(f"{self.where}: NIR CubaLIF `{k}` has v_leak != 0; tianrt adds constant input "
                                   "before the synaptic filter, so only v_leak = 0 maps exactly")
        # tau == dt exactly (beta = 0) may come back a rounding error below 0 from float32 files
        beta = np.where(np.abs(beta) <= 1e-6, 0.0, beta)
        alpha = None if alpha is None else np.where(np.abs(alpha) <= 1e-6, 0.0, alpha)
        for what, v in (("beta", beta), ("alpha", alpha)):
            if v is not None and (np.any(v < 0) or np.any(v > 1)):
                raise InteropError(f"{self.where}: NIR {t} `{k}`: dt = {dt:g} s gives {what} = 1 - dt/tau outside "
                                   f"[0, 1] (tau down to {dt / (1 - np.min(v)):.4g} s); pass the dt the file was "
                                   "exported with (read_nir(..., dt=...))")
        gain = np.where(np.abs(gain - 1) <= GAIN_TOL, 1.0, gain)
        h = self._sum(k, ins)
        if np.any(gain != 1) or np.any(leak != 0):
            h = self._fold(k, h, gain, leak)
        kw = {}
        if t in ("LI", "I"):
            cls = snn.LI
            kw["beta"] = self._pick(cfg.get("beta"), _uniform(F32(beta), "beta", k))
            if op == "snn.LI":
                kw["v_init"] = float(cfg.get("v_init", 0.0))
        else:
            thr = above(nd["v_threshold"])
            vr = np.asarray(nd.get("v_reset", 0.0), np.float64)
            cls = snn.IF if (op == "snn.IF" or (op is None and t == "IF")) else snn.LIF
            if cls is snn.LIF:
                kw["beta"] = self._pick(cfg.get("beta"), _uniform(F32(beta), "beta", k))
            kw["threshold"] = self._pick(cfg.get("threshold"), _uniform(thr, "threshold", k))
            if alpha is not None:
                kw["alpha"] = self._pick(cfg.get("alpha"), _uniform(F32(alpha), "alpha", k))
            if op in ("snn.LIF", "snn.IF"):
                for f in ("reset", "refractory", "v_init"):
                    kw[f] = cfg.get(f, kw.get(f))
                kw["v_reset"] = float(cfg.get("v_reset", 0.0))
                if kw["reset"] == "zero":
                    kw["v_reset"] = self._pick(cfg.get("v_reset"), _uniform(vr, "v_reset", k))
            else:
                kw["reset"], kw["v_reset"] = "zero", _uniform(vr, "v_reset", k)
        kw = {a: b for a, b in kw.items() if b is not None}
        self.h[k] = self._add(cls(**kw), h, k=k)

    @staticmethod
    def _pick(exact, derived):
        """tianrt's own value when the NIR parameters still give it (to float32); else the NIR one."""
        if exact is None or isinstance(derived, np.ndarray):
            return derived
        if F32(exact) == F32(derived) or abs(float(exact) - float(derived)) <= 1e-6 * max(1.0, abs(float(exact))):
            return float(exact)
        return derived

    def _fold(self, k, h, gain, leak):
        """Apply input gain and per-tick leak: folded into a synapse that feeds only this neuron,
        or as an inserted diagonal synapse."""
        e = self.g.entries[h]
        node = e.node
        users = self.g.consumers(h)
        outs = set(self.g.outputs.values())
        if isinstance(node, (snn.Dense, snn.Conv2d)) and not users and h not in outs:
            g = np.broadcast_to(np.asarray(gain, np.float64), e.shape)
            c = np.broadcast_to(np.asarray(leak, np.float64), e.shape)
            if isinstance(node, snn.Dense) and len(e.shape) == 1:
                w = node.weight * g[:, None]
                b = node.bias * g + c
                e.node = node.copy(weight=w.astype(F32), bias=b.astype(F32))
                return h
            gc, cc = g.reshape(g.shape[0], -1), c.reshape(c.shape[0], -1)
            if isinstance(node, snn.Conv2d) and np.all(gc == gc[:, :1]) and np.all(cc == cc[:, :1]):
                w = node.weight * gc[:, 0].reshape(-1, 1, 1, 1)
                b = node.bias * gc[:, 0] + cc[:, 0]
                e.node = node.copy(weight=w.astype(F32), bias=b.astype(F32))
                return h
        return self._diag(f"{k}.gain", [h], gain, leak, what="input gain dt*r/tau")

    def _extension(self, k, nd, m):
        op = as_str(nd.get("op"))
        cls = NODE_TYPES.get(op)
        if cls is None or cls in (Input, Delay):
            raise InteropError(f"{self.where}: extension node `{k}` has op {op!r}, which this tianrt does not know "
                               "(written by a newer tianrt?)")
        try:
            cfg = json.loads(as_str(nd.get("config", "{}")))
        except json.JSONDecodeError as exc:
            raise InteropError(f"{self.where}: extension node `{k}` ({op}): config is not JSON ({exc})") from None
        arrays = {a: np.asarray(v) for a, v in (nd.get("arrays") or {}).items()}
        order = m.get("inputs")  # tianrt's input order (NIR edges have none)
        if order is not None and sorted(order) == sorted(self.preds(k)):
            ins = [self._src(p, k) for p in order]
        else:
            ins = self._ins(k)
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(cfg) - fields)
        if bad:
            raise InteropError(f"{self.where}: extension node `{k}` ({op}) has unknown settings {bad}")
        for f in dataclasses.fields(cls):
            if isinstance(cfg.get(f.name), list) and f.name not in arrays:
                cfg[f.name] = tuple(cfg[f.name])
        self.h[k] = self._add(cls(**cfg, **arrays), *ins, k=k)


__all__ = ["read_nir", "from_nir"]
