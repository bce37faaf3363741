"""Encoders, tensor -> spike/current, every tick from the latest tensor value:
``bridge.RateEncoder``, ``bridge.PoissonEncoder``, ``bridge.LatencyEncoder``,
``bridge.DirectCurrent`` (float) and ``q.RateEncoder``, ``q.LatencyEncoder``,
``q.DirectCurrent`` (integer, chip mode). Phases count ticks from reset.

Float, with x = clip(value / scale, 0, 1):
    rate      acc starts at 1/2; acc += x; spike and acc -= 1 when acc >= 1
              (T ticks of x give exactly round-half-up(x T) spikes)
    poisson   spike with probability x (seeded numpy PCG64; its state is checkpointed)
    latency   one spike per window of W ticks, at phase floor((1 - x)(W - 1) + 1/2), none for x = 0
    direct    I = gain * value
Integer, with x = clamp(q, 0, D), D = full_scale standing for 1.0:
    rate      acc starts at floor(D / 2); acc += x; spike and acc -= D when acc >= D
    latency   phase ((D - x)(W - 1) * 2 + D) // (2 D) for x > 0
    direct    I = q * gain (int32)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qmath
from ..domains import CURRENT, SPIKE, TENSOR
from ..errors import GraphError
from ..node import Node, register
from . import records
from .arrays import F32, I32, I64, i64, unit
from .qnode import QNode, check_int32
from .registry import implements


def check_window(node, window):
    if int(window) < 1:
        raise GraphError(f"{node.op}: window must be >= 1 tick, got {window}")
    return int(window)


def check_scale(node, scale):
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
        self.scale = check_scale(self, self.scale)


@register
@dataclass(eq=False)
class PoissonEncoder(Encoder):
    """Bernoulli spikes with probability clip(x/scale, 0, 1) per tick; seeded, re-seeded on reset."""
    op = "bridge.PoissonEncoder"
    prefix = "poisson"
    scale: float = 1.0
    seed: int | None = None  # None: 0 alone, derived per node when added to a graph (Node.draw_defaults)

    def __post_init__(self):
        self.scale = check_scale(self, self.scale)
        self.draws_defaults = self.seed is None
        self.seed = 0 if self.seed is None else int(self.seed)

    def draw_defaults(self, seed):
        self.seed = int(seed)


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
        self.window = check_window(self, self.window)
        self.scale = check_scale(self, self.scale)


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
class _QEncoder(QNode):
    in_domains = (TENSOR,)
    out_domain = SPIKE
    per_tick = True
    stateful = True
    full_scale: int = 127

    def __post_init__(self):
        self.full_scale = int(self.full_scale)
        if not 1 <= self.full_scale <= qmath.INT8_MAX:
            raise GraphError(f"{self.op}: full_scale must be in [1, 127], got {self.full_scale}")


@register
@dataclass(eq=False)
class QRateEncoder(_QEncoder):
    """Integer rate code: x = clamp(q, 0, D); acc starts at floor(D/2); acc += x;
    spike when acc >= D, then acc -= D. D = full_scale stands for 1.0; T ticks give
    exactly round-half-up(T x / D) spikes."""
    op = "q.RateEncoder"
    prefix = "qrate"


@register
@dataclass(eq=False)
class QLatencyEncoder(_QEncoder):
    """One spike per window of W ticks at phase ((D - x)(W - 1) * 2 + D) // (2 D) for
    x = clamp(q, 0, D) > 0."""
    op = "q.LatencyEncoder"
    prefix = "qlatency"
    window: int = 16

    def __post_init__(self):
        super().__post_init__()
        self.window = int(self.window)
        if self.window < 1:
            raise GraphError(f"{self.op}: window must be >= 1 tick")


@register
@dataclass(eq=False)
class QDirectCurrent(QNode):
    """I = q * gain every tick (int32)."""
    op = "q.DirectCurrent"
    prefix = "qdirect"
    in_domains = (TENSOR,)
    out_domain = CURRENT
    per_tick = True
    gain: int = 1

    def __post_init__(self):
        check_int32(self, "gain")


# -- state ------------------------------------------------------------------------------------------

@implements("state", RateEncoder)
def rate_state(node, batch, shape):
    return {"acc": np.full((batch,) + tuple(shape), 0.5, np.float64)}


@implements("state", QRateEncoder)
def qrate_state(node, batch, shape):
    return {"acc": np.full((batch,) + tuple(shape), node.full_scale // 2, I32)}


@implements("state", PoissonEncoder)
def poisson_state(node, batch, shape):
    return {"rng": pack_rng(np.random.default_rng(node.seed))}


def pack_rng(rng) -> np.ndarray:
    """A PCG64 generator's state as 6 uint64 words (a checkpoint field)."""
    s = rng.bit_generator.state
    words = [s["state"]["state"], s["state"]["inc"]]
    return np.array([w >> sh & 0xFFFFFFFFFFFFFFFF for w in words for sh in (64, 0)]
                    + [s["has_uint32"], s["uinteger"]], dtype=np.uint64)


def unpack_rng(a) -> np.random.Generator:
    a = [int(x) for x in a]
    bg = np.random.PCG64()
    bg.state = {"bit_generator": "PCG64", "state": {"state": a[0] << 64 | a[1], "inc": a[2] << 64 | a[3]},
                "has_uint32": a[4], "uinteger": a[5]}
    return np.random.Generator(bg)


# -- reference rules -------------------------------------------------------------------------------

@implements("reference", RateEncoder)
def rate_step(n, st, xs, t):
    st["acc"] += unit(xs[0], n.scale)
    s = st["acc"] >= 1.0
    st["acc"] -= s
    return s.astype(F32)


@implements("reference", PoissonEncoder)
def poisson_step(n, st, xs, t):
    rng = unpack_rng(st["rng"])
    s = (rng.random(xs[0].shape) < unit(xs[0], n.scale)).astype(F32)
    st["rng"] = pack_rng(rng)
    return s


@implements("reference", LatencyEncoder)
def latency_step(n, st, xs, t):
    w = n.window
    x = unit(xs[0], n.scale)
    target = np.floor((1.0 - x) * (w - 1) + 0.5)
    return ((x > 0) & (target == t % w)).astype(F32)


@implements("reference", DirectCurrent)
def direct_step(n, st, xs, t):
    return (xs[0] * F32(n.gain)).astype(F32)


@implements("reference", QRateEncoder)
def qrate_step(n, st, xs, t):
    d = n.full_scale
    acc = i64(st["acc"]) + np.clip(i64(xs[0]), 0, d)
    s = acc >= d
    st["acc"] = (acc - d * s).astype(I32)
    return s.astype(F32)


@implements("reference", QLatencyEncoder)
def qlatency_step(n, st, xs, t):
    d, w = n.full_scale, n.window
    x = np.clip(i64(xs[0]), 0, d)
    phase = ((d - x) * (w - 1) * 2 + d) // (2 * d)
    return ((x > 0) & (phase == t % w)).astype(F32)


@implements("reference", QDirectCurrent)
def qdirect_step(n, st, xs, t):
    return qmath.sat32(i64(xs[0]) * I64(n.gain)).astype(I32)


# -- quantisation ----------------------------------------------------------------------------------

def _full_scale(e, scale, s_in):
    d = int(qmath.round_half_away(scale / s_in))
    if not 1 <= d <= 127:
        raise GraphError(f"quantize: encoder `{e.name}` would need full scale {d} (outside 1..127)")
    return d


@implements("quantize", RateEncoder)
def quantize_rate(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    node = QRateEncoder(full_scale=_full_scale(e, e.node.scale, s_in))
    qz.map[e.name] = (qz._add(node, src, e.name), "spike", 1.0)


@implements("quantize", LatencyEncoder)
def quantize_latency(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    node = QLatencyEncoder(window=e.node.window, full_scale=_full_scale(e, e.node.scale, s_in))
    qz.map[e.name] = (qz._add(node, src, e.name), "spike", 1.0)


@implements("quantize", DirectCurrent)
def quantize_direct(qz, e, src, kind, s_in):
    qz._need(e, kind, "int")
    qz.map[e.name] = (qz._add(QDirectCurrent(gain=1), src, e.name), "current", s_in * e.node.gain)


@implements("quantize", PoissonEncoder)
def quantize_poisson(qz, e, src, kind, s_in):
    raise GraphError(f"quantize: `{e.name}` (PoissonEncoder) has no integer form; use bridge.RateEncoder")


# -- chip records ------------------------------------------------------------------------------------

@implements("chip_stage", QRateEncoder)
def rate_record(node, shape, sel, arr):
    return {"op": "rate", "full_scale": node.full_scale}


@implements("chip_stage", QLatencyEncoder)
def latency_record(node, shape, sel, arr):
    return {"op": "latency", "full_scale": node.full_scale, "window": node.window}


@implements("chip_stage", QDirectCurrent)
def direct_record(node, shape, sel, arr):
    return {"op": "direct", "gain": node.gain}


def rate_from_record(rec, arrays, n):
    return QRateEncoder(full_scale=records.get(rec, "full_scale", arrays, n, 1, 127))


def latency_from_record(rec, arrays, n):
    return QLatencyEncoder(full_scale=records.get(rec, "full_scale", arrays, n, 1, 127),
                           window=records.get(rec, "window", arrays, n, 1, 2 ** 31))


def direct_from_record(rec, arrays, n):
    return QDirectCurrent(gain=records.get(rec, "gain", arrays, n, qmath.INT32_MIN, qmath.INT32_MAX))
