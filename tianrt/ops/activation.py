"""Elementwise activations: ``ann.ReLU``, ``ann.ClippedReLU``, ``ann.Sigmoid``, ``ann.Tanh``,
``ann.BatchNorm`` (float) and ``q.Clamp``, ``q.Lookup`` (integer, chip mode).

Float:    max(x, 0); min(max(x, 0), max_value); 1 / (1 + exp(-x)) (in float64); tanh(x);
          BatchNorm (inference) y = scale * x + shift per channel (axis 0), usually folded
          into the layer before it when the graph is built
Integer:  q.Clamp: clamp(x, lo, hi) (ReLU is Clamp(0, 127));
          q.Lookup: table[x + 128] for int8 x (any activation as the soma's table)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..errors import ShapeError
from ..node import Node, as_array, register
from . import records
from .arrays import F32, I32, channel, i64
from .qnode import QNode, int_array
from .registry import implements


@dataclass(eq=False)
class _Elementwise(Node):
    pass


@register
@dataclass(eq=False)
class ReLU(_Elementwise):
    op = "ann.ReLU"
    prefix = "relu"


@register
@dataclass(eq=False)
class ClippedReLU(_Elementwise):
    """min(max(x, 0), max_value): the activation ANN->SNN conversion likes best."""
    op = "ann.ClippedReLU"
    prefix = "crelu"
    max_value: float = 1.0


@register
@dataclass(eq=False)
class Sigmoid(_Elementwise):
    op = "ann.Sigmoid"
    prefix = "sigmoid"


@register
@dataclass(eq=False)
class Tanh(_Elementwise):
    op = "ann.Tanh"
    prefix = "tanh"


@register
@dataclass(eq=False)
class BatchNorm(Node):
    """Inference-mode batch norm over channel axis 0; folded into a preceding Dense/Conv2d
    at build time when that layer feeds nothing else."""
    op = "ann.BatchNorm"
    prefix = "bn"
    num_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    running_mean: np.ndarray | None = None
    running_var: np.ndarray | None = None
    eps: float = 1e-5

    def __post_init__(self):
        n = (self.num_features,)
        self.weight = np.ones(n, np.float32) if self.weight is None else as_array(self, "weight", self.weight, n)
        self.bias = np.zeros(n, np.float32) if self.bias is None else as_array(self, "bias", self.bias, n)
        self.running_mean = (np.zeros(n, np.float32) if self.running_mean is None
                             else as_array(self, "running_mean", self.running_mean, n))
        self.running_var = (np.ones(n, np.float32) if self.running_var is None
                            else as_array(self, "running_var", self.running_var, n))
        if np.any(self.running_var < 0):
            raise ShapeError(f"{self.op}: running_var must be >= 0")

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """The affine map y = scale * x + shift, per channel."""
        scale = self.weight / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        shift = self.bias - self.running_mean * scale
        return scale.astype(np.float32), shift.astype(np.float32)

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) < 1 or s[0] != self.num_features:
            raise ShapeError(f"{self.op} expects {self.num_features} channels on axis 0, got {tuple(s)}")
        return tuple(s)


@register
@dataclass(eq=False)
class Clamp(QNode):
    """clamp(x, lo, hi): ReLU in integer mode is Clamp(0, 127)."""
    op = "q.Clamp"
    prefix = "qclamp"
    lo: int = 0
    hi: int = qmath.INT8_MAX


@register
@dataclass(eq=False)
class Lookup(QNode):
    """y = table[x + 128] for int8 x: any activation (sigmoid, tanh...) as the soma's table."""
    op = "q.Lookup"
    prefix = "qlut"
    table: np.ndarray | None = None

    def __post_init__(self):
        self.table = int_array(self, "table", np.arange(-128, 128) if self.table is None else self.table,
                               (256,), np.int8, qmath.INT8_MIN, qmath.INT8_MAX)


ACTIVATIONS = (ReLU, ClippedReLU, Sigmoid, Tanh)


# -- reference rules -------------------------------------------------------------------------------

@implements("reference", ReLU)
def relu_step(n, st, xs, t):
    return np.maximum(xs[0], F32(0))


@implements("reference", ClippedReLU)
def crelu_step(n, st, xs, t):
    return np.clip(xs[0], F32(0), F32(n.max_value))


@implements("reference", Sigmoid)
def sigmoid_step(n, st, xs, t):
    return (1.0 / (1.0 + np.exp(-xs[0].astype(np.float64)))).astype(F32)


@implements("reference", Tanh)
def tanh_step(n, st, xs, t):
    return np.tanh(xs[0])


@implements("reference", BatchNorm)
def bn_step(n, st, xs, t):
    x = xs[0]
    scale, shift = n.scale_shift()
    return (x * channel(scale, x.ndim) + channel(shift, x.ndim)).astype(F32)


@implements("reference", Clamp)
def clamp_step(n, st, xs, t):
    return np.clip(i64(xs[0]), n.lo, n.hi).astype(I32)


@implements("reference", Lookup)
def lookup_step(n, st, xs, t):
    return n.table.astype(I32)[np.clip(i64(xs[0]), qmath.INT8_MIN, qmath.INT8_MAX) + 128]


# -- quantisation ----------------------------------------------------------------------------------

@implements("quantize", ReLU, ClippedReLU)
def quantize_relu(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    n = e.node
    hi = qmath.INT8_MAX
    if isinstance(n, ClippedReLU):
        hi = int(np.clip(qmath.round_half_away(n.max_value / s_in), 0, 127))
    qz.map[e.name] = (qz._add(Clamp(0, hi), src, e.name), "int", s_in)


@implements("quantize", Sigmoid, Tanh)
def quantize_table(qz, e, src, kind, s_in):
    """The activation sampled at the 256 int8 inputs, output scale 1/127."""
    qz._need(e, kind, "int")
    s_out = 1.0 / 127
    xv = (np.arange(256) - 128) * s_in
    f = 1 / (1 + np.exp(-xv)) if isinstance(e.node, Sigmoid) else np.tanh(xv)
    table = np.clip(qmath.round_half_away(f / s_out), -128, 127)
    qz.map[e.name] = (qz._add(Lookup(table=table), src, e.name), "int", s_out)


# -- chip records ------------------------------------------------------------------------------------

@implements("chip_stage", Clamp)
def clamp_record(node, shape, sel, arr) -> dict:
    return {"op": "clamp", "lo": int(node.lo), "hi": int(node.hi)}


@implements("chip_stage", Lookup)
def lookup_record(node, shape, sel, arr) -> dict:
    return {"op": "lookup", "table": arr(node.table, np.int8)}


def clamp_from_record(rec, arrays, n) -> Clamp:
    lo = records.get(rec, "lo", arrays, n, qmath.INT32_MIN, qmath.INT32_MAX)
    hi = records.get(rec, "hi", arrays, n, qmath.INT32_MIN, qmath.INT32_MAX)
    if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
        raise records.RecordError(f"clamp record: need integers lo <= hi, got lo={lo!r} hi={hi!r}")
    return Clamp(lo, hi)


def lookup_from_record(rec, arrays, n) -> Lookup:
    aid = rec.get("table")
    if not isinstance(aid, int) or isinstance(aid, bool) or not 0 <= aid < len(arrays):
        raise records.RecordError(f"lookup record: table must be an array id, got {aid!r}")
    t = arrays[aid]
    if t.dtype != np.int8 or t.shape != (256,):
        raise records.RecordError(f"lookup record: table is {t.dtype} {t.shape}, expected int8 (256,)")
    return Lookup(table=t)
