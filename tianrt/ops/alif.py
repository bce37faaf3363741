"""The adaptive LIF family: ``snn.ALIF`` (float) and ``q.ALIF`` (integer, chip mode).

A LIF whose threshold rises with every spike and relaxes back (Bellec et al. 2018's
adaptive threshold; spike-frequency adaptation). Float, per tick, per neuron, in this order:

    v'    = beta * v + I
    theta = threshold + adapt * a              (threshold is theta_0, adapt is b)
    s     = v' >= theta
    v     = v' - theta * s                     reset "subtract" (the adapted threshold)
          = v_reset where s, else v'           reset "zero"
    a     = rho * a + s                        (a starts at 0; it counts recent spikes)

Unlike Bellec et al. the spike adds 1 to ``a`` (not 1 - rho): ``adapt`` is the threshold
step of one spike. Integer (docs/integer.md), a in fixed point with ADAPT_ONE = 2**12 per
spike, all intermediates int64 saturated to int32:

    v'    = sat32(round_shift(v * leak_mult, leak_shift) + I)
    theta = sat32(threshold + round_shift(a * adapt_mult, adapt_shift))
    s = v' >= theta;  v = sat32(v' - theta) or v_reset where s
    a     = sat32(round_shift(a * rho_mult, rho_shift) + adapt_inc * s)

Every parameter but the reset is a number or one value per neuron. State: ``v``
(starts at v_init) and ``a`` (starts at 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..errors import GraphError
from ..kernels.limits import INT32_MAX, INT32_MIN, MULT_LIMIT, SHIFT_LIMIT
from ..node import register
from . import params, records
from .arrays import F32, I32, I64, i64
from .lif import NeuronNode, check_reset, leak, quantize_leak, quantize_threshold
from .qnode import check_int32, check_mult_shift
from .registry import implements

ADAPT_ONE = 1 << 12  # q.ALIF's a per spike: the fixed-point unit of the adaptation variable


@register
@dataclass(eq=False)
class ALIF(NeuronNode):
    """Adaptive LIF: threshold + adapt * a with a = rho * a + s (docs/semantics.md)."""
    op = "snn.ALIF"
    prefix = "alif"
    per_neuron = ("beta", "threshold", "adapt", "rho")
    beta: float | np.ndarray = 0.9
    threshold: float | np.ndarray = 1.0
    adapt: float | np.ndarray = 0.2
    rho: float | np.ndarray = 0.95
    reset: str = "subtract"
    v_reset: float = 0.0
    v_init: float = 0.0

    def __post_init__(self):
        check_reset(self)
        self.beta = params.number(self, "beta", self.beta, 0.0, 1.0)
        self.threshold = params.number(self, "threshold", self.threshold, above=0.0)
        self.adapt = params.number(self, "adapt", self.adapt, 0.0)
        self.rho = params.number(self, "rho", self.rho, 0.0, 1.0)
        self.v_reset, self.v_init = float(self.v_reset), float(self.v_init)

    @classmethod
    def from_tau(cls, tau, tau_adapt, *, dt: float, **kw):
        """beta = exp(-dt / tau) and rho = exp(-dt / tau_adapt), at the graph's tick ``dt``
        (required: ``ALIF.from_tau(0.02, 0.2, dt=g.dt)``)."""
        tau, tau_a = np.asarray(tau, np.float64), np.asarray(tau_adapt, np.float64)
        if not float(dt) > 0 or not np.all(tau > 0) or not np.all(tau_a > 0):
            raise GraphError(f"{cls.op}.from_tau: tau, tau_adapt and dt must be > 0 seconds")
        f = lambda x: float(x) if x.ndim == 0 else x.astype(np.float32)  # noqa: E731
        return cls(beta=f(np.exp(-float(dt) / tau)), rho=f(np.exp(-float(dt) / tau_a)), **kw)


@register
@dataclass(eq=False)
class QALIF(NeuronNode):
    """Integer adaptive LIF (formulas in the module docstring)."""
    op = "q.ALIF"
    prefix = "qalif"
    in_numeric = "int"
    out_numeric = "int"
    per_neuron = ("threshold", "leak_mult", "leak_shift", "adapt_mult", "adapt_shift", "rho_mult", "rho_shift")
    threshold: int | np.ndarray = 1
    leak_mult: int | np.ndarray = 1
    leak_shift: int | np.ndarray = 0
    adapt_mult: int | np.ndarray = 0
    adapt_shift: int | np.ndarray = 0
    rho_mult: int | np.ndarray = 1
    rho_shift: int | np.ndarray = 0
    adapt_inc: int = ADAPT_ONE
    reset: str = "subtract"
    v_reset: int = 0
    v_init: int = 0

    def __post_init__(self):
        check_reset(self)
        for m, s in (("leak_mult", "leak_shift"), ("adapt_mult", "adapt_shift"), ("rho_mult", "rho_shift")):
            check_mult_shift(self, m, s, per_neuron=True)
        self.threshold = params.number(self, "threshold", self.threshold, 1, INT32_MAX, integer=True)
        self.adapt_inc = params.number(self, "adapt_inc", self.adapt_inc, 0, INT32_MAX, integer=True)
        if not params.is_scalar(self.adapt_inc):
            raise GraphError(f"{self.op}: adapt_inc is one number for the layer")
        check_int32(self, "v_reset", "v_init")


@implements("state", ALIF, QALIF)
def state(node, batch: int, shape: tuple) -> dict:
    shape = (batch,) + tuple(shape)
    dt = F32 if isinstance(node, ALIF) else I32
    return {"v": np.full(shape, node.v_init, dt), "a": np.zeros(shape, dt)}


@implements("reference", ALIF)
def step(node, st, xs, t):
    n = node
    f = lambda x: np.asarray(x, F32)  # noqa: E731
    v = (f(n.beta) * st["v"] + xs[0]).astype(F32)
    theta = (f(n.threshold) + f(n.adapt) * st["a"]).astype(F32)
    s = v >= theta
    v = np.where(s, F32(n.v_reset) if n.reset == "zero" else v - theta, v)
    st["v"] = v.astype(F32)
    st["a"] = (f(n.rho) * st["a"] + s.astype(F32)).astype(F32)
    return s.astype(F32)


@implements("reference", QALIF)
def int_step(node, st, xs, t):
    n, a = node, i64(st["a"])
    v = qmath.sat32(leak(st["v"], n.leak_mult, n.leak_shift) + i64(xs[0]))
    theta = qmath.sat32(i64(n.threshold) + leak(a, n.adapt_mult, n.adapt_shift))
    s = v >= theta
    v = np.where(s, I64(n.v_reset) if n.reset == "zero" else qmath.sat32(v - theta), v)
    st["v"] = v.astype(I32)
    st["a"] = qmath.sat32(leak(a, n.rho_mult, n.rho_shift) + I64(n.adapt_inc) * s).astype(I32)
    return s.astype(F32)


def kernel_params(node, shape) -> tuple:
    """q.ALIF's parameters as intmath.alif_step takes them (int64 arrays of size 1 or n)."""
    arr = lambda v: params.kernel_array(v, shape, I64)  # noqa: E731
    return (arr(node.threshold), arr(node.leak_mult), arr(node.leak_shift), arr(node.adapt_mult),
            arr(node.adapt_shift), arr(node.rho_mult), arr(node.rho_shift), node.adapt_inc,
            node.reset == "zero", node.v_reset)


def kernel_step(kparams, st: dict, x, s_out) -> int:
    from ..kernels import intmath
    return intmath.alif_step(x, st["v"], st["a"], *kparams, s_out)


def _multiplier(x):
    """(mult, shift) of a non-negative real (0 gives (0, 0)), for a number or an array."""
    if np.ndim(x) == 0:
        return qmath.quantize_multiplier(float(x))
    return qmath.quantize_multipliers(x)


@implements("quantize", ALIF)
def quantize(qz, e, src, kind, s_in):
    """snn.ALIF -> q.ALIF on the current scale s_in: theta_0 and v in units of s_in, a in
    units of 1 / ADAPT_ONE spikes, so adapt * a / s_in = (adapt / (s_in ADAPT_ONE)) a_q."""
    n, name = e.node, e.name
    if kind != "current":
        raise GraphError(f"quantize: neuron `{name}` needs an integer current input, got {kind}")
    lm, ls = quantize_leak(n.beta)
    rm, rs = quantize_leak(n.rho)
    step_units = np.asarray(n.adapt, np.float64) / (s_in * ADAPT_ONE)
    if np.any(step_units >= MULT_LIMIT):
        raise GraphError(f"quantize: `{name}` adapt / current scale is too large for q.ALIF "
                         f"({float(np.max(step_units)) * ADAPT_ONE:.3g} current units per spike)")
    bm, bs = _multiplier(step_units)
    rnd = lambda v: int(qmath.round_half_away(v / s_in))  # noqa: E731
    node = QALIF(threshold=quantize_threshold(n.threshold, s_in), leak_mult=lm, leak_shift=ls,
                 adapt_mult=bm, adapt_shift=bs, rho_mult=rm, rho_shift=rs, reset=n.reset,
                 v_reset=rnd(n.v_reset), v_init=rnd(n.v_init))
    qz.map[name] = (qz._add(node, src, name), "spike", 1.0)


RECORD_OP = "alif"
_PER_NEURON = QALIF.per_neuron


@implements("chip_stage", QALIF)
def record(node, shape, sel, arr) -> dict:
    rec = {"op": RECORD_OP}
    for k in _PER_NEURON:
        rec[k] = records.put(getattr(node, k), shape, sel, arr)
    rec.update(adapt_inc=node.adapt_inc, reset_zero=node.reset == "zero", v_reset=node.v_reset,
               v_init=node.v_init)
    return rec


def from_record(rec: dict, arrays, n: int) -> QALIF:
    ranges = {"threshold": (1, INT32_MAX), "leak_mult": (0, MULT_LIMIT - 1), "leak_shift": (0, SHIFT_LIMIT),
              "adapt_mult": (0, MULT_LIMIT - 1), "adapt_shift": (0, SHIFT_LIMIT),
              "rho_mult": (0, MULT_LIMIT - 1), "rho_shift": (0, SHIFT_LIMIT), "adapt_inc": (0, INT32_MAX),
              "v_reset": (INT32_MIN, INT32_MAX), "v_init": (INT32_MIN, INT32_MAX)}
    kw = {k: records.get(rec, k, arrays, n, lo, hi, per_neuron=k in _PER_NEURON) for k, (lo, hi) in ranges.items()}
    return QALIF(reset="zero" if records.get_bool(rec, "reset_zero") else "subtract", **kw)
