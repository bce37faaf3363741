"""How each NIR node becomes tianrt nodes (``NodeBuilder``, the node half of the NIR
importer in nir_import.py): affine and linear maps, sums, convolutions, pooling, neurons
discretised as docs/interop.md §2 says, and tianrt's own extension nodes."""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from .. import ann, snn
from ..graph import Delay, Input
from ..node import NODE_TYPES
from ._common import InteropError
from .nir_format import EXT, F32, GAIN_TOL, above, as_str, meta_of


def uniform(arr, what, where):
    a = np.asarray(arr, np.float64)
    flat = a.ravel()
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return a  # per-neuron: passed on; the node says whether it takes arrays


class NodeBuilder:
    """The node builders of the importer (a mix-in of nir_import._Importer, whose graph,
    names and inputs they use)."""

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
            thr = uniform(above(nd["threshold"]), "threshold", k)
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
            kw["beta"] = self._pick(cfg.get("beta"), uniform(F32(beta), "beta", k))
            if op == "snn.LI":
                kw["v_init"] = float(cfg.get("v_init", 0.0))
        else:
            thr = above(nd["v_threshold"])
            vr = np.asarray(nd.get("v_reset", 0.0), np.float64)
            cls = snn.IF if (op == "snn.IF" or (op is None and t == "IF")) else snn.LIF
            if cls is snn.LIF:
                kw["beta"] = self._pick(cfg.get("beta"), uniform(F32(beta), "beta", k))
            kw["threshold"] = self._pick(cfg.get("threshold"), uniform(thr, "threshold", k))
            if alpha is not None:
                kw["alpha"] = self._pick(cfg.get("alpha"), uniform(F32(alpha), "alpha", k))
            if op in ("snn.LIF", "snn.IF"):
                for f in ("reset", "refractory", "v_init"):
                    kw[f] = cfg.get(f, kw.get(f))
                kw["v_reset"] = float(cfg.get("v_reset", 0.0))
                if kw["reset"] == "zero":
                    kw["v_reset"] = self._pick(cfg.get("v_reset"), uniform(vr, "v_reset", k))
            else:
                kw["reset"], kw["v_reset"] = "zero", uniform(vr, "v_reset", k)
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

