"""Neuron parameters that are a scalar or one value per neuron.

A parameter such as ``beta`` or ``threshold`` is either a Python number (one value for the
whole population) or an array that broadcasts to the neuron shape (one value per neuron,
or per channel as (C, 1, 1)). The node checks the range when it is made and the shape when
the graph is built (``check_shapes``); backends broadcast with ``flat``.
"""
from __future__ import annotations

import numpy as np

from ..errors import GraphError, ShapeError


def number(node, name, value, lo=None, hi=None, *, above=None, integer=False):
    """``value`` checked to lie in [lo, hi] (and > ``above``): a float or int when it is a
    scalar, a float32 / int32 array when it holds one value per neuron."""
    a = np.asarray(value)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise GraphError(f"{node.op}: {name} must be a number or an array of numbers, got {value!r}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise GraphError(f"{node.op}: {name} holds NaN or inf")
    if integer and a.size and a.dtype.kind == "f" and not np.all(a == np.round(a)):
        raise GraphError(f"{node.op}: {name} must hold integers, got {value!r}")
    if a.size == 0:
        raise GraphError(f"{node.op}: {name} is an empty array; give a number or one value per neuron")
    what = f"{node.op}: {name} must be"
    if lo is not None and a.min() < lo or hi is not None and a.max() > hi:
        raise GraphError(f"{what} in [{lo}, {hi}], got {_show(a)}")
    if above is not None and not a.min() > above:
        raise GraphError(f"{what} > {above}, got {_show(a)}")
    if a.ndim == 0:
        return int(a) if integer else float(a)
    return np.ascontiguousarray(a, dtype=np.int32 if integer else np.float32)


def _show(a):
    return repr(a.item()) if a.ndim == 0 else f"values in [{a.min()}, {a.max()}]"


def check_shapes(node, names, shape) -> None:
    """Every array parameter of ``names`` must broadcast to the neuron ``shape``."""
    for name in names:
        v = getattr(node, name)
        if isinstance(v, np.ndarray):
            try:
                np.broadcast_to(v, shape)
            except ValueError:
                raise ShapeError(f"{node.op}: {name} has shape {v.shape}, which does not fit the "
                                 f"neuron shape {tuple(shape)}; give a number or an array of shape "
                                 f"{tuple(shape)} (or one that broadcasts to it)") from None
            if v.ndim > len(shape):
                raise ShapeError(f"{node.op}: {name} has more axes ({v.shape}) than the neurons {tuple(shape)}")


def neuron_shape(node, in_shapes) -> tuple:
    """The out_shape of an elementwise neuron-like node: its input's shape, once its
    per-neuron parameters (``node.per_neuron``) are checked against it."""
    shape = tuple(in_shapes[0])
    check_shapes(node, node.per_neuron, shape)
    return shape


def flat(value, shape, dtype) -> np.ndarray:
    """The parameter as a contiguous 1-D array of one value per neuron."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=dtype), tuple(shape)).reshape(-1))


def is_scalar(value) -> bool:
    return not isinstance(value, np.ndarray)


def kernel_array(value, shape, dtype) -> np.ndarray:
    """A parameter for the kernels, for state arrays of ``shape`` (batch axis included): size
    1 for a scalar (the kernels then read element 0), else one value per state element (the
    per-neuron values repeated over the batch)."""
    if is_scalar(value):
        return np.full(1, value, dtype=dtype)
    return flat(value, shape, dtype)
