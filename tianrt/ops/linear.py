"""ANN weight layers: ``ann.Dense`` / ``ann.Conv2d`` (float) and ``q.Dense`` / ``q.Conv2d``
(integer, chip mode). They run when a new input value arrives.

Float:    y = W x + b                       W (out, in), PyTorch layout
          y = conv(W, x) + b                W (out, in, kh, kw), cross-correlation, zero padding
Integer:  acc = sat32(W x + bias)           int8 W, int32 bias, int64 sums (exact)
          y = clamp(round_shift(acc * multiplier[o], shift[o]), lo, hi)   per output channel

``DenseLayout`` / ``ConvLayout`` hold what the float layers of both sides share (sizes,
weights, default init, the shape rule); synapses (``ops.synapse``) use them too, but a
synapse is not an ANN layer: they are siblings, not subclasses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..errors import ShapeError
from ..node import Node, as_array, init_uniform, need_rank, register
from .arrays import F32, I32, channel, windows
from .exact import conv_acc, dense_acc
from .qnode import QNode, bias_param, conv_params, int8_param, check_requant
from .registry import implements


def conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def conv_shape(node, in_shape, out_channels):
    """(C, H, W) -> (out_channels, H', W') for node.kernel_size / stride / padding."""
    need_rank(node.op, in_shape, 3, "(C, H, W)")
    _, h, w = in_shape
    ho = conv_out(h, node.kernel_size[0], node.stride[0], node.padding[0])
    wo = conv_out(w, node.kernel_size[1], node.stride[1], node.padding[1])
    if ho < 1 or wo < 1:
        raise ShapeError(f"{node.op}: input {tuple(in_shape)} is smaller than kernel {node.kernel_size}")
    return (out_channels, ho, wo)


@dataclass(eq=False)
class DenseLayout(Node):
    """Sizes, weight (out, in), bias and shape rule of a dense layer (not an op itself)."""
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    seed: int | None = None  # None: drawn per node when added to a graph (Node.draw_defaults)

    def __post_init__(self):
        shape = (self.out_features, self.in_features)
        self.draws_defaults = self.weight is None and self.seed is None
        self.weight = (init_uniform(shape, self.in_features, self.seed or 0) if self.weight is None
                       else as_array(self, "weight", self.weight, shape))
        self.bias = (np.zeros(self.out_features, np.float32) if self.bias is None
                     else as_array(self, "bias", self.bias, (self.out_features,)))

    def draw_defaults(self, seed):
        self.seed = int(seed)
        self.weight = init_uniform(self.weight.shape, self.in_features, self.seed)

    def out_shape(self, in_shapes):
        return dense_shape(self, in_shapes)


def dense_shape(node, in_shapes):
    (s,) = in_shapes
    if tuple(s) != (node.in_features,):
        raise ShapeError(f"{node.op} expects input shape ({node.in_features},), got {tuple(s)}"
                         + ("; insert Flatten() first" if int(np.prod(s)) == node.in_features else ""))
    return (node.out_features,)


@dataclass(eq=False)
class ConvLayout(Node):
    """Sizes, weight (out, in, kh, kw), bias and shape rule of a 2-D convolution (not an op)."""
    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    seed: int | None = None  # None: drawn per node when added to a graph (Node.draw_defaults)

    def __post_init__(self):
        from ..node import pair
        self.kernel_size, self.stride, self.padding = (pair(self.kernel_size), pair(self.stride),
                                                       pair(self.padding))
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        fan_in = self.in_channels * kh * kw
        self.draws_defaults = self.weight is None and self.seed is None
        self.weight = (init_uniform(shape, fan_in, self.seed or 0) if self.weight is None
                       else as_array(self, "weight", self.weight, shape))
        self.bias = (np.zeros(self.out_channels, np.float32) if self.bias is None
                     else as_array(self, "bias", self.bias, (self.out_channels,)))

    def draw_defaults(self, seed):
        self.seed = int(seed)
        self.weight = init_uniform(self.weight.shape, int(np.prod(self.weight.shape[1:])), self.seed)

    def out_shape(self, in_shapes):
        return conv_in_shape(self, in_shapes)


def conv_in_shape(node, in_shapes):
    (s,) = in_shapes
    need_rank(node.op, s, 3, "(C, H, W)")
    if s[0] != node.in_channels:
        raise ShapeError(f"{node.op} expects {node.in_channels} input channels, got {s[0]}")
    return conv_shape(node, s, node.out_channels)


@register
@dataclass(eq=False)
class Dense(DenseLayout):
    """y = W x + b, W of shape (out_features, in_features)."""
    op = "ann.Dense"
    prefix = "dense"


@register
@dataclass(eq=False)
class Conv2d(ConvLayout):
    """2-D convolution (cross-correlation, as in PyTorch), groups=1, zero padding."""
    op = "ann.Conv2d"
    prefix = "conv"


@dataclass(eq=False)
class QDenseLayout(QNode):
    """Sizes, int8 weight (out, in) and int32 bias of an integer dense layer (not an op)."""
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        int8_param(self, "weight", (self.out_features, self.in_features))
        bias_param(self, self.out_features)

    def out_shape(self, in_shapes):
        return dense_shape(self, in_shapes)


@dataclass(eq=False)
class QConvLayout(QNode):
    """Sizes, geometry, int8 weight (out, in, kh, kw) and int32 bias of an integer
    convolution (not an op)."""
    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    __post_init__ = conv_params

    def out_shape(self, in_shapes):
        return conv_in_shape(self, in_shapes)


@register
@dataclass(eq=False)
class QDense(QDenseLayout):
    """acc = sat32(W x + bias); y = clamp(round_shift(acc * multiplier[o], shift[o]), lo, hi)."""
    op = "q.Dense"
    prefix = "qdense"
    multiplier: np.ndarray | int = 1
    shift: np.ndarray | int = 0
    lo: int = qmath.INT8_MIN
    hi: int = qmath.INT8_MAX

    def __post_init__(self):
        super().__post_init__()
        check_requant(self, self.out_features)


@register
@dataclass(eq=False)
class QConv2d(QConvLayout):
    """Integer convolution (zero padding) with the same requantisation as q.Dense."""
    op = "q.Conv2d"
    prefix = "qconv"
    multiplier: np.ndarray | int = 1
    shift: np.ndarray | int = 0
    lo: int = qmath.INT8_MIN
    hi: int = qmath.INT8_MAX

    def __post_init__(self):
        conv_params(self)
        check_requant(self, self.out_channels)


# -- reference rules ------------------------------------------------------------------------------

def dense(x, w, b):
    return (x @ w.T + b).astype(F32, copy=False)


def conv2d(x, w, b, stride, padding):
    win = windows(x, w.shape[2:], stride, padding, 0.0)
    y = np.einsum("bchwij,ocij->bohw", win, w, optimize=True)
    return (y + b[None, :, None, None]).astype(F32, copy=False)


@implements("reference", DenseLayout)  # ANN layers and synapses: the same product
def dense_step(n, st, xs, t):
    x = xs[0]
    return dense(x.reshape(x.shape[0], -1), n.weight, n.bias)


@implements("reference", ConvLayout)
def conv_step(n, st, xs, t):
    return conv2d(xs[0], n.weight, n.bias, n.stride, n.padding)


def requant_out(acc, n):
    return qmath.requant(acc, channel(n.multiplier, acc.ndim, np.int64), channel(n.shift, acc.ndim, np.int64),
                         n.lo, n.hi).astype(I32)


@implements("reference", QDense)
def qdense_step(n, st, xs, t):
    return requant_out(dense_acc(xs[0], n.weight, n.bias), n)


@implements("reference", QConv2d)
def qconv_step(n, st, xs, t):
    return requant_out(conv_acc(xs[0], n.weight, n.bias, n.stride, n.padding), n)


# -- op counts -------------------------------------------------------------------------------------

@implements("macs", DenseLayout, QDense)
def dense_macs(node, out_shape) -> int:
    return int(node.in_features * node.out_features)


@implements("macs", ConvLayout, QConv2d)
def conv_macs(node, out_shape) -> int:
    kh, kw = node.kernel_size
    return int(np.prod(out_shape)) * node.in_channels * kh * kw


# -- quantisation ----------------------------------------------------------------------------------

@implements("quantize", Dense, Conv2d)
def quantize(qz, e, src, kind, s_in):
    """int8 weights (per output channel or per layer), int32 bias, requantised to the output
    scale; a ReLU / ClippedReLU that follows alone is fused as the clamp range."""
    from .activation import ClippedReLU
    n, name = e.node, e.name
    qz._need(e, kind, "int")
    act = qz._fuse_act(e)
    out_name = act.name if act is not None else name
    s_out = qz._act_scale(out_name)
    wq, s_w = qmath.quantize_weights(n.weight, axis=0 if qz.per_channel else None)
    bias = qmath.quantize_bias(n.bias, s_in * np.asarray(s_w, np.float64))
    m, sh = qmath.requant_params(s_in, s_w, s_out)
    lo, hi = qmath.INT8_MIN, qmath.INT8_MAX
    if act is not None:
        lo = 0
        if isinstance(act.node, ClippedReLU):
            hi = int(np.clip(qmath.round_half_away(act.node.max_value / s_out), 0, 127))
        qz.fused.add(act.name)
    if isinstance(n, Dense):
        node = QDense(n.in_features, n.out_features, weight=wq, bias=bias, multiplier=m, shift=sh, lo=lo, hi=hi)
    else:
        node = QConv2d(n.in_channels, n.out_channels, n.kernel_size, n.stride, n.padding,
                       weight=wq, bias=bias, multiplier=m, shift=sh, lo=lo, hi=hi)
    new = qz._add(node, src, name)
    qz.map[name] = (new, "int", s_out)
    if act is not None:
        qz.map[act.name] = (new, "int", s_out)


# -- chip: the soma program of a core of this layer -------------------------------------------------

@implements("chip_head", QDense, QConv2d)
def chip_soma(node, sel, chan, arr) -> list:
    """bias (on a new input), then the per-channel requantisation."""
    return [{"op": "bias", "per_tick": False, "bias": arr(node.bias[chan], np.int32)},
            {"op": "requant", "mult": arr(node.multiplier[chan], np.int32),
             "shift": arr(node.shift[chan], np.int32), "lo": node.lo, "hi": node.hi}]
