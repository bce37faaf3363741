"""Hypothesis strategies for random integer (chip) mode graphs and their inputs.

``int_graph_cases()`` draws a small ``tr.q`` graph from one of three families (a CNN on the
tensor side, an encoder -> synapse -> neuron -> decoder chain, a spiking conv + recurrent
network) with random parameters (LIF or adaptive LIF neurons, some with one value per
neuron), optionally pushed to the int32 limits so that saturation
happens, plus input frames with a leading time axis and a batch axis. Shared by the
reference-vs-oracle tests and usable for any backend that must equal the oracle.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tianrt as tr

I32_MIN, I32_MAX = -(2 ** 31), 2 ** 31 - 1
Q = tr.q


class Params:
    """Random parameters from one numpy generator; ``extreme`` pushes biases, gains and
    currents to the int32 limits."""

    def __init__(self, seed: int, extreme: bool):
        self.rng = np.random.default_rng(seed)
        self.extreme = extreme

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi, endpoint=True))

    def ints(self, shape, lo, hi):
        return self.rng.integers(lo, hi, size=shape, endpoint=True)

    def weight(self, shape):
        return self.ints(shape, -127, 127)

    def bias(self, n):
        if self.extreme:
            return self.rng.choice(np.array([I32_MIN, -(2 ** 30), 2 ** 30, I32_MAX], np.int64), size=n)
        return self.ints(n, -3000, 3000)

    def requant(self, n):
        lo, hi = sorted(self.ints(2, -128, 127).tolist())
        return dict(multiplier=self.ints(n, 0, 2 ** 15 - 1), shift=self.ints(n, 0, 24), lo=lo, hi=hi)

    def leak(self):
        return dict(leak_mult=self.int(0, 2 ** 15 - 1), leak_shift=self.int(0, 16))

    def lif(self):
        alpha = self.rng.random() < 0.4
        thr = I32_MAX if self.extreme and self.rng.random() < 0.3 else self.int(1, int(self.rng.choice([50, 4000])))
        return Q.LIF(threshold=thr, **self.leak(), reset=str(self.rng.choice(["subtract", "zero"])),
                     v_reset=self.int(-500, 500), refractory=self.int(0, 2),
                     alpha_mult=self.int(0, 2 ** 15 - 1) if alpha else None, alpha_shift=self.int(0, 16),
                     v_init=self.int(-100, 100))

    def neuron(self, shape):
        """A q.LIF (two times in three) or a q.ALIF for neurons of ``shape``, with one value per
        neuron (or per channel) for its per-neuron parameters 40 % of the time."""
        per = self.rng.random() < 0.4
        pshape = tuple(shape) if self.rng.random() < 0.7 or len(shape) < 2 else (shape[0],) + (1,) * (len(shape) - 1)

        def value(lo, hi):
            return self.ints(pshape, lo, hi) if per else self.int(lo, hi)
        if self.rng.random() < 2 / 3:
            if not per:
                return self.lif()
            return Q.LIF(threshold=value(1, int(self.rng.choice([50, 4000]))), leak_mult=value(0, 2 ** 15 - 1),
                         leak_shift=value(0, 16), reset=str(self.rng.choice(["subtract", "zero"])),
                         v_reset=self.int(-500, 500), refractory=self.int(0, 2),
                         alpha_mult=self.int(0, 2 ** 15 - 1) if self.rng.random() < 0.4 else None,
                         alpha_shift=self.int(0, 16), v_init=self.int(-100, 100))
        thr = I32_MAX if self.extreme and self.rng.random() < 0.3 else None
        return Q.ALIF(threshold=thr or value(1, int(self.rng.choice([50, 4000]))), leak_mult=value(0, 2 ** 15 - 1),
                      leak_shift=value(0, 16), adapt_mult=value(0, 2 ** 15 - 1), adapt_shift=value(0, 20),
                      rho_mult=value(0, 2 ** 15 - 1), rho_shift=value(0, 16),
                      adapt_inc=I32_MAX if self.extreme and self.rng.random() < 0.3 else self.int(0, 5000),
                      reset=str(self.rng.choice(["subtract", "zero"])), v_reset=self.int(-500, 500),
                      v_init=self.int(-100, 100))

    def quant_scale(self):
        # powers of two make exact halves reachable from float32 inputs
        return float(self.rng.choice([1 / 16, 1 / 64, 0.03, 1.0]))

    def frames(self, shape, scale, T, B):
        x = self.rng.normal(0, 60, size=(T, B) + shape) * scale
        halves = self.ints((T, B) + shape, -260, 260) * (scale / 2)
        return np.where(self.rng.random(x.shape) < 0.3, halves, x).astype(np.float32)


def _ann(p: Params):
    C, H, W = p.int(1, 2), p.int(3, 6), p.int(3, 6)
    g = tr.Graph(name="q_ann")
    qs = p.quant_scale()
    h = g.add(Q.Quantize(qs), g.input("x", (C, H, W)))
    O, k = p.int(1, 3), p.int(1, min(3, H, W))
    h = g.add(Q.Conv2d(C, O, k, stride=p.int(1, 2), padding=p.int(0, 1), weight=p.weight((O, C, k, k)),
                       bias=p.bias(O), **p.requant(O)), h)
    _, h2, w2 = g.entries[h.name].shape
    pool = p.rng.choice(["none", "max", "avg"])
    if pool != "none" and min(h2, w2) >= 2:
        kk = p.int(1, 2)
        args = dict(kernel_size=kk, stride=p.int(1, 2), padding=p.int(0, kk // 2))
        h = g.add(Q.MaxPool2d(**args) if pool == "max" else
                  Q.AvgPool2d(**args, multiplier=p.int(0, 2 ** 15 - 1), shift=p.int(0, 16)), h)
    act = p.rng.choice(["none", "clamp", "lookup"])
    if act == "clamp":
        lo, hi = sorted(p.ints(2, -128, 127).tolist())
        h = g.add(Q.Clamp(lo, hi), h)
    elif act == "lookup":
        h = g.add(Q.Lookup(table=p.ints(256, -128, 127)), h)
    g.output("h", h)
    if p.rng.random() < 0.5:
        f = g.add(Q.GlobalAvgPool2d(multiplier=p.int(0, 2 ** 15 - 1), shift=p.int(0, 16)), h)
    else:
        f = g.add(tr.ann.Flatten(), h)
    n = g.entries[f.name].shape[0]
    m = p.int(1, 5)
    d1 = g.add(Q.Dense(n, m, weight=p.weight((m, n)), bias=p.bias(m), **p.requant(m)), f)
    if p.rng.random() < 0.5:
        d2 = g.add(Q.Dense(n, m, weight=p.weight((m, n)), bias=p.bias(m), **p.requant(m)), f)
        lo, hi = sorted(p.ints(2, -128, 127).tolist())
        d1 = g.add(Q.Add(multipliers=p.ints(2, 0, 2 ** 15 - 1), shift=p.int(0, 20), lo=lo, hi=hi), d1, d2)
        g.output("cat", g.add(tr.ann.Concat(), d1, d2))
    g.output("y", g.add(Q.Dequantize(0.05), d1))
    g.output("yq", d1)
    return g, (C, H, W), qs, "tensor"


def _snn(p: Params):
    n_in, n_out = p.int(1, 10), p.int(1, 8)
    g = tr.Graph(name="q_snn")
    qs = p.quant_scale()
    h = g.add(Q.Quantize(qs), g.input("x", (n_in,)))
    enc = p.rng.choice(["rate", "latency", "direct"])
    if enc == "rate":
        s = g.add(Q.RateEncoder(full_scale=p.int(1, 127)), h)
    elif enc == "latency":
        s = g.add(Q.LatencyEncoder(full_scale=p.int(1, 127), window=p.int(1, 6)), h)
    else:
        gain = p.int(-(2 ** 31), 2 ** 31 - 1) if p.extreme else p.int(-50, 50)
        s = g.add(Q.DirectCurrent(gain), h)
    cur = g.add(Q.SynDense(n_in, n_out, weight=p.weight((n_out, n_in)), bias=p.bias(n_out)), s)
    spk = g.add(p.neuron((n_out,)), cur)
    g.output("spikes", spk)
    if p.rng.random() < 0.5:
        g.output("v", g.probe(spk, "v"))
    leak = dict(leak_mult=p.ints((n_out,), 0, 2 ** 15 - 1), leak_shift=p.ints((n_out,), 0, 16)) \
        if p.rng.random() < 0.3 else p.leak()
    g.output("li", g.add(Q.LI(**leak, v_init=p.int(-100, 100)), cur))
    g.output("mem", g.add(Q.MembraneReadout(window=p.int(1, 5), **p.leak()), cur))
    g.output("first", g.add(tr.bridge.FirstSpike(window=p.int(1, 5)), spk))
    cnt = g.add(tr.bridge.SpikeCount(window=p.int(1, 5), mode=str(p.rng.choice(["tumbling", "sliding"]))), spk)
    m = p.int(1, 4)
    g.output("y", g.add(Q.Dense(n_out, m, weight=p.weight((m, n_out)), bias=p.bias(m), **p.requant(m)), cnt))
    return g, (n_in,), qs, "tensor"


def _rec(p: Params):
    C, H, W = p.int(1, 2), p.int(2, 5), p.int(2, 5)
    g = tr.Graph(name="q_rec")
    x = g.input("x", (C, H, W), domain="spike")
    O, k = p.int(1, 2), p.int(1, min(3, H, W))
    c = g.add(Q.SynConv2d(C, O, k, stride=p.int(1, 2), padding=p.int(0, k // 2), weight=p.weight((O, C, k, k)),
                          bias=p.bias(O)), x)
    s1 = g.add(tr.ann.Flatten(), g.add(p.neuron(g.entries[c.name].shape), c))
    n, m = g.entries[s1.name].shape[0], p.int(1, 6)
    d = g.delay((m,), "spike")
    ff = {}
    if p.rng.random() < 0.5:  # the feed-forward product rescaled (extreme: shift 0, saturating)
        ff = dict(ff_mult=p.ints(m, 0, 2 ** 15 - 1), ff_shift=p.ints(m, 0, 0 if p.extreme else 20))
    r = g.add(Q.SynRecurrent(n, m, weight=p.weight((m, n)), weight_rec=p.weight((m, m)), bias=p.bias(m), **ff),
              s1, d)
    s2 = g.add(p.neuron((m,)), r)
    g.connect(d, s2)
    g.output("spikes", s2)
    g.output("mem", g.add(Q.MembraneReadout(window=p.int(1, 4), **p.leak()), r))
    g.output("count", g.add(tr.bridge.SpikeCount(window=p.int(1, 4)), s2))
    return g, (C, H, W), None, "spike"


FAMILIES = {"ann": _ann, "snn": _snn, "rec": _rec}


@st.composite
def int_graph_cases(draw, families=tuple(FAMILIES)):
    """(graph, inputs) with inputs = {"x": array (T, B, ...)} for ``Runtime.run``."""
    family = draw(st.sampled_from(families))
    p = Params(draw(st.integers(0, 2 ** 31)), draw(st.booleans()))
    T, B = draw(st.integers(1, 12)), draw(st.integers(1, 3))
    g, shape, qs, domain = FAMILIES[family](p)
    if domain == "spike":
        x = (p.rng.random((T, B) + shape) < 0.4).astype(np.float32)
    else:
        x = p.frames(shape, qs, T, B)
    return g, {"x": x}
