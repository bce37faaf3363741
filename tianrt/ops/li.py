"""The leaky integrator readout: ``snn.LI`` (float) and ``q.LI`` (integer, chip mode).
No spikes: it emits its membrane every tick (a current), e.g. as the readout layer of a
directly trained SNN.

Float:    v = beta * v + I                                  (v starts at v_init)
Integer:  v = sat32(round_shift(v * leak_mult, leak_shift) + I)

``beta`` (integer: ``leak_mult`` / ``leak_shift``) is a number or one value per neuron.
State: ``v``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..domains import CURRENT, SPIKE
from ..node import Node, register
from . import params, records
from .arrays import F32, I32, i64
from .lif import leak, quantize_leak
from .qnode import QNode, check_int32, check_mult_shift
from .registry import implements
from ..kernels.limits import INT32_MAX, INT32_MIN, MULT_LIMIT, SHIFT_LIMIT


@dataclass(eq=False)
class _Integrator(Node):
    in_domains = (CURRENT, SPIKE)
    out_domain = CURRENT
    per_tick = True
    stateful = True
    per_neuron = ()

    def out_shape(self, in_shapes):
        return params.neuron_shape(self, in_shapes)


@register
@dataclass(eq=False)
class LI(_Integrator):
    """Leaky integrator readout, v = beta v + I, no spikes: emits its membrane every tick."""
    op = "snn.LI"
    prefix = "li"
    per_neuron = ("beta",)
    beta: float | np.ndarray = 1.0
    v_init: float = 0.0

    def __post_init__(self):
        self.beta = params.number(self, "beta", self.beta, 0.0, 1.0)
        self.v_init = float(self.v_init)


@register
@dataclass(eq=False)
class QLI(_Integrator, QNode):
    """Integer leaky integrator readout: v = sat32(round_shift(v*leak_mult, leak_shift) + I)."""
    op = "q.LI"
    prefix = "qli"
    in_numeric = "int"
    out_numeric = "int"
    per_neuron = ("leak_mult", "leak_shift")
    leak_mult: int | np.ndarray = 1
    leak_shift: int | np.ndarray = 0
    v_init: int = 0

    def __post_init__(self):
        check_mult_shift(self, "leak_mult", "leak_shift", per_neuron=True)
        check_int32(self, "v_init")


@implements("state", LI, QLI)
def state(node, batch, shape):
    return {"v": np.full((batch,) + tuple(shape), node.v_init, F32 if isinstance(node, LI) else I32)}


@implements("reference", LI)
def step(n, st, xs, t):
    st["v"] = (np.asarray(n.beta, F32) * st["v"] + xs[0]).astype(F32)
    return st["v"].copy()


@implements("reference", QLI)
def int_step(n, st, xs, t):
    st["v"] = qmath.sat32(leak(st["v"], n.leak_mult, n.leak_shift) + i64(xs[0])).astype(I32)
    return st["v"].copy()


@implements("quantize", LI)
def quantize(qz, e, src, kind, s_in):
    lm, ls = quantize_leak(e.node.beta)
    node = QLI(leak_mult=lm, leak_shift=ls, v_init=int(qmath.round_half_away(e.node.v_init / s_in)))
    qz.map[e.name] = (qz._add(node, src, e.name), "current", s_in)


@implements("chip_stage", QLI)
def record(node, shape, sel, arr) -> dict:
    return {"op": "li", "leak_mult": records.put(node.leak_mult, shape, sel, arr),
            "leak_shift": records.put(node.leak_shift, shape, sel, arr), "v_init": node.v_init}


def from_record(rec, arrays, n) -> QLI:
    g = lambda k, lo, hi: records.get(rec, k, arrays, n, lo, hi, per_neuron=k != "v_init")  # noqa: E731
    return QLI(leak_mult=g("leak_mult", 0, MULT_LIMIT - 1), leak_shift=g("leak_shift", 0, SHIFT_LIMIT),
               v_init=g("v_init", INT32_MIN, INT32_MAX))
