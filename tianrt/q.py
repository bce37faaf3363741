"""Integer (chip) mode nodes: what a quantized graph is made of (``tr.q``).

Every value on a tensor or current edge between these nodes is an integer (int8 range
for ANN activations, int32 for currents and membranes); spikes are 0/1 as in float mode.
``Quantize`` and ``Dequantize`` are the float boundary. The arithmetic of each node is
fixed bit for bit in docs/integer.md; the numba backend's integer mode and firmware_sim
implement it exactly. ``tr.quantize`` turns a float graph into one of these.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ann
from .domains import CURRENT, SPIKE, TENSOR
from .errors import GraphError, ShapeError
from .node import Node, pair, register

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
MULT_LIMIT = 2 ** 15  # multipliers are in [0, 2**15): products with int32 fit in int64
SHIFT_LIMIT = 62


def _int_array(node, name, value, shape, dtype, lo, hi):
    a = np.asarray(value)
    if a.shape != tuple(shape):
        raise ShapeError(f"{node.op}: {name} has shape {a.shape}, expected {tuple(shape)}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise GraphError(f"{node.op}: {name} must hold integers")
    if a.size and (a.min() < lo or a.max() > hi):
        raise GraphError(f"{node.op}: {name} must lie in [{lo}, {hi}], got [{a.min()}, {a.max()}]")
    return np.ascontiguousarray(a.astype(dtype))


def _check_requant(node, out):
    node.multiplier = _int_array(node, "multiplier", np.broadcast_to(node.multiplier, (out,)),
                                 (out,), np.int32, 0, MULT_LIMIT - 1)
    node.shift = _int_array(node, "shift", np.broadcast_to(node.shift, (out,)), (out,), np.int32,
                            0, SHIFT_LIMIT)
    node.lo, node.hi = int(node.lo), int(node.hi)
    if not INT8_MIN <= node.lo <= node.hi <= INT8_MAX:
        raise GraphError(f"{node.op}: need -128 <= lo <= hi <= 127, got lo={node.lo} hi={node.hi}")


def _check_mult_shift(node, m_name, s_name):
    m, s = int(getattr(node, m_name)), int(getattr(node, s_name))
    if not 0 <= m < MULT_LIMIT or not 0 <= s <= SHIFT_LIMIT:
        raise GraphError(f"{node.op}: {m_name} must be in [0, {MULT_LIMIT}) and {s_name} in [0, {SHIFT_LIMIT}]")
    setattr(node, m_name, m)
    setattr(node, s_name, s)


def _check_int32(node, *names):
    for name in names:
        if not INT32_MIN <= getattr(node, name) <= INT32_MAX:
            raise GraphError(f"{node.op}: {name} must be an int32, in [{INT32_MIN}, {INT32_MAX}], "
                             f"got {getattr(node, name)}")


def _int8_param(node, name, shape):
    """An int8 weight-like field (zeros when not given)."""
    v = getattr(node, name)
    setattr(node, name, _int_array(node, name, np.zeros(shape) if v is None else v, shape, np.int8,
                                   INT8_MIN, INT8_MAX))


def _bias_param(node, n):
    """The int32 ``bias`` field of length n (zeros when not given)."""
    node.bias = _int_array(node, "bias", np.zeros(n) if node.bias is None else node.bias, (n,), np.int32,
                           INT32_MIN, INT32_MAX)


def _conv_params(node):
    """Normalise kernel/stride/padding pairs, then the int8 weight and int32 bias."""
    node.kernel_size, node.stride, node.padding = (pair(node.kernel_size), pair(node.stride),
                                                   pair(node.padding))
    _int8_param(node, "weight", (node.out_channels, node.in_channels) + node.kernel_size)
    _bias_param(node, node.out_channels)


def _positive_scale(node):
    if not float(node.scale) > 0:
        raise GraphError(f"{node.op}: scale must be > 0, got {node.scale}")
    node.scale = float(node.scale)


@dataclass(eq=False)
class QNode(Node):
    in_numeric = "int"
    out_numeric = "int"


# -- float boundary ----------------------------------------------------------------------------

@register
@dataclass(eq=False)
class Quantize(Node):
    """float -> int8: clamp(round_half_away(x / scale), -128, 127), computed in float64."""
    op = "q.Quantize"
    prefix = "quant"
    in_numeric = "float"
    out_numeric = "int"
    scale: float = 1.0

    __post_init__ = _positive_scale


@register
@dataclass(eq=False)
class Dequantize(Node):
    """int -> float32: q * scale (tensor or current domain)."""
    op = "q.Dequantize"
    prefix = "dequant"
    in_domains = (TENSOR, CURRENT)
    out_domain = None
    in_numeric = "int"
    out_numeric = "float"
    scale: float = 1.0

    __post_init__ = _positive_scale


# -- ANN (int8 activations, int32 accumulators) ----------------------------------------------

@register
@dataclass(eq=False)
class Dense(QNode):
    """acc = sat32(W x + bias); y = clamp(round_shift(acc * multiplier[o], shift[o]), lo, hi)."""
    op = "q.Dense"
    prefix = "qdense"
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    multiplier: np.ndarray | int = 1
    shift: np.ndarray | int = 0
    lo: int = INT8_MIN
    hi: int = INT8_MAX

    def __post_init__(self):
        _int8_param(self, "weight", (self.out_features, self.in_features))
        _bias_param(self, self.out_features)
        _check_requant(self, self.out_features)

    out_shape = ann.Dense.out_shape


@register
@dataclass(eq=False)
class Conv2d(QNode):
    """Integer convolution (zero padding) with the same requantisation as q.Dense."""
    op = "q.Conv2d"
    prefix = "qconv"
    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    multiplier: np.ndarray | int = 1
    shift: np.ndarray | int = 0
    lo: int = INT8_MIN
    hi: int = INT8_MAX

    def __post_init__(self):
        _conv_params(self)
        _check_requant(self, self.out_channels)

    out_shape = ann.Conv2d.out_shape


@register
@dataclass(eq=False)
class MaxPool2d(QNode):
    """Max over each window; padding counts as -128."""
    op = "q.MaxPool2d"
    prefix = "qmaxpool"
    kernel_size: tuple = (2, 2)
    stride: tuple | None = None
    padding: tuple = (0, 0)

    __post_init__ = ann._Pool.__post_init__
    out_shape = ann._Pool.out_shape


@register
@dataclass(eq=False)
class AvgPool2d(QNode):
    """Window sum (zero padding counted) requantised: clamp(round_shift(sum * m, s), -128, 127)."""
    op = "q.AvgPool2d"
    prefix = "qavgpool"
    kernel_size: tuple = (2, 2)
    stride: tuple | None = None
    padding: tuple = (0, 0)
    multiplier: int = 1
    shift: int = 0

    def __post_init__(self):
        ann._Pool.__post_init__(self)
        _check_mult_shift(self, "multiplier", "shift")

    out_shape = ann._Pool.out_shape


@register
@dataclass(eq=False)
class GlobalAvgPool2d(QNode):
    """(C, H, W) -> (C,): clamp(round_shift(sum over H, W * m, s), -128, 127)."""
    op = "q.GlobalAvgPool2d"
    prefix = "qgap"
    multiplier: int = 1
    shift: int = 0

    def __post_init__(self):
        _check_mult_shift(self, "multiplier", "shift")

    out_shape = ann.GlobalAvgPool2d.out_shape


@register
@dataclass(eq=False)
class Clamp(QNode):
    """clamp(x, lo, hi): ReLU in integer mode is Clamp(0, 127)."""
    op = "q.Clamp"
    prefix = "qclamp"
    lo: int = 0
    hi: int = INT8_MAX


@register
@dataclass(eq=False)
class Lookup(QNode):
    """y = table[x + 128] for int8 x: any activation (sigmoid, tanh...) as the soma's table."""
    op = "q.Lookup"
    prefix = "qlut"
    table: np.ndarray | None = None

    def __post_init__(self):
        self.table = _int_array(self, "table", np.arange(-128, 128) if self.table is None else self.table,
                                (256,), np.int8, INT8_MIN, INT8_MAX)


@register
@dataclass(eq=False)
class Add(QNode):
    """y = clamp(round_shift(sum_k x_k * multipliers[k], shift), lo, hi)."""
    op = "q.Add"
    prefix = "qadd"
    arity = None
    multipliers: np.ndarray | None = None
    shift: int = 0
    lo: int = INT8_MIN
    hi: int = INT8_MAX

    def __post_init__(self):
        m = np.ones(2) if self.multipliers is None else np.asarray(self.multipliers)
        self.multipliers = _int_array(self, "multipliers", m, m.shape, np.int32, 0, MULT_LIMIT - 1)
        self.shift = int(self.shift)
        if not 0 <= self.shift <= SHIFT_LIMIT:
            raise GraphError(f"{self.op}: shift must be in [0, {SHIFT_LIMIT}]")

    def out_shape(self, in_shapes):
        if len(in_shapes) != len(self.multipliers):
            raise ShapeError(f"{self.op} has {len(self.multipliers)} multipliers for {len(in_shapes)} inputs")
        return ann.Add.out_shape(self, in_shapes)


# -- SNN (int8 weights, int32 currents and membranes) ------------------------------------------

@dataclass(eq=False)
class _QSynapse(QNode):
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    per_tick = True


@register
@dataclass(eq=False)
class SynDense(_QSynapse):
    """I = sat32(sum_j W[:, j] x_j + bias); x spikes (0/1) or integer currents."""
    op = "q.SynDense"
    prefix = "qsyn"
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        _int8_param(self, "weight", (self.out_features, self.in_features))
        _bias_param(self, self.out_features)

    out_shape = ann.Dense.out_shape


@register
@dataclass(eq=False)
class SynConv2d(_QSynapse):
    """Convolutional integer synapse: I = sat32(conv(W, x) + bias)."""
    op = "q.SynConv2d"
    prefix = "qsconv"
    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    __post_init__ = _conv_params

    out_shape = ann.Conv2d.out_shape


@register
@dataclass(eq=False)
class SynRecurrent(_QSynapse):
    """I = sat32(W x + W_rec r + bias), r the layer's previous-tick spikes via a delay edge."""
    op = "q.SynRecurrent"
    prefix = "qrsyn"
    arity = 2
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        n = self.out_features
        _int8_param(self, "weight", (n, self.in_features))
        _int8_param(self, "weight_rec", (n, n))
        _bias_param(self, n)

    def out_shape(self, in_shapes):
        from .snn import Recurrent
        return Recurrent.out_shape(self, in_shapes)


@register
@dataclass(eq=False)
class LIF(QNode):
    """Integer LIF: leak v*leak_mult >> leak_shift (rounded), integer threshold; IF is
    leak_mult=1, leak_shift=0. Optional current filter alpha_mult/alpha_shift."""
    op = "q.LIF"
    prefix = "qlif"
    in_domains = (CURRENT, SPIKE)
    out_domain = SPIKE
    per_tick = True
    stateful = True
    threshold: int = 1
    leak_mult: int = 1
    leak_shift: int = 0
    reset: str = "subtract"
    v_reset: int = 0
    refractory: int = 0
    alpha_mult: int | None = None
    alpha_shift: int = 0
    v_init: int = 0

    def __post_init__(self):
        from .snn import RESETS
        if self.reset not in RESETS:
            raise GraphError(f"{self.op}: reset must be one of {RESETS}, got {self.reset!r}")
        _check_mult_shift(self, "leak_mult", "leak_shift")
        if self.alpha_mult is not None:
            _check_mult_shift(self, "alpha_mult", "alpha_shift")
        self.threshold, self.v_reset, self.v_init = int(self.threshold), int(self.v_reset), int(self.v_init)
        _check_int32(self, "v_reset", "v_init")
        if not 0 < self.threshold <= INT32_MAX:
            raise GraphError(f"{self.op}: threshold must be a positive int32, got {self.threshold}")
        self.refractory = int(self.refractory)
        if self.refractory < 0:
            raise GraphError(f"{self.op}: refractory must be >= 0 ticks")


@register
@dataclass(eq=False)
class LI(QNode):
    """Integer leaky integrator readout: v = sat32(round_shift(v*leak_mult, leak_shift) + I)."""
    op = "q.LI"
    prefix = "qli"
    in_domains = (CURRENT, SPIKE)
    out_domain = CURRENT
    per_tick = True
    stateful = True
    leak_mult: int = 1
    leak_shift: int = 0
    v_init: int = 0

    def __post_init__(self):
        _check_mult_shift(self, "leak_mult", "leak_shift")
        self.v_init = int(self.v_init)
        _check_int32(self, "v_init")


# -- bridges -------------------------------------------------------------------------------------

@dataclass(eq=False)
class _QEncoder(QNode):
    in_domains = (TENSOR,)
    out_domain = SPIKE
    per_tick = True
    stateful = True
    full_scale: int = 127

    def __post_init__(self):
        self.full_scale = int(self.full_scale)
        if not 1 <= self.full_scale <= INT8_MAX:
            raise GraphError(f"{self.op}: full_scale must be in [1, 127], got {self.full_scale}")


@register
@dataclass(eq=False)
class RateEncoder(_QEncoder):
    """Integer rate code: x = clamp(q, 0, D); acc starts at floor(D/2); acc += x;
    spike when acc >= D, then acc -= D. D = full_scale stands for 1.0; T ticks give
    exactly round-half-up(T x / D) spikes."""
    op = "q.RateEncoder"
    prefix = "qrate"


@register
@dataclass(eq=False)
class LatencyEncoder(_QEncoder):
    """One spike per window of W ticks at phase ((D - x)(W - 1) * 2 + D) // (2 D) for
    x = clamp(q, 0, D) > 0."""
    op = "q.LatencyEncoder"
    prefix = "qlatency"
    window: int = 16

    def __post_init__(self):
        super().__post_init__()
        self.window = int(self.window)
        if self.window < 1:
            raise GraphError(f"{self.op}: window must be >= 1 tick")


@register
@dataclass(eq=False)
class DirectCurrent(QNode):
    """I = q * gain every tick (int32)."""
    op = "q.DirectCurrent"
    prefix = "qdirect"
    in_domains = (TENSOR,)
    out_domain = CURRENT
    per_tick = True
    gain: int = 1

    def __post_init__(self):
        self.gain = int(self.gain)
        _check_int32(self, "gain")


@register
@dataclass(eq=False)
class MembraneReadout(QNode):
    """v = sat32(round_shift(v*leak_mult, leak_shift) + I) over each window of W ticks;
    emits v (int32) at the window's end, then restarts from 0."""
    op = "q.MembraneReadout"
    prefix = "qmembrane"
    in_domains = (CURRENT, SPIKE)
    out_domain = TENSOR
    per_tick = True
    stateful = True
    window: int = 16
    leak_mult: int = 1
    leak_shift: int = 0

    def __post_init__(self):
        self.window = int(self.window)
        if self.window < 1:
            raise GraphError(f"{self.op}: window must be >= 1 tick")
        _check_mult_shift(self, "leak_mult", "leak_shift")


# bridge.SpikeCount (rate=False) and bridge.FirstSpike, ann.Flatten and ann.Concat are exact
# on integers and are used as they are in integer graphs.

ANN_OPS = (Dense, Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Clamp, Lookup, Add)
SNN_OPS = (SynDense, SynConv2d, SynRecurrent, LIF, LI)
BRIDGE_OPS = (RateEncoder, LatencyEncoder, DirectCurrent, MembraneReadout)
