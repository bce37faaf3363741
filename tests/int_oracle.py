"""A slow pure-Python oracle of integer (chip) mode, written straight from docs/integer.md.

Plain Python ints on nested lists, one sample at a time, no numpy arithmetic (numpy only
hands over parameters via ``.tolist()``). Rounding of floats goes through exact
``fractions.Fraction`` values, so the oracle shares no rounding trick with the code it
checks. The reference backend's integer mode, ``tianrt.kernels.intmath`` and the numba
backend and firmware_sim must equal it bit for bit.

``OracleRuntime(graph)`` runs a whole integer graph tick by tick with the tick semantics of
the reference backend (plan order; ANN nodes on a fresh input; SNN nodes and bridges every
tick; delay edges give the previous tick's value).
"""
from __future__ import annotations

import math
import struct
from fractions import Fraction

import tianrt as tr
from tianrt.graph import Delay, Input

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


# -- primitives -----------------------------------------------------------------------------

def sat32(x: int) -> int:
    return min(max(x, INT32_MIN), INT32_MAX)


def round_shift(x: int, n: int) -> int:
    if n == 0:
        return x
    mag = (abs(x) + 2 ** (n - 1)) // 2 ** n
    return -mag if x < 0 else mag


def clamp(x: int, lo: int, hi: int) -> int:
    return min(max(x, lo), hi)


def requant(acc: int, m: int, n: int, lo: int, hi: int) -> int:
    return clamp(round_shift(acc * m, n), lo, hi)


def round_half_away(y: float) -> int:
    fr = Fraction(y)  # the exact value of the double
    mag = math.floor(abs(fr) + Fraction(1, 2))
    return -mag if fr < 0 else mag


def to_float32(v: float) -> float:
    """float64 -> float32 -> Python float, rounding to nearest as a C cast does."""
    return struct.unpack("f", struct.pack("f", v))[0]


# -- nested-list helpers --------------------------------------------------------------------

def emap(f, *xs):
    """Apply f elementwise over nested lists of one shape."""
    if isinstance(xs[0], list):
        return [emap(f, *parts) for parts in zip(*xs)]
    return f(*xs)


def flatten(x) -> list:
    if isinstance(x, list):
        return [v for part in x for v in flatten(part)]
    return [x]


def zeros_like(x):
    return emap(lambda v: 0, x)


def full(shape, value):
    if not shape:
        return value
    return [full(shape[1:], value) for _ in range(shape[0])]


def concat(xs, axis):
    if axis == 0:
        return [v for x in xs for v in x]
    return [concat(list(parts), axis - 1) for parts in zip(*xs)]


def as_int(v) -> int:
    iv = int(v)
    assert iv == v, f"integer edge holds a non-integer {v!r}"
    return iv


# -- ANN nodes -------------------------------------------------------------------------------

def quantize(x: float, scale: float) -> int:
    y = float(x) / scale  # float64 division, as the contract says
    if math.isnan(y):
        return 0
    if y >= 128.0:
        return 127
    if y <= -129.0:
        return -128
    return clamp(round_half_away(y), -128, 127)


def dequantize(v: int, scale: float) -> float:
    return to_float32(float(v) * scale)


def dense_acc(x: list, w: list, bias: list) -> list:
    return [sat32(sum(w[o][i] * x[i] for i in range(len(x))) + bias[o]) for o in range(len(w))]


def padded(x, c, iy, ix, fill):
    if 0 <= iy < len(x[c]) and 0 <= ix < len(x[c][0]):
        return x[c][iy][ix]
    return fill


def out_size(h, w, kernel, stride, padding):
    return ((h + 2 * padding[0] - kernel[0]) // stride[0] + 1,
            (w + 2 * padding[1] - kernel[1]) // stride[1] + 1)


def conv_acc(x, w, bias, stride, padding):
    kh, kw = len(w[0][0]), len(w[0][0][0])
    ho, wo = out_size(len(x[0]), len(x[0][0]), (kh, kw), stride, padding)
    out = []
    for o in range(len(w)):
        plane = []
        for oy in range(ho):
            row = []
            for ox in range(wo):
                s = bias[o]
                for c in range(len(x)):
                    for ky in range(kh):
                        for kx in range(kw):
                            s += w[o][c][ky][kx] * padded(x, c, oy * stride[0] - padding[0] + ky,
                                                          ox * stride[1] - padding[1] + kx, 0)
                row.append(sat32(s))
            plane.append(row)
        out.append(plane)
    return out


def pool(x, kernel, stride, padding, fill, reduce):
    ho, wo = out_size(len(x[0]), len(x[0][0]), kernel, stride, padding)
    return [[[reduce([padded(x, c, oy * stride[0] - padding[0] + ky, ox * stride[1] - padding[1] + kx, fill)
                      for ky in range(kernel[0]) for kx in range(kernel[1])])
              for ox in range(wo)] for oy in range(ho)] for c in range(len(x))]


def ann_node(n, xs):
    """Output of an integer ANN / stateless node on one sample (nested lists)."""
    if isinstance(n, tr.q.Quantize):
        return emap(lambda v: quantize(v, n.scale), xs[0])
    if isinstance(n, tr.q.Dequantize):
        return emap(lambda v: dequantize(as_int(v), n.scale), xs[0])
    if isinstance(n, tr.q.Dense):
        acc = dense_acc(flatten(emap(as_int, xs[0])), n.weight.tolist(), n.bias.tolist())
        m, s = n.multiplier.tolist(), n.shift.tolist()
        return [requant(a, m[o], s[o], n.lo, n.hi) for o, a in enumerate(acc)]
    if isinstance(n, tr.q.Conv2d):
        acc = conv_acc(emap(as_int, xs[0]), n.weight.tolist(), n.bias.tolist(), n.stride, n.padding)
        m, s = n.multiplier.tolist(), n.shift.tolist()
        return [emap(lambda a: requant(a, m[o], s[o], n.lo, n.hi), plane) for o, plane in enumerate(acc)]
    if isinstance(n, tr.q.MaxPool2d):
        return pool(emap(as_int, xs[0]), n.kernel_size, n.stride, n.padding, -128, max)
    if isinstance(n, tr.q.AvgPool2d):
        return pool(emap(as_int, xs[0]), n.kernel_size, n.stride, n.padding, 0,
                    lambda win: requant(sat32(sum(win)), n.multiplier, n.shift, -128, 127))
    if isinstance(n, tr.q.GlobalAvgPool2d):
        return [requant(sat32(sum(flatten(plane))), n.multiplier, n.shift, -128, 127)
                for plane in emap(as_int, xs[0])]
    if isinstance(n, tr.q.Clamp):
        return emap(lambda v: clamp(as_int(v), n.lo, n.hi), xs[0])
    if isinstance(n, tr.q.Lookup):
        table = n.table.tolist()
        return emap(lambda v: table[clamp(as_int(v), -128, 127) + 128], xs[0])
    if isinstance(n, tr.q.Add):
        mults = n.multipliers.tolist()
        return emap(lambda *vs: requant(sum(as_int(v) * m for v, m in zip(vs, mults)), 1, n.shift, n.lo, n.hi),
                    *xs)
    if isinstance(n, tr.ann.Flatten):
        return flatten(xs[0])
    if isinstance(n, tr.ann.Concat):
        return concat(xs, n.axis if n.axis >= 0 else len(_shape(xs[0])) + n.axis)
    if isinstance(n, tr.q.SynDense):
        return dense_acc(emap(as_int, flatten(xs[0])), n.weight.tolist(), n.bias.tolist())
    if isinstance(n, tr.q.SynConv2d):
        return conv_acc(emap(as_int, xs[0]), n.weight.tolist(), n.bias.tolist(), n.stride, n.padding)
    if isinstance(n, tr.q.SynRecurrent):
        x, r = emap(as_int, xs[0]), emap(as_int, xs[1])
        w, wr, b = n.weight.tolist(), n.weight_rec.tolist(), n.bias.tolist()
        ff = [sum(w[o][j] * x[j] for j in range(len(x))) for o in range(len(w))]
        if n.ff_mult is not None:  # the feed-forward product moved to the membrane's unit first
            ff = [round_shift(sat32(f) * m, k) for f, m, k in zip(ff, n.ff_mult.tolist(), n.ff_shift.tolist())]
        return [sat32(ff[o] + sum(wr[o][j] * r[j] for j in range(len(r))) + b[o]) for o in range(len(w))]
    if isinstance(n, tr.q.DirectCurrent):
        return emap(lambda v: sat32(as_int(v) * n.gain), xs[0])
    raise NotImplementedError(f"oracle has no {n.op}")


def _shape(x):
    return (len(x),) + _shape(x[0]) if isinstance(x, list) else ()


# -- stateful nodes: (init(shape) -> state, step(state, xs, t) -> (state, out or None)) -----

def lif_neuron(n, v, i_syn, r, cur, thr=None, lm=None, ls=None):
    """One neuron of q.LIF for one tick: returns (v, i_syn, r, spike). ``thr``, ``lm``,
    ``ls``: this neuron's threshold / leak_mult / leak_shift (default: the node's)."""
    thr = n.threshold if thr is None else thr
    lm = n.leak_mult if lm is None else lm
    ls = n.leak_shift if ls is None else ls
    if n.alpha_mult is not None:
        i_syn = sat32(round_shift(i_syn * n.alpha_mult, n.alpha_shift) + cur)
        cur = i_syn
    if r > 0:
        return v, i_syn, r - 1, 0
    v = sat32(round_shift(v * lm, ls) + cur)
    s = 1 if v >= thr else 0
    if s:
        v = sat32(v - thr) if n.reset == "subtract" else n.v_reset
        r = n.refractory
    return v, i_syn, r, s


def alif_neuron(n, v, a, cur, thr, lm, ls, bm, bs, rm, rs):
    """One neuron of q.ALIF for one tick (docs/semantics.md): returns (v, a, spike)."""
    v = sat32(round_shift(v * lm, ls) + cur)
    theta = sat32(thr + round_shift(a * bm, bs))
    s = 1 if v >= theta else 0
    if s:
        v = sat32(v - theta) if n.reset == "subtract" else n.v_reset
    a = sat32(round_shift(a * rm, rs) + n.adapt_inc * s)
    return v, a, s


def per_neuron(n, names, shape):
    """The parameters ``names`` of node n, each as a nested list of one value per neuron
    (a scalar is repeated; numpy only hands the values over)."""
    import numpy as np
    return [np.broadcast_to(np.asarray(getattr(n, k)), tuple(shape)).tolist() for k in names]


def leaky(v, cur, mult, shift):
    return sat32(round_shift(v * mult, shift) + cur)


def rate_neuron(d, acc, q):
    acc += clamp(q, 0, d)
    s = 1 if acc >= d else 0
    return acc - d * s, s


def latency_spike(d, w, q, t):
    x = clamp(q, 0, d)
    return 1 if x > 0 and ((d - x) * (w - 1) * 2 + d) // (2 * d) == t % w else 0


class StatefulNode:
    def __init__(self, node, shape):
        self.n, self.shape = node, shape
        self.reset()

    def reset(self):
        n, shape = self.n, self.shape
        if isinstance(n, tr.q.LIF):  # v_init may be one value per neuron
            self.st = emap(lambda v: (v, 0, 0), per_neuron(n, ("v_init",), shape)[0])
        elif isinstance(n, tr.q.ALIF):
            self.st = full(shape, (n.v_init, 0))
        elif isinstance(n, tr.q.LI):
            self.st = full(shape, n.v_init)
        elif isinstance(n, tr.q.RateEncoder):
            self.st = full(shape, n.full_scale // 2)
        elif isinstance(n, (tr.q.MembraneReadout, tr.bridge.SpikeCount)):
            self.st = full(shape, 0)
            self.ring = []
        elif isinstance(n, tr.bridge.FirstSpike):
            self.st = full(shape, n.window)
        else:
            self.st = None

    def step(self, xs, t):
        n, x = self.n, xs[0]
        if isinstance(n, tr.q.LIF):
            ps = per_neuron(n, ("threshold", "leak_mult", "leak_shift"), self.shape)
            pairs = emap(lambda s, c, *p: lif_neuron(n, s[0], s[1], s[2], as_int(c), *p), self.st, x, *ps)
            self.st = _tuples(pairs, lambda p: p[:3])
            return _tuples(pairs, lambda p: p[3])
        if isinstance(n, tr.q.ALIF):
            ps = per_neuron(n, ("threshold", "leak_mult", "leak_shift", "adapt_mult", "adapt_shift",
                                "rho_mult", "rho_shift"), self.shape)
            pairs = emap(lambda s, c, *p: alif_neuron(n, s[0], s[1], as_int(c), *p), self.st, x, *ps)
            self.st = _tuples(pairs, lambda p: p[:2])
            return _tuples(pairs, lambda p: p[2])
        if isinstance(n, tr.q.LI):
            ps = per_neuron(n, ("leak_mult", "leak_shift"), self.shape)
            self.st = emap(lambda v, c, m, sh: leaky(v, as_int(c), m, sh), self.st, x, *ps)
            return self.st
        if isinstance(n, tr.q.MembraneReadout):
            self.st = emap(lambda v, c: leaky(v, as_int(c), n.leak_mult, n.leak_shift), self.st, x)
            if (t + 1) % n.window:
                return None
            out, self.st = self.st, zeros_like(self.st)
            return out
        if isinstance(n, tr.q.RateEncoder):
            pairs = emap(lambda a, q: rate_neuron(n.full_scale, a, as_int(q)), self.st, x)
            self.st = _tuples(pairs, lambda p: p[0])
            return _tuples(pairs, lambda p: p[1])
        if isinstance(n, tr.q.LatencyEncoder):
            return emap(lambda q: latency_spike(n.full_scale, n.window, as_int(q), t), x)
        if isinstance(n, tr.bridge.SpikeCount):
            assert not n.rate, "integer graphs use SpikeCount(rate=False)"
            s = emap(as_int, x)
            if n.mode == "sliding":
                self.ring.append(s)
                if len(self.ring) > n.window:
                    self.ring.pop(0)
                if t < n.window - 1:
                    return None
                return emap(lambda *vs: sum(vs), *self.ring)
            self.st = emap(lambda c, v: c + v, self.st, s)
            if (t + 1) % n.window:
                return None
            out, self.st = self.st, zeros_like(self.st)
            return out
        if isinstance(n, tr.bridge.FirstSpike):
            w = n.window
            self.st = emap(lambda f, v: t % w if f == w and v > 0 else f, self.st, x)
            if t % w != w - 1:
                return None
            out, self.st = self.st, full(self.shape, w)
            return out
        raise NotImplementedError(f"oracle has no {n.op}")


FIELDS = {"q.LIF": ("v", "i_syn", "refrac"), "q.ALIF": ("v", "a")}


def _field(self, name):
    """The state field ``name`` of a stateful node as a nested list."""
    fields = FIELDS.get(self.n.op)
    if fields is None:
        assert name == "v", f"oracle: no field {name!r} of {self.n.op}"
        return self.st
    k = fields.index(name)
    return _tuples(self.st, lambda p: p[k])


StatefulNode.field = _field


def _tuples(nested, f):
    """Map f over a nested list whose leaves are tuples."""
    if isinstance(nested, list):
        return [_tuples(p, f) for p in nested]
    return f(nested)


STATEFUL = (tr.q.LIF, tr.q.ALIF, tr.q.LI, tr.q.MembraneReadout, tr.q.RateEncoder, tr.q.LatencyEncoder,
            tr.bridge.SpikeCount, tr.bridge.FirstSpike)


class OracleRuntime:
    """One sample of an integer graph, stepped tick by tick in plain Python."""

    def __init__(self, graph):
        self.plan = graph.build()
        self.reset()

    def reset(self):
        self.t = 0
        self.nodes = {e.name: StatefulNode(e.node, e.shape) for e in self.plan.entries
                      if isinstance(e.node, STATEFUL)}
        self.values = {e.name: full(e.shape, 0) for e in self.plan.entries}
        self.fresh = {e.name: False for e in self.plan.entries}
        self.delayed = {e.name: (full(e.shape, 0), False) for e in self.plan.entries
                        if isinstance(e.node, Delay)}

    def step(self, inputs: dict) -> dict:
        """inputs: name -> nested list (or array; ``.tolist()`` is taken) of one sample."""
        values, fresh = self.values, self.fresh
        for e in self.plan.entries:
            name = e.name
            if isinstance(e.node, Input):
                if name in inputs:
                    v = inputs[name]
                    values[name] = v.tolist() if hasattr(v, "tolist") else v
                fresh[name] = name in inputs or e.per_tick
                continue
            if isinstance(e.node, Delay):
                values[name], fresh[name] = self.delayed[name]
                continue
            if not e.per_tick and not any(fresh[i] for i in e.inputs):
                fresh[name] = False
                continue
            xs = [values[i] for i in e.inputs]
            if e.node.op == "snn.Probe":  # a state field of the node it reads, after its step
                out = self.nodes[e.inputs[0]].field(e.node.field)
            else:
                out = self.nodes[name].step(xs, self.t) if name in self.nodes else ann_node(e.node, xs)
            fresh[name] = out is not None
            if out is not None:
                values[name] = out
        for e in self.plan.entries:
            if isinstance(e.node, Delay):
                self.delayed[e.name] = (values[e.source], fresh[e.source])
        self.t += 1
        return {k: values[src] for k, src in self.plan.outputs.items() if fresh[src]}

    def run(self, frames: list[dict]) -> dict:
        """Step through ``frames`` (one dict of inputs per tick); returns output name ->
        list of (tick, value)."""
        outs: dict[str, list] = {k: [] for k in self.plan.outputs}
        for frame in frames:
            t = self.t
            for k, v in self.step(frame).items():
                outs[k].append((t, v))
        return outs
