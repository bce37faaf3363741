"""The LIF family: ``snn.LIF`` / ``snn.IF`` (float) and ``q.LIF`` (integer, chip mode).

Float, per tick, per neuron (docs/semantics.md):

    I      = alpha * I_syn + I_in           (only with a current filter, alpha not None)
    v'     = beta * v + I                   (IF: beta = 1)
    s      = v' >= threshold                (not while refractory: then v' = v, no spike)
    v      = v' - threshold * s             reset "subtract"
           = v_reset where s, else v'       reset "zero"
    refrac = refractory after a spike, counting down by one per tick

Integer (docs/integer.md), all int64 intermediates saturated to int32 (sat32):

    I = sat32(round_shift(I_syn * alpha_mult, alpha_shift) + I_in)    (filter on)
    while refrac > 0: refrac -= 1, no charge, no spike
    v' = sat32(round_shift(v * leak_mult, leak_shift) + I)
    s = v' >= threshold;  v = sat32(v' - threshold) or v_reset where s

``beta`` and ``threshold`` (integer: ``threshold``, ``leak_mult``, ``leak_shift``) are a
number or one value per neuron (an array that broadcasts to the neuron shape).
State: ``v`` (starts at v_init), ``i_syn`` (filter on), ``refrac`` (refractory > 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..kernels.limits import INT32_MAX, INT32_MIN, MULT_LIMIT, SHIFT_LIMIT
from ..domains import CURRENT, SPIKE
from ..errors import GraphError
from ..node import Node, register
from . import params, records
from .arrays import F32, I32, I64, i64
from .qnode import check_int32, check_mult_shift
from .registry import implements

RESETS = ("subtract", "zero")


def check_reset(node):
    if node.reset not in RESETS:
        raise GraphError(f"{node.op}: reset must be one of {RESETS}, got {node.reset!r}")


@dataclass(eq=False)
class NeuronNode(Node):
    """Base of spiking neurons: current (or spikes) in, spikes out, every tick."""
    in_domains = (CURRENT, SPIKE)
    out_domain = SPIKE
    per_tick = True
    stateful = True
    per_neuron = ()  # names of parameters that may hold one value per neuron

    def out_shape(self, in_shapes):
        return params.neuron_shape(self, in_shapes)


@register
@dataclass(eq=False)
class LIF(NeuronNode):
    """Leaky integrate-and-fire neuron (charge, fire, reset), optional synaptic filter and
    refractory period. ``alpha=None`` means no current filter; ``beta`` and ``threshold``
    are a number or one value per neuron."""
    op = "snn.LIF"
    prefix = "lif"
    per_neuron = ("beta", "threshold")
    beta: float | np.ndarray = 0.9
    threshold: float | np.ndarray = 1.0
    reset: str = "subtract"
    v_reset: float = 0.0
    refractory: int = 0
    alpha: float | None = None
    v_init: float = 0.0

    def __post_init__(self):
        check_reset(self)
        self.beta = params.number(self, "beta", self.beta, 0.0, 1.0)
        self.threshold = params.number(self, "threshold", self.threshold, above=0.0)
        if self.alpha is not None:
            self.alpha = params.number(self, "alpha", self.alpha, 0.0, 1.0)
            if not params.is_scalar(self.alpha):
                raise GraphError(f"{self.op}: alpha (the current filter) is one number for the layer")
        if int(self.refractory) < 0:
            raise GraphError(f"{self.op}: refractory must be >= 0 ticks, got {self.refractory}")
        self.v_reset, self.v_init, self.refractory = float(self.v_reset), float(self.v_init), int(self.refractory)

    @classmethod
    def from_tau(cls, tau, *, dt: float, **kw):
        """The neuron with membrane time constant ``tau`` (seconds, or one per neuron) at
        the graph's tick ``dt``: beta = exp(-dt / tau). ``dt`` is required: pass the
        graph's, ``LIF.from_tau(0.02, dt=g.dt)``."""
        tau = np.asarray(tau, dtype=np.float64)
        if not float(dt) > 0 or not np.all(tau > 0):
            raise GraphError(f"{cls.op}.from_tau: tau and dt must be > 0 seconds, got tau={tau}, dt={dt}")
        beta = np.exp(-float(dt) / tau)
        return cls(beta=float(beta) if beta.ndim == 0 else beta.astype(np.float32), **kw)


@register
@dataclass(eq=False)
class IF(LIF):
    """Integrate-and-fire: LIF with beta = 1 (no leak)."""
    op = "snn.IF"
    prefix = "if"
    beta: float = 1.0

    def __post_init__(self):
        if not (params.is_scalar(self.beta) and float(self.beta) == 1.0):
            raise GraphError(f"{self.op}: beta is fixed at 1 for IF; use LIF(beta=...) for a leak")
        super().__post_init__()


@register
@dataclass(eq=False)
class QLIF(NeuronNode):
    """Integer LIF: leak v*leak_mult >> leak_shift (rounded), integer threshold; IF is
    leak_mult=1, leak_shift=0. Optional current filter alpha_mult/alpha_shift (None: off).
    ``threshold``, ``leak_mult``, ``leak_shift`` and ``v_init`` are a number or one value per
    neuron (a per-neuron ``v_init`` comes with per-neuron current scales, see tr.quantize)."""
    op = "q.LIF"
    prefix = "qlif"
    in_numeric = "int"
    out_numeric = "int"
    per_neuron = ("threshold", "leak_mult", "leak_shift", "v_init")
    threshold: int | np.ndarray = 1
    leak_mult: int | np.ndarray = 1
    leak_shift: int | np.ndarray = 0
    reset: str = "subtract"
    v_reset: int = 0
    refractory: int = 0
    alpha_mult: int | None = None
    alpha_shift: int = 0
    v_init: int | np.ndarray = 0

    def __post_init__(self):
        check_reset(self)
        check_mult_shift(self, "leak_mult", "leak_shift", per_neuron=True)
        if self.alpha_mult is not None:
            check_mult_shift(self, "alpha_mult", "alpha_shift")
        self.threshold = params.number(self, "threshold", self.threshold, 1, INT32_MAX, integer=True)
        self.v_init = params.number(self, "v_init", self.v_init, INT32_MIN, INT32_MAX, integer=True)
        check_int32(self, "v_reset")
        self.refractory = int(self.refractory)
        if self.refractory < 0:
            raise GraphError(f"{self.op}: refractory must be >= 0 ticks")


# -- state --------------------------------------------------------------------------------------

@implements("state", LIF, QLIF)
def state(node, batch: int, shape: tuple) -> dict:
    """The neuron's state arrays for a batch: v, and i_syn / refrac when used."""
    shape = (batch,) + tuple(shape)
    dt = F32 if isinstance(node, LIF) else I32
    st = {"v": np.full(shape, node.v_init, dt)}
    if (node.alpha if isinstance(node, LIF) else node.alpha_mult) is not None:
        st["i_syn"] = np.zeros(shape, dt)
    if node.refractory:
        st["refrac"] = np.zeros(shape, I32)
    return st


# -- reference rules (numpy, batched) -------------------------------------------------------------

@implements("reference", LIF)
def step(node, st, xs, t):
    n, (i,) = node, xs
    if n.alpha is not None:
        st["i_syn"] = (F32(n.alpha) * st["i_syn"] + i).astype(F32)
        i = st["i_syn"]
    beta, thr = np.asarray(n.beta, F32), np.asarray(n.threshold, F32)
    v = (beta * st["v"] + i).astype(F32)
    if n.refractory:
        active = st["refrac"] == 0
        v = np.where(active, v, st["v"])
        st["refrac"] = np.where(active, 0, st["refrac"] - 1).astype(I32)
    s = v >= thr
    if n.refractory:
        s &= active
        st["refrac"] = np.where(s, n.refractory, st["refrac"]).astype(I32)
    if n.reset == "subtract":
        v = v - thr * s
    else:
        v = np.where(s, F32(n.v_reset), v)
    st["v"] = v.astype(F32)
    return s.astype(F32)


def leak(v, mult, shift):
    """round_shift(v * mult, shift): the integer decay of a membrane or a current."""
    return qmath.round_shift(i64(v) * i64(mult), shift)


@implements("reference", QLIF)
def int_step(node, st, xs, t):
    n, cur = node, i64(xs[0])
    if n.alpha_mult is not None:
        cur = qmath.sat32(leak(st["i_syn"], n.alpha_mult, n.alpha_shift) + cur)
        st["i_syn"] = cur.astype(I32)
    v = qmath.sat32(leak(st["v"], n.leak_mult, n.leak_shift) + cur)
    thr = i64(n.threshold)
    s = v >= thr
    v = qmath.sat32(v - thr * s) if n.reset == "subtract" else np.where(s, I64(n.v_reset), v)
    if n.refractory:
        resting = st["refrac"] > 0  # refractory neurons neither charge nor fire
        s &= ~resting
        v = np.where(resting, st["v"], v)
        st["refrac"] = np.where(resting, st["refrac"] - 1, np.where(s, n.refractory, 0)).astype(I32)
    st["v"] = v.astype(I32)
    return s.astype(F32)


# -- the integer kernel (numba backend's integer mode and the chip emulator) ---------------------

def kernel_params(node, shape) -> tuple:
    """q.LIF's parameters as intmath.lif_step takes them for state arrays of ``shape`` (with
    the batch axis): per-neuron ones as int64 arrays of size 1 (one value) or one per state
    element; "no filter" as alpha_mult = -1."""
    arr = lambda v: params.kernel_array(v, shape, I64)  # noqa: E731
    am = -1 if node.alpha_mult is None else node.alpha_mult
    return (arr(node.threshold), arr(node.leak_mult), arr(node.leak_shift), am, node.alpha_shift,
            node.reset == "zero", node.v_reset, node.refractory)


def kernel_step(kparams, st: dict, x, s_out) -> int:
    """One integer tick on flat arrays (st: flat views of ``state``); returns the spikes."""
    from ..kernels import intmath
    empty = _EMPTY_I32
    return intmath.lif_step(x, st["v"], st.get("i_syn", empty), st.get("refrac", empty), *kparams, s_out)


_EMPTY_I32 = np.zeros(0, I32)


# -- quantisation (tr.quantize) ------------------------------------------------------------------

def quantize_leak(beta):
    """quantize_leak of a number or of one value per neuron: (mult, shift), alike in form."""
    if params.is_scalar(beta):
        return qmath.quantize_leak(beta)
    pairs = np.array([qmath.quantize_leak(float(b)) for b in beta.reshape(-1)], np.int32)
    return pairs[:, 0].reshape(beta.shape), pairs[:, 1].reshape(beta.shape)


def quantize_threshold(theta, scale):
    """The integer threshold theta / scale (rounded, >= 1); a number when both are numbers,
    else one value per neuron (either may be per neuron: a per-neuron current scale comes
    from a synapse with one weight scale per output channel)."""
    if params.is_scalar(theta) and params.is_scalar(scale):
        return qmath.quantize_threshold(theta, scale)
    th, sc = np.broadcast_arrays(np.asarray(theta, np.float64), np.asarray(scale, np.float64))
    return np.array([qmath.quantize_threshold(float(x), float(s)) for x, s in zip(th.reshape(-1), sc.reshape(-1))],
                    np.int32).reshape(th.shape)


@implements("quantize", LIF)
def quantize(qz, e, src, kind, s_in):
    """snn.LIF -> q.LIF on the current scale s_in of its synapse (a number, or one per
    neuron, when the synapse chose a weight scale per output channel: the thresholds and
    the initial membranes are then per neuron too)."""
    n, name = e.node, e.name
    if kind != "current":
        raise GraphError(f"quantize: neuron `{name}` needs an integer current input, got {kind}")
    lm, ls = quantize_leak(n.beta)
    am, ash = (None, 0) if n.alpha is None else qmath.quantize_leak(n.alpha)
    if params.is_scalar(s_in):
        v_init, v_reset = int(qmath.round_half_away(n.v_init / s_in)), int(qmath.round_half_away(n.v_reset / s_in))
    else:
        if n.v_reset != 0.0 and n.reset == "zero":
            raise GraphError(f"quantize: neuron `{name}` resets to v_reset = {n.v_reset:g}, one integer for the "
                             "layer, but its synapse has one current scale per neuron")
        v_init = qmath.round_half_away(np.asarray(n.v_init / s_in, np.float64)).astype(np.int32)
        v_reset = 0
    node = QLIF(threshold=quantize_threshold(n.threshold, s_in), leak_mult=lm, leak_shift=ls,
                reset=n.reset, v_reset=v_reset, refractory=n.refractory,
                alpha_mult=am, alpha_shift=ash, v_init=v_init)
    qz.map[name] = (qz._add(node, src, name), "spike", 1.0)


# -- chip record (compiler writes, firmware_sim reads) --------------------------------------------

RECORD_OP = "lif"


@implements("chip_stage", QLIF)
def record(node, shape, sel, arr) -> dict:
    put = lambda v: records.put(v, shape, sel, arr)  # noqa: E731
    return {"op": RECORD_OP, "threshold": put(node.threshold), "leak_mult": put(node.leak_mult),
            "leak_shift": put(node.leak_shift), "reset_zero": node.reset == "zero", "v_reset": node.v_reset,
            "refractory": node.refractory, "alpha_mult": node.alpha_mult, "alpha_shift": node.alpha_shift,
            "v_init": put(node.v_init)}


def from_record(rec: dict, arrays, n: int) -> QLIF:
    """The q.LIF a record describes for a core of n neurons (RecordError if it is malformed)."""
    g = lambda k, lo, hi, **kw: records.get(rec, k, arrays, n, lo, hi, **kw)  # noqa: E731
    pn = lambda k, lo, hi: g(k, lo, hi, per_neuron=True)  # noqa: E731
    return QLIF(threshold=pn("threshold", 1, INT32_MAX), leak_mult=pn("leak_mult", 0, MULT_LIMIT - 1),
                leak_shift=pn("leak_shift", 0, SHIFT_LIMIT),
                reset="zero" if records.get_bool(rec, "reset_zero") else "subtract",
                v_reset=g("v_reset", INT32_MIN, INT32_MAX), refractory=g("refractory", 0, INT32_MAX),
                alpha_mult=g("alpha_mult", 0, MULT_LIMIT - 1, optional=True),
                alpha_shift=g("alpha_shift", 0, SHIFT_LIMIT), v_init=pn("v_init", INT32_MIN, INT32_MAX))
