"""Random integer (tr.q) hybrid graphs for the chip tests, built by hand with random int8
weights so that they exercise every core kind: fan-in/fan-out splits, convolutions,
pooling, converter cores (encoders and decoders), recurrence through a delay, LIF and
adaptive LIF neurons with one value per neuron for some parameters."""
from __future__ import annotations

import numpy as np

import tianrt as tr
from tianrt import q

# A small chip: layers of a few dozen neurons already need fan-in and fan-out splits.
SMALL = dict(mesh_rows=14, mesh_cols=14, axons_per_core=24, neurons_per_core=16, weight_bytes_per_core=384)


def _w(rng, shape):
    return rng.integers(-128, 128, shape)


def _bias(rng, n, big=False):
    if big:  # reach the int32 limits: the sums must saturate, never wrap
        return rng.choice([-(2 ** 31), 2 ** 31 - 1, 0, 12345], n)
    return rng.integers(-3000, 3000, n)


def _requant(rng, n):
    return dict(multiplier=rng.integers(2 ** 14, 2 ** 15, n), shift=rng.integers(10, 18, n),
                lo=int(rng.choice([-128, 0])), hi=int(rng.choice([127, 100])))


def _lif(rng, n=None):
    return q.LIF(threshold=int(rng.integers(1, 3000)), leak_mult=int(rng.integers(0, 2 ** 15)), leak_shift=15,
                 reset=str(rng.choice(["subtract", "zero"])), v_reset=int(rng.integers(-50, 50)),
                 refractory=int(rng.integers(0, 3)),
                 alpha_mult=None if rng.random() < 0.5 else int(rng.integers(0, 2 ** 15)), alpha_shift=15,
                 v_init=int(rng.integers(-100, 100)))


def _neuron(rng, shape):
    """A q.LIF or (one time in three) a q.ALIF, with per-neuron parameters half the time."""
    if rng.random() < 2 / 3:
        n = _lif(rng)
        if rng.random() < 0.5:
            n = n.copy(threshold=rng.integers(1, 3000, shape), leak_mult=rng.integers(0, 2 ** 15, shape))
        return n
    per = rng.random() < 0.5

    def value(lo, hi):
        return rng.integers(lo, hi, shape) if per else int(rng.integers(lo, hi))
    return q.ALIF(threshold=value(1, 3000), leak_mult=value(0, 2 ** 15), leak_shift=15,
                  adapt_mult=value(0, 2 ** 15), adapt_shift=value(8, 20), rho_mult=value(0, 2 ** 15), rho_shift=15,
                  adapt_inc=int(rng.integers(0, 5000)), reset=str(rng.choice(["subtract", "zero"])),
                  v_reset=int(rng.integers(-50, 50)), v_init=int(rng.integers(-100, 100)))


def mlp(rng):
    """Dense (fan-in split) -> encoder (converter) -> SynDense -> LIF -> decoder -> Dense."""
    n_in, h, m, k = (int(v) for v in rng.integers([20, 10, 10, 3], [70, 40, 40, 12]))
    g = tr.Graph(name="mlp")
    x = g.input("x", (n_in,))
    a = g.add(q.Quantize(float(rng.uniform(0.02, 0.2))), x)
    a = g.add(q.Dense(n_in, h, weight=_w(rng, (h, n_in)), bias=_bias(rng, h, rng.random() < 0.2),
                      **_requant(rng, h)), a)
    if rng.random() < 0.5:
        a = g.add(q.Clamp(int(rng.integers(-20, 10)), int(rng.integers(20, 127))), a)
    enc = rng.integers(3)
    if enc == 0:
        s = g.add(q.RateEncoder(full_scale=int(rng.integers(1, 128))), a)
    elif enc == 1:
        s = g.add(q.LatencyEncoder(full_scale=int(rng.integers(1, 128)), window=int(rng.integers(1, 6))), a)
    else:
        s = g.add(q.DirectCurrent(gain=int(rng.integers(-50, 50))), a)
    i = g.add(q.SynDense(h, m, weight=_w(rng, (m, h)), bias=_bias(rng, m)), s)
    s = g.add(_neuron(rng, (m,)), i)
    if rng.random() < 0.5:
        g.output("spikes", s)
    if rng.random() < 0.5:
        c = g.add(tr.bridge.SpikeCount(window=int(rng.integers(1, 5)),
                                       mode=str(rng.choice(["tumbling", "sliding"]))), s)
    else:
        c = g.add(tr.bridge.FirstSpike(window=int(rng.integers(1, 5))), s)
    y = g.add(q.Dense(m, k, weight=_w(rng, (k, m)), bias=_bias(rng, k), **_requant(rng, k)), c)
    if rng.random() < 0.5:
        y = g.add(q.Lookup(table=rng.integers(-128, 128, 256)), y)
    g.output("y", g.add(q.Dequantize(0.05), y))
    g.output("count", c)
    return g, {"x": (n_in,)}


def cnn(rng):
    """Conv2d (input-channel split) -> pooling -> Flatten -> Dense, and a spiking conv branch."""
    C, H, W = int(rng.integers(1, 4)), int(rng.integers(5, 9)), int(rng.integers(5, 9))
    O = int(rng.integers(2, 6))
    k = int(rng.choice([1, 2, 3]))
    pad, stride = int(rng.integers(0, 2)), int(rng.choice([1, 2]))
    g = tr.Graph(name="cnn")
    x = g.input("x", (C, H, W))
    a0 = a = g.add(q.Quantize(float(rng.uniform(0.02, 0.2))), x)
    a = g.add(q.Conv2d(C, O, k, stride=stride, padding=pad, weight=_w(rng, (O, C, k, k)), bias=_bias(rng, O),
                       **_requant(rng, O)), a)
    pool = rng.integers(3)
    if pool == 0:
        a = g.add(q.MaxPool2d(2, stride=int(rng.choice([1, 2])), padding=int(rng.integers(0, 2))), a)
    elif pool == 1:
        a = g.add(q.AvgPool2d(2, stride=int(rng.choice([1, 2])), padding=int(rng.integers(0, 2)),
                              multiplier=int(rng.integers(2 ** 14, 2 ** 15)), shift=16), a)
    else:
        a = g.add(q.GlobalAvgPool2d(multiplier=int(rng.integers(2 ** 14, 2 ** 15)), shift=int(rng.integers(14, 20))), a)
    if rng.random() < 0.5:  # a concatenation along any axis is an address map on the chip
        axis = int(rng.integers(0, len(g.entries[a.name].shape)))
        a = g.add(tr.ann.Concat(axis=axis), a, g.add(q.Clamp(-5, 90), a))
    f = g.add(tr.ann.Flatten(), a)
    n = g.entries[f.name].shape[0]
    y = g.add(q.Dense(n, 6, weight=_w(rng, (6, n)), bias=_bias(rng, 6), **_requant(rng, 6)), f)
    g.output("y", y)
    # spiking branch on the same input: rate code, spiking conv, LIF, spike count
    s = g.add(q.RateEncoder(full_scale=int(rng.integers(1, 128))), g.add(q.Clamp(0, 127), a0))
    i = g.add(q.SynConv2d(C, 3, 3, padding=1, weight=_w(rng, (3, C, 3, 3)), bias=_bias(rng, 3)), s)
    s = g.add(_neuron(rng, g.entries[i.name].shape), i)
    g.output("sc", g.add(tr.bridge.SpikeCount(window=int(rng.integers(1, 4))), s))
    return g, {"x": (C, H, W)}


def recurrent(rng):
    """DirectCurrent -> SynRecurrent (delay edge) -> LIF; LI and MembraneReadout readouts;
    two ANN branches joined by Concat and q.Add."""
    n_in, n = int(rng.integers(4, 30)), int(rng.integers(4, 30))
    g = tr.Graph(name="rec")
    x = g.input("x", (n_in,))
    a = g.add(q.Quantize(float(rng.uniform(0.02, 0.2))), x)
    b1 = g.add(q.Dense(n_in, 8, weight=_w(rng, (8, n_in)), bias=_bias(rng, 8), **_requant(rng, 8)), a)
    a2 = g.add(q.Quantize(float(rng.uniform(0.02, 0.2))), x)  # a second quantizer of the same input
    b2 = g.add(q.Dense(n_in, 8, weight=_w(rng, (8, n_in)), bias=_bias(rng, 8), **_requant(rng, 8)), a2)
    add = g.add(q.Add(multipliers=rng.integers(0, 2 ** 15, 2), shift=int(rng.integers(12, 18)),
                      lo=int(rng.choice([-128, 0])), hi=127), b1, b2)
    cat = g.add(tr.ann.Concat(), add, b1)
    cur = g.add(q.DirectCurrent(gain=int(rng.integers(-40, 40))), cat)
    d = g.delay((n,), "spike")
    # half the time the feed-forward product is rescaled before the recurrent one is added
    # (dendrite "rescale": on one core, or on partial-sum cores and a merge)
    # (dendrite "rescale": on one core, on the partial-sum core holding all the feed-forward
    # axons, or, when they are wider than a core (32 > 24 on SMALL), in the merges)
    ff = (dict(ff_mult=rng.integers(0, 2 ** 15, n), ff_shift=rng.integers(0, 20, n)) if rng.random() < 0.5
          else {})
    if ff and rng.random() < 0.5:
        cur = g.add(tr.ann.Concat(), cur, cur)
    k = g.entries[cur.name].shape[0]
    i = g.add(q.SynRecurrent(k, n, weight=_w(rng, (n, k)), weight_rec=_w(rng, (n, n)), bias=_bias(rng, n), **ff),
              cur, d)
    s = g.add(_lif(rng), i)
    g.connect(d, s)
    g.output("s", s)
    li = g.add(q.LI(leak_mult=rng.integers(0, 2 ** 15, 5) if rng.random() < 0.5 else int(rng.integers(0, 2 ** 15)),
                    leak_shift=15, v_init=int(rng.integers(-9, 9))),
               g.add(q.SynDense(n, 5, weight=_w(rng, (5, n)), bias=_bias(rng, 5)), s))
    g.output("li", li)
    m = g.add(q.MembraneReadout(window=int(rng.integers(1, 5)), leak_mult=int(rng.integers(0, 2 ** 15)),
                                leak_shift=15), g.add(q.SynDense(n, 4, weight=_w(rng, (4, n)), bias=_bias(rng, 4)), s))
    g.output("m", g.add(q.Dequantize(0.5), m))
    return g, {"x": (n_in,)}


def spike_input(rng):
    """A spike-domain graph input read directly by a (fan-in split) synapse."""
    n_in, n = int(rng.integers(10, 60)), int(rng.integers(5, 40))
    g = tr.Graph(name="spk")
    x = g.input("x", (n_in,), domain="spike")
    i = g.add(q.SynDense(n_in, n, weight=_w(rng, (n, n_in)), bias=_bias(rng, n, rng.random() < 0.3)), x)
    s = g.add(_neuron(rng, (n,)), i)
    g.output("s", s)
    g.output("c", g.add(tr.bridge.SpikeCount(window=3), s))
    return g, {"x": (n_in,)}


TEMPLATES = {"mlp": mlp, "cnn": cnn, "recurrent": recurrent, "spike_input": spike_input}


def inputs(rng, shapes, graph, batch, ticks=None):
    """Random float inputs (spike inputs 0/1), with a leading time axis when ``ticks``."""
    out = {}
    for name, shape in shapes.items():
        lead = ((ticks,) if ticks else ()) + ((batch,) if batch else ())
        if graph.entries[name].domain == "spike":
            out[name] = (rng.random(lead + shape) < 0.4).astype(np.float32)
        else:
            out[name] = rng.normal(0, float(rng.choice([1.0, 10.0])), lead + shape).astype(np.float32)
    return out
