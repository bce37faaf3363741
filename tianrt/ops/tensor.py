"""Structure and the float/integer boundary: ``ann.Flatten``, ``ann.Add``, ``ann.Concat``,
``q.Add``, ``q.Quantize`` and ``q.Dequantize``.

Flatten: (C, H, W) -> (C*H*W,) in C order, any domain. Add: elementwise sum of equal shapes.
Concat: along a per-sample axis, any domain. Flatten and Concat are exact on integers and
serve integer graphs as they are (on the chip they are only address maps).

Integer:  q.Add:        y = clamp(round_shift(sum_k x_k * multipliers[k], shift), lo, hi)
          q.Quantize:   float -> int8, clamp(round_half_away(x / scale), -128, 127) in float64
          q.Dequantize: int -> float32, q * scale
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..domains import CURRENT, SPIKE, TENSOR
from ..errors import GraphError, ShapeError
from ..node import Node, register
from .arrays import F32, I32, I64, i64
from .qnode import QNode, int_array, positive_scale
from .registry import implements


@register
@dataclass(eq=False)
class Flatten(Node):
    """(C, H, W) -> (C*H*W,), C-order as PyTorch. Works on any domain."""
    op = "ann.Flatten"
    prefix = "flatten"
    in_domains = (TENSOR, SPIKE, CURRENT)
    out_domain = None
    in_numeric = "any"
    out_numeric = None

    def out_shape(self, in_shapes):
        return (int(np.prod(in_shapes[0])),)


def equal_shapes(node, in_shapes):
    first = tuple(in_shapes[0])
    for s in in_shapes[1:]:
        if tuple(s) != first:
            raise ShapeError(f"{node.op} needs equal shapes, got {[tuple(x) for x in in_shapes]}")
    return first


@register
@dataclass(eq=False)
class Add(Node):
    """Elementwise sum of two or more inputs of one shape (tensor or current domain)."""
    op = "ann.Add"
    prefix = "add"
    in_domains = (TENSOR, CURRENT)
    out_domain = None
    arity = None

    def out_shape(self, in_shapes):
        return equal_shapes(self, in_shapes)


@register
@dataclass(eq=False)
class Concat(Node):
    """Concatenation along per-sample axis ``axis`` (any domain, all inputs alike)."""
    op = "ann.Concat"
    prefix = "concat"
    in_domains = (TENSOR, SPIKE, CURRENT)
    out_domain = None
    in_numeric = "any"
    out_numeric = None
    arity = None
    axis: int = 0

    def out_shape(self, in_shapes):
        first = list(in_shapes[0])
        ax = self.axis if self.axis >= 0 else len(first) + self.axis
        if not 0 <= ax < len(first):
            raise ShapeError(f"{self.op}: axis {self.axis} out of range for shape {tuple(first)}")
        total = 0
        for s in in_shapes:
            s = list(s)
            if len(s) != len(first) or s[:ax] + s[ax + 1:] != first[:ax] + first[ax + 1:]:
                raise ShapeError(f"{self.op}: shapes {[tuple(x) for x in in_shapes]} differ off axis {ax}")
            total += s[ax]
        first[ax] = total
        return tuple(first)


@register
@dataclass(eq=False)
class QAdd(QNode):
    """y = clamp(round_shift(sum_k x_k * multipliers[k], shift), lo, hi)."""
    op = "q.Add"
    prefix = "qadd"
    arity = None
    multipliers: np.ndarray | None = None
    shift: int = 0
    lo: int = qmath.INT8_MIN
    hi: int = qmath.INT8_MAX

    def __post_init__(self):
        m = np.ones(2) if self.multipliers is None else np.asarray(self.multipliers)
        self.multipliers = int_array(self, "multipliers", m, m.shape, np.int32, 0, qmath.MULT_LIMIT - 1)
        self.shift = int(self.shift)
        if not 0 <= self.shift <= qmath.SHIFT_LIMIT:
            raise GraphError(f"{self.op}: shift must be in [0, {qmath.SHIFT_LIMIT}]")

    def out_shape(self, in_shapes):
        if len(in_shapes) != len(self.multipliers):
            raise ShapeError(f"{self.op} has {len(self.multipliers)} multipliers for {len(in_shapes)} inputs")
        return equal_shapes(self, in_shapes)


@register
@dataclass(eq=False)
class Quantize(Node):
    """float -> int8: clamp(round_half_away(x / scale), -128, 127), computed in float64 (a
    tensor, or a current graph input, which stays a current)."""
    op = "q.Quantize"
    prefix = "quant"
    in_domains = (TENSOR, CURRENT)
    out_domain = None
    in_numeric = "float"
    out_numeric = "int"
    scale: float | np.ndarray = 1.0

    __post_init__ = positive_scale

    def out_shape(self, in_shapes):
        shape = tuple(in_shapes[0])
        if isinstance(self.scale, np.ndarray) and self.scale.shape != shape[-1:]:
            raise ShapeError(f"{self.op}: one scale per feature needs {shape[-1:]} scales, got {self.scale.shape}")
        return shape


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

    __post_init__ = positive_scale


# -- reference rules (Flatten and Concat keep the dtype: exact on integer edges too) ------------------

@implements("reference", Flatten)
def flatten_step(n, st, xs, t):
    x = xs[0]
    return x.reshape(x.shape[0], -1)


@implements("reference", Add)
def add_step(n, st, xs, t):
    return np.sum(xs, axis=0, dtype=F32)


@implements("reference", Concat)
def concat_step(n, st, xs, t):
    return np.concatenate(xs, axis=(n.axis + 1 if n.axis >= 0 else n.axis))


@implements("reference", QAdd)
def qadd_step(n, st, xs, t):
    total = sum(i64(x) * I64(m) for x, m in zip(xs, n.multipliers))
    return qmath.requant(total, 1, n.shift, n.lo, n.hi).astype(I32)


@implements("reference", Quantize)
def quantize_step(n, st, xs, t):
    return qmath.quantize(xs[0], n.scale)


@implements("reference", Dequantize)
def dequantize_step(n, st, xs, t):
    return qmath.dequantize(xs[0], n.scale)


@implements("quantize", Concat)
def quantize_concat(qz, e, src, kind, s_in):
    """A concatenation of spike edges stays one (tensor joins would need a common scale)."""
    kinds = {qz.map[i][1] for i in e.inputs}
    if kinds != {"spike"}:
        raise GraphError(f"quantize: `{e.name}` ({e.node.op}) joins {', '.join(sorted(kinds))} edges; "
                         "tr.quantize joins spike edges only in this version")
    new = qz.g.add(e.node.copy(), *[qz.map[i][0] for i in e.inputs], name=e.name).name
    qz.map[e.name] = (new, "spike", 1.0)


@implements("quantize", Flatten)
def quantize_flatten(qz, e, src, kind, s_in):
    qz.map[e.name] = (qz._add(e.node.copy(), src, e.name), kind, s_in)
