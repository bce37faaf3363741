"""Synapses: spikes (or a current) in, a current out, every tick. ``snn.Dense``,
``snn.Conv2d``, ``snn.Recurrent`` (float) and ``q.SynDense``, ``q.SynConv2d``,
``q.SynRecurrent`` (integer, chip mode).

Float:    I = W s + b,  I = conv(W, s) + b,  I = W x + W_rec r + b   (r: the layer's own
          spikes of the previous tick, through a ``Graph.delay`` edge)
Integer:  I = sat32(W s + bias) with int8 W, int32 bias, exact int64 sums (no requantisation:
          the current stays in units of input scale x weight scale)
          q.SynRecurrent: I = sat32(F + W_rec r + bias), F = W x, or, with ff_mult/ff_shift
          (one per neuron), F = rescale(W x) = round_shift(sat32(W x) * ff_mult, ff_shift):
          the feed-forward product keeps its own weight scale and is requantised to the
          membrane's unit (that of W_rec) before the recurrent product is added, as a
          chip's dendrite would do with two axon groups

The fast backends are event-driven: work follows the active inputs, not the fan-in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..domains import CURRENT, SPIKE
from ..errors import GraphError, ShapeError
from ..node import Node, as_array, init_uniform, register
from .arrays import F32, I32, I64
from .exact import conv_acc, dense_acc, exact_matmul
from .linear import ConvLayout, DenseLayout, QConvLayout, QDenseLayout, conv2d
from ..kernels.limits import MULT_LIMIT, SHIFT_LIMIT
from .qnode import QNode, bias_param, int8_param, int_array
from .registry import implements


@register
@dataclass(eq=False)
class Dense(DenseLayout):
    """Synapse I = W s + b per tick; W (out, in). Event-driven on the fast backends."""
    op = "snn.Dense"
    prefix = "syn"
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    per_tick = True


@register
@dataclass(eq=False)
class Conv2d(ConvLayout):
    """Convolutional synapse, I = conv(W, s) + b per tick; W (out, in, kh, kw)."""
    op = "snn.Conv2d"
    prefix = "sconv"
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    per_tick = True


def recurrent_shape(node, in_shapes):
    x, r = (tuple(s) for s in in_shapes)
    if x != (node.in_features,):
        raise ShapeError(f"{node.op} expects feed-forward input ({node.in_features},), got {x}")
    if r != (node.out_features,):
        raise ShapeError(f"{node.op} expects recurrent input ({node.out_features},), got {r}")
    return (node.out_features,)


@register
@dataclass(eq=False)
class Recurrent(Node):
    """Recurrent synapse: I = W x + W_rec r + b, with two inputs: the feed-forward spikes x
    and the layer's own spikes of the previous tick r (a ``Graph.delay`` edge)."""
    op = "snn.Recurrent"
    prefix = "rsyn"
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    arity = 2
    per_tick = True
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    bias: np.ndarray | None = None
    seed: int | None = None  # None: drawn per node when added to a graph (Node.draw_defaults)

    def __post_init__(self):
        n, m = self.out_features, self.in_features
        self.draws_defaults = self.seed is None and (self.weight is None or self.weight_rec is None)
        self._drawn = (self.weight is None, self.weight_rec is None)
        seed = self.seed or 0
        self.weight = (init_uniform((n, m), m, seed) if self.weight is None
                       else as_array(self, "weight", self.weight, (n, m)))
        self.weight_rec = (init_uniform((n, n), n, seed + 1) if self.weight_rec is None
                           else as_array(self, "weight_rec", self.weight_rec, (n, n)))
        self.bias = (np.zeros(n, np.float32) if self.bias is None
                     else as_array(self, "bias", self.bias, (n,)))

    def draw_defaults(self, seed):
        n, m = self.out_features, self.in_features
        self.seed = int(seed)
        if self._drawn[0]:
            self.weight = init_uniform((n, m), m, self.seed)
        if self._drawn[1]:
            self.weight_rec = init_uniform((n, n), n, self.seed + 1)

    def out_shape(self, in_shapes):
        return recurrent_shape(self, in_shapes)


@dataclass(eq=False)
class _QSynapse(QNode):
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    per_tick = True


@register
@dataclass(eq=False)
class SynDense(_QSynapse, QDenseLayout):
    """I = sat32(sum_j W[:, j] x_j + bias); x spikes (0/1) or integer currents."""
    op = "q.SynDense"
    prefix = "qsyn"


@register
@dataclass(eq=False)
class SynConv2d(_QSynapse, QConvLayout):
    """Convolutional integer synapse: I = sat32(conv(W, x) + bias)."""
    op = "q.SynConv2d"
    prefix = "qsconv"


@register
@dataclass(eq=False)
class SynRecurrent(_QSynapse):
    """I = sat32(F + W_rec r + bias), r the layer's previous-tick spikes via a delay edge;
    F = W x, or with ``ff_mult``/``ff_shift`` (a number or one per neuron)
    F = round_shift(sat32(W x) * ff_mult, ff_shift) (qmath.rescale)."""
    op = "q.SynRecurrent"
    prefix = "qrsyn"
    arity = 2
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    bias: np.ndarray | None = None
    ff_mult: np.ndarray | None = None
    ff_shift: np.ndarray | None = None

    def __post_init__(self):
        n = self.out_features
        int8_param(self, "weight", (n, self.in_features))
        int8_param(self, "weight_rec", (n, n))
        bias_param(self, n)
        if (self.ff_mult is None) != (self.ff_shift is None):
            raise GraphError(f"{self.op}: ff_mult and ff_shift go together (both, or neither for an "
                             "unscaled feed-forward product)")
        if self.ff_mult is not None:
            self.ff_mult = int_array(self, "ff_mult", np.broadcast_to(self.ff_mult, (n,)), (n,), np.int32,
                                     0, MULT_LIMIT - 1)
            self.ff_shift = int_array(self, "ff_shift", np.broadcast_to(self.ff_shift, (n,)), (n,), np.int32,
                                      0, SHIFT_LIMIT)

    @property
    def rescaled(self) -> bool:
        """Whether the feed-forward product is requantised before the recurrent one is added."""
        return self.ff_mult is not None

    def out_shape(self, in_shapes):
        return recurrent_shape(self, in_shapes)


# -- reference rules -------------------------------------------------------------------------------

# snn.Dense / snn.Conv2d: the reference rule of their layout (ops.linear), found through it

@implements("reference", Recurrent)
def recurrent_step(n, st, xs, t):
    x, r = xs
    return (x @ n.weight.T + r @ n.weight_rec.T + n.bias).astype(F32)


@implements("reference", SynDense)
def qdense_step(n, st, xs, t):
    return dense_acc(xs[0], n.weight, n.bias).astype(I32)


@implements("reference", SynConv2d)
def qconv_step(n, st, xs, t):
    return conv_acc(xs[0], n.weight, n.bias, n.stride, n.padding).astype(I32)


@implements("reference", SynRecurrent)
def qrecurrent_step(n, st, xs, t):
    x, r = xs
    ff = exact_matmul(x, n.weight)
    if n.rescaled:
        ff = qmath.rescale(ff, n.ff_mult, n.ff_shift)
    return qmath.sat32(ff + exact_matmul(r, n.weight_rec) + n.bias.astype(I64)).astype(I32)


# -- op counts ---------------------------------------------------------------------------------------

@implements("macs", SynDense)
def dense_macs(node, out_shape) -> int:
    return int(node.in_features * node.out_features)


@implements("macs", SynConv2d)
def conv_macs(node, out_shape) -> int:
    kh, kw = node.kernel_size
    return int(np.prod(out_shape)) * node.in_channels * kh * kw


# -- quantisation ------------------------------------------------------------------------------------

@implements("quantize", Dense, Conv2d)
def quantize(qz, e, src, kind, s_in):
    """One weight scale per layer, chosen so that the threshold is an exact integer number of
    current units; or, when the neurons that follow take one integer threshold per neuron
    (``qz._per_neuron_scales``), one weight scale per output channel, each row keeping its
    127 levels and its own exact integer threshold. The bias absorbs the mean drift that
    rounding the weights adds (bias correction)."""
    n, name = e.node, e.name
    if kind not in ("spike", "current"):
        raise GraphError(f"quantize: synapse `{name}` needs spikes or an integer current, got {kind}")
    s_unit = 1.0 if kind == "spike" else s_in
    theta = qz._threshold_of(name)
    if theta is not None and qz._per_neuron_scales(name):
        # one current unit per output row (a vector s_unit, one input scale per feature of a
        # dense synapse, is absorbed by the columns first)
        w_eff = np.asarray(n.weight, np.float64) * s_unit
        s_row = _row_scales(w_eff, theta)
        wq, _ = qmath.quantize_weights(w_eff, scale=s_row, axis=0)
        w_rounded = wq * s_row.reshape((-1,) + (1,) * (wq.ndim - 1)) / s_unit
        s_cur = s_row.reshape(-1, 1, 1) if isinstance(n, Conv2d) else s_row  # broadcasts to the neurons
    elif np.ndim(s_unit):  # one input scale per feature (a vector input): the columns absorb them
        w_eff = np.asarray(n.weight, np.float64) * s_unit
        s_cur = float(qmath.symmetric_scale(w_eff))
        if theta is not None and int(np.floor(theta / s_cur)) >= 1:
            s_cur = theta / int(np.floor(theta / s_cur))  # the integer threshold is exact
        wq, _ = qmath.quantize_weights(w_eff, scale=s_cur)
        w_rounded = wq * s_cur / s_unit
    else:
        s_w = float(qmath.symmetric_scale(n.weight))
        if theta is not None:
            # make the integer threshold exact: theta / s_cur = K, an integer (a rounded
            # threshold would change the gain of every neuron of the layer alike)
            k = int(np.floor(theta / (s_unit * s_w)))
            if k >= 1:
                s_w = theta / (s_unit * k)
        wq, _ = qmath.quantize_weights(n.weight, scale=s_w)
        s_cur, w_rounded = s_w * s_unit, wq * s_w
    bias = qmath.quantize_bias(n.bias - qz._rounding_drift(e, w_rounded), np.reshape(s_cur, -1))
    if isinstance(n, Dense):
        node = SynDense(n.in_features, n.out_features, weight=wq, bias=bias)
    else:
        node = SynConv2d(n.in_channels, n.out_channels, n.kernel_size, n.stride, n.padding,
                         weight=wq, bias=bias)
    qz.map[name] = (qz._add(node, src, name), "current", s_cur)


def _row_scales(w_eff, theta):
    """One current unit per output row of the weights in current units ``w_eff``: each row's
    largest |w| takes (about) 127 levels and theta / s_j is an exact integer
    K_j = floor(theta / (max|w_j| / 127)), at least 1. A row of zeros keeps the unit of the
    largest row."""
    w = np.abs(np.asarray(w_eff, np.float64)).reshape(len(w_eff), -1).max(axis=1)
    w = np.where(w > 0, w, w.max(initial=0.0) or 1.0)
    k = np.maximum(np.floor(theta / (w / qmath.WEIGHT_MAX)), 1.0)
    return theta / k


MIN_LEVELS = 32  # fewer int8 levels than this in a shared accumulator: the products get their own scales


@implements("quantize", Recurrent)
def quantize_recurrent(qz, e, src, kind, s_in):
    """snn.Recurrent -> q.SynRecurrent. The membrane's unit s_cur is the recurrent weights'
    (max |W_rec| / 127, nudged up so that the neuron's threshold is an exact integer).

    - Spikes in, both weight matrices of a similar size (or weights that lie on the shared
      grid, such as small integers): one accumulator, both products in s_cur (the feed-forward
      weights scaled by s_cur too; bit-compatible with before).
    - A current in (int8 activations x int8 weights), or spikes whose weights would keep fewer
      than MIN_LEVELS levels in the shared unit: the feed-forward weights keep their own int8
      scale per output row, s_row = max_i |W[o, i] * s_x[i]| / 127, and their product is
      rescaled to s_cur by ff_mult * 2**-ff_shift ~= s_row / s_cur (qmath.quantize_multipliers)
      before the recurrent product is added: per tick and neuron the rescaled current is within
      s_cur / 2 + 2**-15 |F| of the float current of the rounded weights (docs/integer.md).

    The bias is rounded as it is (no rounding-drift correction for recurrent layers)."""
    n, name = e.node, e.name
    (x, kx, sx), (r, kr, _) = (qz.map[i] for i in e.inputs)
    if kr != "spike" or kx not in ("spike", "current"):
        raise GraphError(f"quantize: recurrent synapse `{name}` needs spikes or an integer current and its "
                         f"layer's spikes through a delay, got {kx} and {kr}: feed it spikes (a RateEncoder) "
                         "or a current (bridge.DirectCurrent), and its own spikes through Graph.delay")
    w_eff = np.asarray(n.weight, np.float64) * (1.0 if kx == "spike" else np.asarray(sx, np.float64))
    big_ff = float(np.abs(w_eff).max(initial=0))
    big_rec = float(np.abs(n.weight_rec).max(initial=0))
    theta = qz._threshold_of(name)
    shared = _exact_threshold(max(big_ff, big_rec) / qmath.WEIGHT_MAX or 1.0, theta)
    levels = [v / shared for v in (big_ff, big_rec) if v > 0]
    if kx == "spike" and (min(levels, default=qmath.WEIGHT_MAX) >= MIN_LEVELS or _on_grid(w_eff, shared)):
        wq, _ = qmath.quantize_weights(w_eff, scale=shared)
        wrq, _ = qmath.quantize_weights(n.weight_rec, scale=shared)
        node = SynRecurrent(n.in_features, n.out_features, weight=wq, weight_rec=wrq,
                            bias=qmath.quantize_bias(n.bias, shared))
        qz.map[name] = (qz.g.add(node, x, r, name=name).name, "current", shared)
        return
    s_row = qmath.symmetric_scale(w_eff, axis=0)                     # one int8 scale per output row
    s_row = np.where(np.abs(w_eff).max(axis=1, initial=0) > 0, s_row, 0.0)
    base = big_rec / qmath.WEIGHT_MAX if big_rec > 0 else (float(s_row.max()) or 1.0)
    reach = float(s_row.max(initial=0)) / RESCALE_MAX               # the largest ratio a multiplier spans
    s_cur = _exact_threshold(max(base, reach), theta)
    if big_rec > 0 and big_rec / s_cur < MIN_LEVELS:
        raise GraphError(f"quantize: recurrent synapse `{name}`: its feed-forward weights in current units "
                         f"(max {big_ff:.3g}) are {big_ff / big_rec:.3g} times its recurrent ones (max "
                         f"{big_rec:.3g}); rescaling the feed-forward product by at most {RESCALE_MAX} would "
                         f"leave the recurrent weights {int(big_rec / s_cur)} levels (of 127): scale the "
                         "input down (e.g. a smaller DirectCurrent gain) or the recurrent weights up, to "
                         f"within {RESCALE_MAX * qmath.WEIGHT_MAX // MIN_LEVELS}x of each other")
    if theta is not None and theta / s_cur > MEMBRANE_MAX:
        raise GraphError(f"quantize: recurrent synapse `{name}`: its recurrent weights (max {big_rec:.3g}) "
                         f"are so small beside the threshold {theta:g} that the membrane's unit makes the "
                         f"threshold {theta / s_cur:.3g} units, beyond the {MEMBRANE_MAX} that leave an int32 "
                         "membrane room: drop the recurrent weights (they round to nothing) or scale them up")
    wq, _ = qmath.quantize_weights(w_eff, scale=np.where(s_row > 0, s_row, 1.0), axis=0)
    wrq, _ = qmath.quantize_weights(n.weight_rec, scale=s_cur)
    mult, shift = qmath.quantize_multipliers(s_row / s_cur)
    node = SynRecurrent(n.in_features, n.out_features, weight=wq, weight_rec=wrq,
                        bias=qmath.quantize_bias(n.bias, s_cur), ff_mult=mult, ff_shift=shift)
    qz.map[name] = (qz.g.add(node, x, r, name=name).name, "current", s_cur)


MEMBRANE_MAX = 2 ** 24  # a threshold of at most this many membrane units leaves int32 room to spare
RESCALE_MAX = 2 ** 14  # the rescale ratios tr.quantize writes stay below this (multipliers span 2**15)


def _on_grid(w, unit) -> bool:
    """Whether every weight is (to float precision) an integer number of ``unit`` in the int8
    range: then one shared unit loses nothing (e.g. a state machine of small integer weights)."""
    k = np.asarray(w, np.float64) / unit
    return bool(np.abs(k).max(initial=0) <= qmath.WEIGHT_MAX and np.allclose(k, np.round(k), rtol=0, atol=1e-6))


def _exact_threshold(s_cur, theta):
    """``s_cur`` nudged up so that ``theta / s_cur`` is an exact integer (when it is >= 1)."""
    if theta is not None and int(np.floor(theta / s_cur)) >= 1:
        return theta / int(np.floor(theta / s_cur))
    return s_cur


def mean_current(node, w, mean):
    """Mean current per output channel of a synapse with weights ``w`` on input ``mean``."""
    if isinstance(node, Dense):
        return w @ mean.reshape(-1)
    out = conv2d(mean[None].astype(F32), w.astype(F32), np.zeros(w.shape[0], F32), node.stride, node.padding)
    return out[0].astype(np.float64).mean(axis=(1, 2))


# -- chip: the soma program of a core of this layer --------------------------------------------------

@implements("chip_head", SynDense, SynConv2d, SynRecurrent)
def chip_soma(node, sel, chan, arr) -> list:
    """The bias is added every tick (a synapse's current is per tick)."""
    return [{"op": "bias", "per_tick": True, "bias": arr(node.bias[chan], np.int32)}]
