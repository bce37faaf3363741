"""Pooling: ``ann.MaxPool2d``, ``ann.AvgPool2d``, ``ann.GlobalAvgPool2d`` (float) and their
``q.*`` twins (integer, chip mode). Windows (kh, kw) every (sh, sw) pixels, zero padding.

Float:    max over the window (padding counts as -inf); mean over the window (padding
          counted, PyTorch's count_include_pad=True); mean over H and W
Integer:  max over the window (padding counts as -128);
          clamp(round_shift(window sum * multiplier, shift), -128, 127), the sum saturated
          to int32, multiplier/shift ~ 1 / window size (GlobalAvgPool2d: 1 / (H W))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..node import Node, need_rank, pair, register
from .arrays import F32, I32, i64, windows
from .linear import conv_shape
from .qnode import QNode, check_mult_shift
from .registry import implements


@dataclass(eq=False)
class _Pool(Node):
    kernel_size: tuple = (2, 2)
    stride: tuple | None = None
    padding: tuple = (0, 0)

    def __post_init__(self):
        self.kernel_size = pair(self.kernel_size)
        self.stride = self.kernel_size if self.stride is None else pair(self.stride)
        self.padding = pair(self.padding)

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        need_rank(self.op, s, 3, "(C, H, W)")
        return conv_shape(self, s, s[0])


def gap_shape(node, in_shapes):
    (s,) = in_shapes
    need_rank(node.op, s, 3, "(C, H, W)")
    return (s[0],)


@register
@dataclass(eq=False)
class MaxPool2d(_Pool):
    """Max over each window (padding counts as -inf)."""
    op = "ann.MaxPool2d"
    prefix = "maxpool"


@register
@dataclass(eq=False)
class AvgPool2d(_Pool):
    """Mean over each window (zero padding counted, as PyTorch's count_include_pad=True)."""
    op = "ann.AvgPool2d"
    prefix = "avgpool"


@register
@dataclass(eq=False)
class GlobalAvgPool2d(Node):
    """Mean over H and W: (C, H, W) -> (C,)."""
    op = "ann.GlobalAvgPool2d"
    prefix = "gap"

    def out_shape(self, in_shapes):
        return gap_shape(self, in_shapes)


@register
@dataclass(eq=False)
class QMaxPool2d(QNode, _Pool):
    """Max over each window; padding counts as -128."""
    op = "q.MaxPool2d"
    prefix = "qmaxpool"


@register
@dataclass(eq=False)
class QAvgPool2d(QNode, _Pool):
    """Window sum (zero padding counted) requantised: clamp(round_shift(sum * m, s), -128, 127)."""
    op = "q.AvgPool2d"
    prefix = "qavgpool"
    multiplier: int = 1
    shift: int = 0

    def __post_init__(self):
        _Pool.__post_init__(self)
        check_mult_shift(self, "multiplier", "shift")


@register
@dataclass(eq=False)
class QGlobalAvgPool2d(QNode):
    """(C, H, W) -> (C,): clamp(round_shift(sum over H, W * m, s), -128, 127)."""
    op = "q.GlobalAvgPool2d"
    prefix = "qgap"
    multiplier: int = 1
    shift: int = 0

    def __post_init__(self):
        check_mult_shift(self, "multiplier", "shift")

    def out_shape(self, in_shapes):
        return gap_shape(self, in_shapes)


# -- reference rules -------------------------------------------------------------------------------

def maxpool2d(x, kernel, stride, padding):
    return windows(x, kernel, stride, padding, -np.inf).max(axis=(-2, -1)).astype(F32, copy=False)


def avgpool2d(x, kernel, stride, padding):
    return windows(x, kernel, stride, padding, 0.0).mean(axis=(-2, -1)).astype(F32, copy=False)


@implements("reference", MaxPool2d)
def max_step(n, st, xs, t):
    return maxpool2d(xs[0], n.kernel_size, n.stride, n.padding)


@implements("reference", AvgPool2d)
def avg_step(n, st, xs, t):
    return avgpool2d(xs[0], n.kernel_size, n.stride, n.padding)


@implements("reference", GlobalAvgPool2d)
def gap_step(n, st, xs, t):
    return xs[0].mean(axis=(2, 3), dtype=F32)


@implements("reference", QMaxPool2d)
def qmax_step(n, st, xs, t):
    return windows(i64(xs[0]), n.kernel_size, n.stride, n.padding, qmath.INT8_MIN).max(axis=(-2, -1)).astype(I32)


@implements("reference", QAvgPool2d)
def qavg_step(n, st, xs, t):
    s = qmath.sat32(windows(i64(xs[0]), n.kernel_size, n.stride, n.padding, 0).sum(axis=(-2, -1)))
    return qmath.requant(s, n.multiplier, n.shift).astype(I32)


@implements("reference", QGlobalAvgPool2d)
def qgap_step(n, st, xs, t):
    return qmath.requant(qmath.sat32(i64(xs[0]).sum(axis=(2, 3))), n.multiplier, n.shift).astype(I32)


# -- quantisation (on int8 tensor edges; the scale passes through) ------------------------------------

@implements("quantize", MaxPool2d)
def quantize_max(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    n = e.node
    qz.map[e.name] = (qz._add(QMaxPool2d(n.kernel_size, n.stride, n.padding), src, e.name), "int", s_in)


@implements("quantize", AvgPool2d)
def quantize_avg(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    n = e.node
    m, sh = qmath.quantize_multiplier(1.0 / (n.kernel_size[0] * n.kernel_size[1]))
    node = QAvgPool2d(n.kernel_size, n.stride, n.padding, multiplier=m, shift=sh)
    qz.map[e.name] = (qz._add(node, src, e.name), "int", s_in)


@implements("quantize", GlobalAvgPool2d)
def quantize_gap(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    _, h, w = qz.entry[e.inputs[0]].shape
    m, sh = qmath.quantize_multiplier(1.0 / (h * w))
    qz.map[e.name] = (qz._add(QGlobalAvgPool2d(multiplier=m, shift=sh), src, e.name), "int", s_in)


# -- chip ---------------------------------------------------------------------------------------------

@implements("chip_head", QMaxPool2d)
def chip_max_soma(node, sel, chan, arr) -> list:
    return []  # the dendrite's max is the output


@implements("chip_head", QAvgPool2d, QGlobalAvgPool2d)
def chip_avg_soma(node, sel, chan, arr) -> list:
    n = len(sel)
    return [{"op": "bias", "per_tick": False, "bias": -1},
            {"op": "requant", "mult": arr(np.full(n, node.multiplier), np.int32),
             "shift": arr(np.full(n, node.shift), np.int32), "lo": -128, "hi": 127}]
