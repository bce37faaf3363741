"""Decoders, spike/current -> tensor, emitting a tensor event at the end of each window of
W ticks (windows count ticks from reset): ``bridge.SpikeCount``, ``bridge.MembraneReadout``,
``bridge.FirstSpike`` (float) and ``q.MembraneReadout`` (integer, chip mode). SpikeCount
(rate=False) and FirstSpike are exact on integers and serve integer graphs as they are.

    SpikeCount       count of spikes per window (tumbling: an event every W ticks; sliding:
                     every tick once W ticks have passed), divided by W when ``rate``
    MembraneReadout  v = beta * v + I over the window (integer: v = sat32(round_shift(
                     v * leak_mult, leak_shift) + I)); emits v (float: v / W when ``mean``)
                     at the window's end, then restarts from 0
    FirstSpike       per neuron the phase 0..W-1 of its first spike in the window, W if none
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..domains import CURRENT, SPIKE, TENSOR
from ..errors import GraphError
from ..node import Node, register
from . import records
from .arrays import F32, I32, i64
from .encoders import check_window
from .lif import leak, quantize_leak
from .qnode import QNode, check_mult_shift
from .registry import implements

MAX_CHIP_WINDOW = 1 << 16  # the chip's spike-count and first-spike windows


@dataclass(eq=False)
class Decoder(Node):
    in_domains = (SPIKE,)
    out_domain = TENSOR
    per_tick = True
    stateful = True
    window: int = 16

    def __post_init__(self):
        self.window = check_window(self, self.window)


@register
@dataclass(eq=False)
class SpikeCount(Decoder):
    """Spike count over a window of W ticks (divided by W when ``rate``). Tumbling: one event
    every W ticks; sliding: an event every tick once W ticks have passed."""
    op = "bridge.SpikeCount"
    prefix = "count"
    out_numeric = "any"  # exact small integers (or rates, in float mode)
    mode: str = "tumbling"
    rate: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.mode not in ("tumbling", "sliding"):
            raise GraphError(f"{self.op}: mode must be 'tumbling' or 'sliding', got {self.mode!r}")
        self.rate = bool(self.rate)

    def output_numeric(self, in_numerics):
        # counts are exact integers (fit both modes); rates are fractions: float only
        return "float" if self.rate else "any"


@register
@dataclass(eq=False)
class MembraneReadout(Decoder):
    """Membrane of a non-spiking integrator v = beta v + I over each window of W ticks;
    emits v (v / W when ``mean``) at the window's end, then starts again from 0."""
    op = "bridge.MembraneReadout"
    prefix = "membrane"
    in_domains = (CURRENT, SPIKE)
    beta: float = 1.0
    mean: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= float(self.beta) <= 1.0:
            raise GraphError(f"{self.op}: beta must be in [0, 1], got {self.beta}")
        self.beta, self.mean = float(self.beta), bool(self.mean)


@register
@dataclass(eq=False)
class FirstSpike(Decoder):
    """First-spike time: per neuron, the phase (0..W-1) of its first spike in each window,
    or W if it did not fire; emitted at the window's end."""
    op = "bridge.FirstSpike"
    prefix = "first"
    out_numeric = "any"  # exact small integers


@register
@dataclass(eq=False)
class QMembraneReadout(QNode):
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
        check_mult_shift(self, "leak_mult", "leak_shift")


DECODERS = (Decoder, QMembraneReadout)  # emit at the ends of windows


# -- state -----------------------------------------------------------------------------------------

@implements("state", SpikeCount)
def count_state(node, batch, shape):
    shape = (batch,) + tuple(shape)
    if node.mode == "sliding":
        return {"ring": np.zeros((node.window,) + shape, F32), "count": np.zeros(shape, F32)}
    return {"count": np.zeros(shape, F32)}


@implements("state", MembraneReadout, QMembraneReadout)
def membrane_state(node, batch, shape):
    return {"v": np.zeros((batch,) + tuple(shape), F32 if isinstance(node, MembraneReadout) else I32)}


@implements("state", FirstSpike)
def first_state(node, batch, shape):
    return {"first": np.full((batch,) + tuple(shape), node.window, F32)}


# -- reference rules -------------------------------------------------------------------------------

@implements("reference", SpikeCount)
def count_step(n, st, xs, t):
    s = xs[0]
    div = F32(n.window) if n.rate else F32(1)
    if n.mode == "sliding":
        slot = t % n.window
        st["count"] += s - st["ring"][slot]
        st["ring"][slot] = s
        return st["count"] / div if t >= n.window - 1 else None
    st["count"] += s
    if (t + 1) % n.window:
        return None
    out = st["count"] / div
    st["count"] = np.zeros_like(st["count"])
    return out


@implements("reference", MembraneReadout)
def membrane_step(n, st, xs, t):
    st["v"] = (F32(n.beta) * st["v"] + xs[0]).astype(F32)
    if (t + 1) % n.window:
        return None
    out = st["v"] / F32(n.window) if n.mean else st["v"].copy()
    st["v"] = np.zeros_like(st["v"])
    return out


@implements("reference", QMembraneReadout)
def qmembrane_step(n, st, xs, t):
    st["v"] = qmath.sat32(leak(st["v"], n.leak_mult, n.leak_shift) + i64(xs[0])).astype(I32)
    if (t + 1) % n.window:
        return None
    out = st["v"]
    st["v"] = np.zeros_like(out)
    return out


@implements("reference", FirstSpike)
def first_step(n, st, xs, t):
    w = n.window
    phase = t % w
    st["first"] = np.where((st["first"] == w) & (xs[0] > 0), F32(phase), st["first"])
    if phase != w - 1:
        return None
    out = st["first"].copy()
    st["first"][...] = w
    return out


# -- quantisation ----------------------------------------------------------------------------------

@implements("quantize", MembraneReadout)
def quantize_membrane(qz, e, src, kind, s_in):
    n, name = e.node, e.name
    if qz.users[name] or name not in qz.plan.outputs.values():
        raise GraphError(f"quantize: membrane readout `{name}` feeds further layers "
                         f"({', '.join(qz.users[name])}); tr.quantize supports readouts at outputs only")
    lm, ls = quantize_leak(n.beta)
    new = qz._add(QMembraneReadout(window=n.window, leak_mult=lm, leak_shift=ls), src, name)
    qz.map[name] = (new, "int", s_in / n.window if n.mean else s_in)


@implements("quantize", SpikeCount)
def quantize_count(qz, e, src, kind, s_in):
    n, name = e.node, e.name
    if n.window > 127 and qz.users[name]:
        raise GraphError(f"quantize: spike count `{name}` over {n.window} ticks does not fit int8")
    qz.map[name] = (qz._add(n.copy(rate=False), src, name), "int", 1.0 / n.window if n.rate else 1.0)


@implements("quantize", FirstSpike)
def quantize_first(qz, e, src, kind, s_in):
    qz.map[e.name] = (qz._add(e.node.copy(), src, e.name), "int", 1.0)


# -- chip records ------------------------------------------------------------------------------------

@implements("chip_stage", QMembraneReadout)
def membrane_record(node, shape, sel, arr):
    return {"op": "membrane", "window": node.window, "leak_mult": node.leak_mult, "leak_shift": node.leak_shift}


@implements("chip_stage", SpikeCount)
def count_record(node, shape, sel, arr):
    return {"op": "spikecount", "window": node.window, "sliding": node.mode == "sliding"}


@implements("chip_stage", FirstSpike)
def first_record(node, shape, sel, arr):
    return {"op": "firstspike", "window": node.window}


def membrane_from_record(rec, arrays, n):
    return QMembraneReadout(window=records.get(rec, "window", arrays, n, 1, 2 ** 31),
                            leak_mult=records.get(rec, "leak_mult", arrays, n, 0, qmath.MULT_LIMIT - 1),
                            leak_shift=records.get(rec, "leak_shift", arrays, n, 0, qmath.SHIFT_LIMIT))


def count_from_record(rec, arrays, n):
    return SpikeCount(window=records.get(rec, "window", arrays, n, 1, MAX_CHIP_WINDOW),
                      mode="sliding" if records.get_bool(rec, "sliding") else "tumbling")


def first_from_record(rec, arrays, n):
    return FirstSpike(window=records.get(rec, "window", arrays, n, 1, MAX_CHIP_WINDOW))
