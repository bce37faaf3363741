"""Bridges between the tensor (ANN) side and the per-tick (SNN) side.

Encoders (tensor -> spike/current) read the latest tensor value every tick; decoders
(spike/current -> tensor) emit a tensor event at the end of each window. Windows and
encoder phases count ticks from reset. Definitions: docs/semantics.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from .domains import CURRENT, SPIKE, TENSOR
from .errors import GraphError
from .node import Node, register


def _check_window(node, window):
    if int(window) < 1:
        raise GraphError(f"{node.op}: window must be >= 1 tick, got {window}")
    return int(window)


def _check_scale(node, scale):
    if not float(scale) > 0:
        raise GraphError(f"{node.op}: scale must be > 0, got {scale}")
    return float(scale)


@dataclass(eq=False)
class Encoder(Node):
    in_domains = (TENSOR,)
    out_domain = SPIKE
    per_tick = True
    stateful = True


@register
@dataclass(eq=False)
class RateEncoder(Encoder):
    """Deterministic rate code (integrate-and-fire coding): a value x, clipped to [0, 1]
    after division by ``scale``, held for T ticks gives exactly round(x*T) spikes
    (half up)."""
    op = "bridge.RateEncoder"
    prefix = "rate"
    scale: float = 1.0

    def __post_init__(self):
        self.scale = _check_scale(self, self.scale)


@register
@dataclass(eq=False)
class PoissonEncoder(Encoder):
    """Bernoulli spikes with probability clip(x/scale, 0, 1) per tick; seeded, re-seeded on reset."""
    op = "bridge.PoissonEncoder"
    prefix = "poisson"
    scale: float = 1.0
    seed: int = 0

    def __post_init__(self):
        self.scale = _check_scale(self, self.scale)


@register
@dataclass(eq=False)
class LatencyEncoder(Encoder):
    """Time-to-first-spike: one spike per window of W ticks, at phase
    floor((1 - x)(W - 1) + 1/2) for x = clip(value/scale, 0, 1) > 0; none for x = 0."""
    op = "bridge.LatencyEncoder"
    prefix = "latency"
    window: int = 16
    scale: float = 1.0

    def __post_init__(self):
        self.window = _check_window(self, self.window)
        self.scale = _check_scale(self, self.scale)


@register
@dataclass(eq=False)
class DirectCurrent(Encoder):
    """Direct (analog) input: the current gain * x every tick."""
    op = "bridge.DirectCurrent"
    prefix = "direct"
    out_domain = CURRENT
    stateful = False
    gain: float = 1.0


@dataclass(eq=False)
class Decoder(Node):
    in_domains = (SPIKE,)
    out_domain = TENSOR
    per_tick = True
    stateful = True
    window: int = 16

    def __post_init__(self):
        self.window = _check_window(self, self.window)


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


ENCODERS = (RateEncoder, PoissonEncoder, LatencyEncoder, DirectCurrent)
DECODERS = (SpikeCount, MembraneReadout, FirstSpike)
