"""The reference backend: plain numpy, float32, written to be read; the semantic oracle.

Each plan entry becomes a small op object with ``init(batch) -> state`` and
``__call__(state, xs, t) -> value or None``; the tick loop runs them in plan order.
Equations and tick order: docs/semantics.md.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import ann, bridge, snn
from ..errors import BackendError
from ..graph import Delay, Input, Plan
from ..runtime import Backend

F32 = np.float32


# -- ANN functions on batched arrays (B, ...) ------------------------------------------------

def dense(x, w, b):
    return (x @ w.T + b).astype(F32, copy=False)


def _windows(x, kernel, stride, padding, fill):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))  # B, C, H', W', kh, kw
    return win[:, :, ::sh, ::sw]


def conv2d(x, w, b, stride, padding):
    win = _windows(x, w.shape[2:], stride, padding, 0.0)
    y = np.einsum("bchwij,ocij->bohw", win, w, optimize=True)
    return (y + b[None, :, None, None]).astype(F32, copy=False)


def maxpool2d(x, kernel, stride, padding):
    return _windows(x, kernel, stride, padding, -np.inf).max(axis=(-2, -1)).astype(F32, copy=False)


def avgpool2d(x, kernel, stride, padding):
    return _windows(x, kernel, stride, padding, 0.0).mean(axis=(-2, -1)).astype(F32, copy=False)


# -- ops --------------------------------------------------------------------------------------

class Op:
    def __init__(self, entry, plan):
        self.entry, self.node, self.shape = entry, entry.node, entry.shape

    def init(self, batch: int) -> dict:
        return {}


class Stateless(Op):
    def __init__(self, entry, plan, fn):
        super().__init__(entry, plan)
        self.fn = fn

    def __call__(self, st, xs, t):
        return self.fn(*xs)


def _channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def stateless_fn(node):
    """The function of a node without state, or None."""
    n = node
    if isinstance(n, ann.Dense):  # also snn.Dense
        return lambda x: dense(x.reshape(x.shape[0], -1), n.weight, n.bias)
    if isinstance(n, ann.Conv2d):  # also snn.Conv2d
        return lambda x: conv2d(x, n.weight, n.bias, n.stride, n.padding)
    if isinstance(n, snn.Recurrent):
        return lambda x, r: (x @ n.weight.T + r @ n.weight_rec.T + n.bias).astype(F32)
    if isinstance(n, ann.MaxPool2d):
        return lambda x: maxpool2d(x, n.kernel_size, n.stride, n.padding)
    if isinstance(n, ann.AvgPool2d):
        return lambda x: avgpool2d(x, n.kernel_size, n.stride, n.padding)
    if isinstance(n, ann.GlobalAvgPool2d):
        return lambda x: x.mean(axis=(2, 3), dtype=F32)
    if isinstance(n, ann.ReLU):
        return lambda x: np.maximum(x, F32(0))
    if isinstance(n, ann.ClippedReLU):
        return lambda x: np.clip(x, F32(0), F32(n.max_value))
    if isinstance(n, ann.Sigmoid):
        return lambda x: (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(F32)
    if isinstance(n, ann.Tanh):
        return lambda x: np.tanh(x)
    if isinstance(n, ann.BatchNorm):
        scale, shift = n.scale_shift()
        return lambda x: (x * _channel(scale, x.ndim) + _channel(shift, x.ndim)).astype(F32)
    if isinstance(n, ann.Flatten):
        return lambda x: x.reshape(x.shape[0], -1)
    if isinstance(n, ann.Add):
        return lambda *xs: np.sum(xs, axis=0, dtype=F32)
    if isinstance(n, ann.Concat):
        return lambda *xs: np.concatenate(xs, axis=(n.axis + 1 if n.axis >= 0 else n.axis))
    if isinstance(n, bridge.DirectCurrent):
        return lambda x: (x * F32(n.gain)).astype(F32)
    return None


class LIFOp(Op):
    """charge, fire, reset (DESIGN §3), with optional synaptic filter and refractory period."""

    def init(self, batch):
        n = self.node
        st = {"v": np.full((batch,) + self.shape, n.v_init, F32)}
        if n.alpha is not None:
            st["i_syn"] = np.zeros((batch,) + self.shape, F32)
        if n.refractory:
            st["refrac"] = np.zeros((batch,) + self.shape, np.int32)
        return st

    def __call__(self, st, xs, t):
        n, (i,) = self.node, xs
        if n.alpha is not None:
            st["i_syn"] = (F32(n.alpha) * st["i_syn"] + i).astype(F32)
            i = st["i_syn"]
        v = (F32(n.beta) * st["v"] + i).astype(F32)
        if n.refractory:
            active = st["refrac"] == 0
            v = np.where(active, v, st["v"])
            st["refrac"] = np.where(active, 0, st["refrac"] - 1).astype(np.int32)
        s = v >= F32(n.threshold)
        if n.refractory:
            s &= active
            st["refrac"] = np.where(s, n.refractory, st["refrac"]).astype(np.int32)
        if n.reset == "subtract":
            v = v - F32(n.threshold) * s
        else:
            v = np.where(s, F32(n.v_reset), v)
        st["v"] = v.astype(F32)
        return s.astype(F32)


class LIOp(Op):
    def init(self, batch):
        return {"v": np.full((batch,) + self.shape, self.node.v_init, F32)}

    def __call__(self, st, xs, t):
        st["v"] = (F32(self.node.beta) * st["v"] + xs[0]).astype(F32)
        return st["v"].copy()


def _unit(x, scale):
    return np.clip(x.astype(np.float64) / scale, 0.0, 1.0)


class RateOp(Op):
    def init(self, batch):
        return {"acc": np.full((batch,) + self.shape, 0.5, np.float64)}

    def __call__(self, st, xs, t):
        st["acc"] += _unit(xs[0], self.node.scale)
        s = st["acc"] >= 1.0
        st["acc"] -= s
        return s.astype(F32)


class PoissonOp(Op):
    """Seeded Bernoulli draws; the generator's PCG64 state is part of the checkpoint."""

    def init(self, batch):
        return {"rng": _pack_rng(np.random.default_rng(self.node.seed))}

    def __call__(self, st, xs, t):
        rng = _unpack_rng(st["rng"])
        s = (rng.random(xs[0].shape) < _unit(xs[0], self.node.scale)).astype(F32)
        st["rng"] = _pack_rng(rng)
        return s


def _pack_rng(rng) -> np.ndarray:
    s = rng.bit_generator.state
    words = [s["state"]["state"], s["state"]["inc"]]
    return np.array([w >> sh & 0xFFFFFFFFFFFFFFFF for w in words for sh in (64, 0)]
                    + [s["has_uint32"], s["uinteger"]], dtype=np.uint64)


def _unpack_rng(a) -> np.random.Generator:
    a = [int(x) for x in a]
    bg = np.random.PCG64()
    bg.state = {"bit_generator": "PCG64", "state": {"state": a[0] << 64 | a[1], "inc": a[2] << 64 | a[3]},
                "has_uint32": a[4], "uinteger": a[5]}
    return np.random.Generator(bg)


class LatencyOp(Op):
    def __call__(self, st, xs, t):
        w = self.node.window
        x = _unit(xs[0], self.node.scale)
        target = np.floor((1.0 - x) * (w - 1) + 0.5)
        return ((x > 0) & (target == t % w)).astype(F32)


class SpikeCountOp(Op):
    def init(self, batch):
        w, shape = self.node.window, (batch,) + self.shape
        if self.node.mode == "sliding":
            return {"ring": np.zeros((w,) + shape, F32), "count": np.zeros(shape, F32)}
        return {"count": np.zeros(shape, F32)}

    def __call__(self, st, xs, t):
        n, s = self.node, xs[0]
        div = F32(n.window) if n.rate else F32(1)
        if n.mode == "sliding":
            slot = t % n.window
            st["count"] += s - st["ring"][slot]
            st["ring"][slot] = s
            return st["count"] / div if t >= n.window - 1 else None
        st["count"] += s
        if (t + 1) % n.window:
            return None
        out = st["count"] / div
        st["count"] = np.zeros_like(st["count"])
        return out


class MembraneOp(Op):
    def init(self, batch):
        return {"v": np.zeros((batch,) + self.shape, F32)}

    def __call__(self, st, xs, t):
        n = self.node
        st["v"] = (F32(n.beta) * st["v"] + xs[0]).astype(F32)
        if (t + 1) % n.window:
            return None
        out = st["v"] / F32(n.window) if n.mean else st["v"].copy()
        st["v"] = np.zeros_like(st["v"])
        return out


class FirstSpikeOp(Op):
    def init(self, batch):
        return {"first": np.full((batch,) + self.shape, self.node.window, F32)}

    def __call__(self, st, xs, t):
        w = self.node.window
        phase = t % w
        st["first"] = np.where((st["first"] == w) & (xs[0] > 0), F32(phase), st["first"])
        if phase != w - 1:
            return None
        out = st["first"].copy()
        st["first"][...] = w
        return out


_STATEFUL = [(snn.LIF, LIFOp), (snn.LI, LIOp), (bridge.RateEncoder, RateOp),
             (bridge.PoissonEncoder, PoissonOp), (bridge.LatencyEncoder, LatencyOp),
             (bridge.SpikeCount, SpikeCountOp), (bridge.MembraneReadout, MembraneOp),
             (bridge.FirstSpike, FirstSpikeOp)]


def make_op(entry, plan) -> Op:
    if entry.node.op.startswith("q."):  # integer (chip) mode: docs/integer.md
        from .reference_int import make_int_op
        return make_int_op(entry, plan)
    for cls, op in _STATEFUL:
        if isinstance(entry.node, cls):
            return op(entry, plan)
    fn = stateless_fn(entry.node)
    if fn is None:
        raise BackendError(f"reference backend cannot run `{entry.name}` ({entry.node.op})")
    if entry.numeric == "int":  # e.g. Concat of integer edges: keep them int32
        return Stateless(entry, plan, lambda *xs: fn(*xs).astype(np.int32))
    return Stateless(entry, plan, fn)


def _dtype(e):
    """int32 buffers for integer-mode edges, float32 for the rest (spikes included)."""
    return np.int32 if e.numeric == "int" else F32


class ReferenceBackend(Backend):
    """Readable numpy implementation of the tick semantics."""

    name = "reference"

    def __init__(self, plan: Plan, **options):
        super().__init__(plan, **options)
        self.ops = {e.name: make_op(e, plan) for e in plan.entries
                    if not isinstance(e.node, (Input, Delay))}

    def _init_state(self, batch):
        self.st = {name: op.init(batch) for name, op in self.ops.items()}
        self.values = {e.name: np.zeros((batch,) + e.shape, _dtype(e)) for e in self.plan.entries}
        self.fresh = {e.name: False for e in self.plan.entries}
        self.delayed = {e.name: (np.zeros((batch,) + e.shape, _dtype(e)), False)
                        for e in self.plan.entries if isinstance(e.node, Delay)}

    def _tick(self, inputs):
        values, fresh, t = self.values, self.fresh, self.t
        for e in self.plan.entries:
            name = e.name
            if isinstance(e.node, Input):
                if name in inputs:
                    values[name] = inputs[name]
                # per-tick inputs present their (held) value every tick
                fresh[name] = name in inputs or e.per_tick
                continue
            if isinstance(e.node, Delay):
                values[name], fresh[name] = self.delayed[name]
                continue
            if not e.per_tick and not any(fresh[i] for i in e.inputs):
                fresh[name] = False
                continue
            out = self.ops[name](self.st[name], [values[i] for i in e.inputs], t)
            fresh[name] = out is not None
            if out is not None:
                values[name] = out
        for e in self.plan.entries:
            if isinstance(e.node, Delay):
                self.delayed[e.name] = (values[e.source].copy(), fresh[e.source])
        return {k: values[src] for k, src in self.plan.outputs.items() if fresh[src]}

    def _get_state(self):
        out = {}
        for name, st in self.st.items():
            for k, v in st.items():
                out[f"{name}/{k}"] = v
        for name, v in self.values.items():
            out[f"{name}/__value__"] = v
        for name, (v, f) in self.delayed.items():
            out[f"{name}/__delayed__"] = v
            out[f"{name}/__delayed_fresh__"] = np.asarray(f)
        return out

    def _set_state(self, state):
        for name, st in self.st.items():
            for k in st:
                st[k] = state[f"{name}/{k}"]
        for name in self.values:
            self.values[name] = state[f"{name}/__value__"]
        for name in self.delayed:
            self.delayed[name] = (state[f"{name}/__delayed__"], bool(state[f"{name}/__delayed_fresh__"]))

    def reset(self):
        super().reset()
        self.st = {}
