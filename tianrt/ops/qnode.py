"""What the integer (chip mode, ``tr.q``) nodes share: the base class and the checks of
their integer parameters (int8 weights, int32 biases, multiplier/shift pairs, conv geometry).

Ranges come from ``tianrt.kernels.limits``, the one definition of chip-mode integer ranges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GraphError, ShapeError
from ..kernels.limits import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, MULT_LIMIT, SHIFT_LIMIT
from ..node import Node, pair
from . import params


@dataclass(eq=False)
class QNode(Node):
    in_numeric = "int"
    out_numeric = "int"


def int_array(node, name, value, shape, dtype, lo, hi):
    a = np.asarray(value)
    if a.shape != tuple(shape):
        raise ShapeError(f"{node.op}: {name} has shape {a.shape}, expected {tuple(shape)}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise GraphError(f"{node.op}: {name} must hold integers")
    if a.size and (a.min() < lo or a.max() > hi):
        raise GraphError(f"{node.op}: {name} must lie in [{lo}, {hi}], got [{a.min()}, {a.max()}]")
    return np.ascontiguousarray(a.astype(dtype))


def check_requant(node, out):
    """Per-channel multiplier/shift arrays of length ``out`` and the clamp range lo..hi."""
    node.multiplier = int_array(node, "multiplier", np.broadcast_to(node.multiplier, (out,)),
                                (out,), np.int32, 0, MULT_LIMIT - 1)
    node.shift = int_array(node, "shift", np.broadcast_to(node.shift, (out,)), (out,), np.int32,
                           0, SHIFT_LIMIT)
    node.lo, node.hi = int(node.lo), int(node.hi)
    if not INT8_MIN <= node.lo <= node.hi <= INT8_MAX:
        raise GraphError(f"{node.op}: need -128 <= lo <= hi <= 127, got lo={node.lo} hi={node.hi}")


def check_mult_shift(node, m_name, s_name, *, per_neuron=False):
    """A fixed-point factor ``m * 2**-s``: m in [0, 2**15), s in [0, 62]; one number each,
    or (``per_neuron``) one value per neuron."""
    m = params.number(node, m_name, getattr(node, m_name), 0, MULT_LIMIT - 1, integer=True)
    s = params.number(node, s_name, getattr(node, s_name), 0, SHIFT_LIMIT, integer=True)
    if not per_neuron and not (params.is_scalar(m) and params.is_scalar(s)):
        raise GraphError(f"{node.op}: {m_name} and {s_name} are one number each for the layer")
    setattr(node, m_name, m)
    setattr(node, s_name, s)


def check_int32(node, *names):
    for name in names:
        v = getattr(node, name)
        if isinstance(v, np.ndarray) or isinstance(v, float) and not float(v).is_integer():
            raise GraphError(f"{node.op}: {name} must be one integer, got {v!r}")
        v = int(v)
        if not INT32_MIN <= v <= INT32_MAX:
            raise GraphError(f"{node.op}: {name} must be an int32, in [{INT32_MIN}, {INT32_MAX}], got {v}")
        setattr(node, name, v)


def int8_param(node, name, shape):
    """An int8 weight-like field (zeros when not given)."""
    v = getattr(node, name)
    setattr(node, name, int_array(node, name, np.zeros(shape) if v is None else v, shape, np.int8,
                                  INT8_MIN, INT8_MAX))


def bias_param(node, n):
    """The int32 ``bias`` field of length n (zeros when not given)."""
    node.bias = int_array(node, "bias", np.zeros(n) if node.bias is None else node.bias, (n,), np.int32,
                          INT32_MIN, INT32_MAX)


def conv_params(node):
    """Normalise kernel/stride/padding pairs, then the int8 weight and int32 bias."""
    node.kernel_size, node.stride, node.padding = (pair(node.kernel_size), pair(node.stride),
                                                   pair(node.padding))
    int8_param(node, "weight", (node.out_channels, node.in_channels) + node.kernel_size)
    bias_param(node, node.out_channels)


def positive_scale(node):
    """A scale > 0: a number, or (q.Quantize of a vector input) one per feature."""
    node.scale = params.number(node, "scale", node.scale, above=0.0)
    if isinstance(node.scale, np.ndarray):
        node.scale = node.scale.astype(np.float64)
