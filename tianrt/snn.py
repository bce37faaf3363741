"""SNN nodes: synapses (spike or current in, current out) and neurons (current in, spikes
out), all stepping every tick and keeping state. Equations: docs/semantics.md."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ann
from .domains import CURRENT, SPIKE
from .errors import GraphError, ShapeError
from .node import Node, as_array, init_uniform, register

RESETS = ("subtract", "zero")


@register
@dataclass(eq=False)
class Dense(ann.Dense):
    """Synapse I = W s + b per tick; W (out, in). Event-driven on the fast backends."""
    op = "snn.Dense"
    prefix = "syn"
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    per_tick = True


@register
@dataclass(eq=False)
class Conv2d(ann.Conv2d):
    """Convolutional synapse, I = conv(W, s) + b per tick; W (out, in, kh, kw)."""
    op = "snn.Conv2d"
    prefix = "sconv"
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    per_tick = True


@register
@dataclass(eq=False)
class Recurrent(Node):
    """Recurrent synapse: I = W x + W_rec r + b, with two inputs: the feed-forward spikes x
    and the layer's own spikes of the previous tick r (a ``Graph.delay`` edge)."""
    op = "snn.Recurrent"
    prefix = "rsyn"
    in_domains = (SPIKE, CURRENT)
    out_domain = CURRENT
    arity = 2
    per_tick = True
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    bias: np.ndarray | None = None
    seed: int = 0

    def __post_init__(self):
        n, m = self.out_features, self.in_features
        self.weight = (init_uniform((n, m), m, self.seed) if self.weight is None
                       else as_array(self, "weight", self.weight, (n, m)))
        self.weight_rec = (init_uniform((n, n), n, self.seed + 1) if self.weight_rec is None
                           else as_array(self, "weight_rec", self.weight_rec, (n, n)))
        self.bias = (np.zeros(n, np.float32) if self.bias is None
                     else as_array(self, "bias", self.bias, (n,)))

    def out_shape(self, in_shapes):
        x, r = (tuple(s) for s in in_shapes)
        if x != (self.in_features,):
            raise ShapeError(f"{self.op} expects feed-forward input ({self.in_features},), got {x}")
        if r != (self.out_features,):
            raise ShapeError(f"{self.op} expects recurrent input ({self.out_features},), got {r}")
        return (self.out_features,)


@register
@dataclass(eq=False)
class LIF(Node):
    """Leaky integrate-and-fire neuron (charge, fire, reset), optional synaptic filter and
    refractory period. ``alpha=None`` means no current filter."""
    op = "snn.LIF"
    prefix = "lif"
    in_domains = (CURRENT, SPIKE)
    out_domain = SPIKE
    per_tick = True
    stateful = True
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    v_reset: float = 0.0
    refractory: int = 0
    alpha: float | None = None
    v_init: float = 0.0

    def __post_init__(self):
        if self.reset not in RESETS:
            raise GraphError(f"{self.op}: reset must be one of {RESETS}, got {self.reset!r}")
        if not 0.0 <= float(self.beta) <= 1.0:
            raise GraphError(f"{self.op}: beta must be in [0, 1], got {self.beta}")
        if self.alpha is not None and not 0.0 <= float(self.alpha) <= 1.0:
            raise GraphError(f"{self.op}: alpha must be in [0, 1] or None, got {self.alpha}")
        if float(self.threshold) <= 0:
            raise GraphError(f"{self.op}: threshold must be > 0, got {self.threshold}")
        if int(self.refractory) < 0:
            raise GraphError(f"{self.op}: refractory must be >= 0 ticks, got {self.refractory}")
        self.beta, self.threshold = float(self.beta), float(self.threshold)
        self.v_reset, self.v_init, self.refractory = float(self.v_reset), float(self.v_init), int(self.refractory)
        self.alpha = None if self.alpha is None else float(self.alpha)

    @classmethod
    def from_tau(cls, tau: float, dt: float = 1e-3, **kw) -> "LIF":
        """beta = exp(-dt / tau)."""
        return cls(beta=float(np.exp(-dt / tau)), **kw)


@register
@dataclass(eq=False)
class IF(LIF):
    """Integrate-and-fire: LIF with beta = 1 (no leak)."""
    op = "snn.IF"
    prefix = "if"
    beta: float = 1.0

    def __post_init__(self):
        if float(self.beta) != 1.0:
            raise GraphError(f"{self.op}: beta is fixed at 1 for IF; use LIF(beta=...) for a leak")
        super().__post_init__()


@register
@dataclass(eq=False)
class LI(Node):
    """Leaky integrator readout, v = beta v + I, no spikes: emits its membrane every tick."""
    op = "snn.LI"
    prefix = "li"
    in_domains = (CURRENT, SPIKE)
    out_domain = CURRENT
    per_tick = True
    stateful = True
    beta: float = 1.0
    v_init: float = 0.0

    def __post_init__(self):
        if not 0.0 <= float(self.beta) <= 1.0:
            raise GraphError(f"{self.op}: beta must be in [0, 1], got {self.beta}")
        self.beta, self.v_init = float(self.beta), float(self.v_init)


NEURONS = (LIF, IF, LI)
SYNAPSES = (Dense, Conv2d, Recurrent)
