"""The soma program of an emulated core: a list of stages, each built from one record of
the image. The records of node-derived stages (LIF, ALIF, LI, encoders, decoders, clamp,
lookup) are decoded by the op family modules of ``tianrt.ops`` -- the same modules the
compiler encodes them with -- and their integer steps are the shared kernels
(``tianrt.kernels.intmath``), so the chip equals the numba backend's integer mode bit for
bit. ``bias`` and ``requant`` are the core's own stages (the compiler writes them for the
layer's head). Values are batched int64 arrays (B, n).
"""
from __future__ import annotations

import numpy as np

from tianrt.kernels import intmath
from tianrt.kernels.limits import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, MULT_LIMIT, SHIFT_LIMIT
from tianrt.ops import activation, alif, decoders, encoders, li, lif, params
from tianrt.ops.records import RecordError, check_fields

I64 = np.int64


class BadRecord(ValueError):
    """A core record that does not describe a valid core (the image is refused)."""


def need(cond, msg):
    if not cond:
        raise BadRecord(msg)


def array_of(arrays, aid, dtype, what):
    need(isinstance(aid, int) and not isinstance(aid, bool) and 0 <= aid < len(arrays),
         f"{what}: array id {aid!r} out of range")
    a = arrays[aid]
    need(a.dtype == np.dtype(dtype), f"{what}: dtype {a.dtype}, expected {np.dtype(dtype)}")
    return a


class Stage:
    """One soma step: ``init(B)`` makes its state, ``run(x, t)`` returns the new value (B, n)
    int64 or None (no emission this tick). ``per_tick`` stages run every tick, the others
    when their input is new; ``spikes`` says the stage emits spikes. ``n_out`` is the width
    of its output (n, except for a folded pooling)."""
    per_tick = True
    spikes = False
    state_values = 4     # int64 values per neuron and inference (held value and the node's state)

    def __init__(self, rec: dict, arrays, n: int):
        self.rec, self.n = rec, n
        self.n_out = n

    def init(self, B: int) -> None:
        self.held = np.zeros((B, self.n), I64)

    def run(self, x: np.ndarray, t: int):
        raise NotImplementedError


class Bias(Stage):
    def __init__(self, rec, arrays, n):
        super().__init__(rec, arrays, n)
        self.per_tick = bool(rec.get("per_tick"))
        aid = rec.get("bias", -1)
        raw = np.zeros(n, np.int32) if aid == -1 else array_of(arrays, aid, np.int32, "bias")
        need(raw.shape == (n,), "bias size differs from the core's neurons")
        self.bias = raw.astype(I64)

    def run(self, x, t):
        return np.clip(x + self.bias, INT32_MIN, INT32_MAX)


class MaxPool(Stage):
    """A max-pooling folded into a convolution's soma: the block (og, bh, bw) of the core's
    neurons, in C order, pooled over windows (py, px) into (og, bh/py, bw/px) values."""
    per_tick = False

    def __init__(self, rec, arrays, n):
        super().__init__(rec, arrays, n)
        block, window = rec.get("block"), rec.get("window")
        need(isinstance(block, list) and len(block) == 3 and isinstance(window, list) and len(window) == 2
             and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in block + window),
             "maxpool stage: block [og, bh, bw] and window [py, px] must be positive integers")
        (og, bh, bw), (py, px) = block, window
        need(og * bh * bw == n and bh % py == 0 and bw % px == 0,
             f"maxpool stage: block {block} of {n} neurons is not whole windows {window}")
        self.shape = (og, bh // py, py, bw // px, px)
        self.n_out = og * (bh // py) * (bw // px)

    def init(self, B):
        self.held = np.zeros((B, self.n_out), I64)

    def run(self, x, t):
        return x.reshape((x.shape[0],) + self.shape).max(axis=(3, 5)).reshape(x.shape[0], self.n_out)


class Requant(Stage):
    per_tick = False

    def __init__(self, rec, arrays, n):
        super().__init__(rec, arrays, n)
        self.mult = np.ascontiguousarray(array_of(arrays, rec["mult"], np.int32, "requant mult"))
        self.shift = np.ascontiguousarray(array_of(arrays, rec["shift"], np.int32, "requant shift"))
        need(self.mult.shape == (n,) and self.shift.shape == (n,), "requant parameters differ from neurons")
        need(bool((self.mult >= 0).all() and (self.mult < MULT_LIMIT).all() and (self.shift >= 0).all()
                  and (self.shift <= SHIFT_LIMIT).all()), "requant multiplier/shift out of range")
        lo, hi = rec["lo"], rec["hi"]
        need(all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi))
             and INT8_MIN <= lo <= hi <= INT8_MAX, f"requant needs -128 <= lo <= hi <= 127, got {lo!r}, {hi!r}")
        self.lo, self.hi = lo, hi

    def run(self, x, t):
        out = np.empty(x.shape, I64)
        intmath.requant_channels(x.reshape(-1), self.mult, self.shift, self.lo, self.hi, 1, out.reshape(-1))
        return out


class NodeStage(Stage):
    """A stage that is a ``tr.q`` node (or an exact float decoder) decoded from its record
    by its op family (``from_record``)."""
    from_record = None

    def __init__(self, rec, arrays, n):
        super().__init__(rec, arrays, n)
        self.node = type(self).from_record(rec, arrays, n)
        check_fields(rec, self.node, n)
        self.per_tick = self.node.per_tick
        self.spikes = self.node.out_domain == "spike"

    def init(self, B):
        super().init(B)
        from tianrt.ops import find
        make = find("state", self.node, None)
        self.st = {} if make is None else {k: v.reshape(-1) for k, v in make(self.node, B, (self.n,)).items()}

    def run(self, x, t):
        out = np.empty(x.shape, I64)
        emitted = self.step(x.reshape(-1), out.reshape(-1), t)
        return out if emitted is not False else None

    def step(self, x, out, t):
        raise NotImplementedError


def _stage(record_fn):
    """A NodeStage subclass whose node is decoded by ``record_fn`` (a family's from_record)."""
    def deco(cls):
        cls.from_record = staticmethod(record_fn)
        return cls
    return deco


@_stage(activation.clamp_from_record)
class Clamp(NodeStage):
    def step(self, x, out, t):
        intmath.clamp_array(x, self.node.lo, self.node.hi, out)


@_stage(activation.lookup_from_record)
class Lookup(NodeStage):
    def step(self, x, out, t):
        intmath.lookup(x, self.node.table, out)


@_stage(lif.from_record)
class LIF(NodeStage):
    family = lif

    def init(self, B):
        super().init(B)
        self.kp = self.family.kernel_params(self.node, (B, self.n))  # per-neuron values repeat over the batch

    def step(self, x, out, t):
        self.count = self.family.kernel_step(self.kp, self.st, x, out)


@_stage(alif.from_record)
class ALIF(LIF):
    family = alif


@_stage(li.from_record)
class LI(NodeStage):
    def init(self, B):
        super().init(B)
        n = self.node
        self.lm = params.kernel_array(n.leak_mult, (B, self.n), I64)
        self.ls = params.kernel_array(n.leak_shift, (B, self.n), I64)

    def step(self, x, out, t):
        intmath.leaky_integrate(x, self.st["v"], self.lm, self.ls)
        out[:] = self.st["v"]


@_stage(decoders.membrane_from_record)
class Membrane(NodeStage):
    def init(self, B):
        super().init(B)
        self.lm, self.ls = np.full(1, self.node.leak_mult, I64), np.full(1, self.node.leak_shift, I64)

    def step(self, x, out, t):
        v = self.st["v"]
        intmath.leaky_integrate(x, v, self.lm, self.ls)
        if (t + 1) % self.node.window:
            return False
        out[:] = v
        v[:] = 0


@_stage(encoders.rate_from_record)
class Rate(NodeStage):
    def step(self, x, out, t):
        intmath.rate_encoder_step(x, self.st["acc"], self.node.full_scale, out)


@_stage(encoders.latency_from_record)
class Latency(NodeStage):
    def step(self, x, out, t):
        intmath.latency_encoder_step(x, self.node.full_scale, self.node.window, t, out)


@_stage(encoders.direct_from_record)
class Direct(NodeStage):
    def step(self, x, out, t):
        intmath.direct_current(x, self.node.gain, out)


@_stage(decoders.count_from_record)
class SpikeCount(NodeStage):
    """Counts in int64 (the chip's counters), the rule of bridge.SpikeCount(rate=False)."""

    @property
    def state_values(self):
        return 4 + (self.node.window if self.node.mode == "sliding" else 0)

    def init(self, B):
        super().init(B)
        self.count = np.zeros((B, self.n), I64)
        self.ring = np.zeros((self.node.window, B, self.n), I64) if self.node.mode == "sliding" else None

    def run(self, x, t):
        w, s = self.node.window, (x != 0).astype(I64)
        if self.ring is not None:
            slot = t % w
            self.count += s - self.ring[slot]
            self.ring[slot] = s
            return self.count.copy() if t >= w - 1 else None
        self.count += s
        if (t + 1) % w:
            return None
        out = self.count.copy()
        self.count[:] = 0
        return out


@_stage(decoders.first_from_record)
class FirstSpike(NodeStage):
    def init(self, B):
        super().init(B)
        self.first = np.full((B, self.n), self.node.window, I64)

    def run(self, x, t):
        w = self.node.window
        phase = t % w
        self.first = np.where((self.first == w) & (x != 0), phase, self.first)
        if phase != w - 1:
            return None
        out = self.first.copy()
        self.first[:] = w
        return out


STAGES = {"bias": Bias, "requant": Requant, "maxpool": MaxPool, "clamp": Clamp, "lookup": Lookup, lif.RECORD_OP: LIF,
          alif.RECORD_OP: ALIF, "li": LI, "membrane": Membrane, "rate": Rate, "latency": Latency,
          "direct": Direct, "spikecount": SpikeCount, "firstspike": FirstSpike}


def make_stage(rec, arrays, n: int) -> Stage:
    """The stage of one soma record (BadRecord when it is unknown or malformed)."""
    cls = STAGES.get(rec.get("op")) if isinstance(rec, dict) else None
    if cls is None:
        raise BadRecord(f"unknown soma op {rec.get('op') if isinstance(rec, dict) else rec!r}")
    try:
        return cls(rec, arrays, n)
    except (RecordError, KeyError) as exc:
        raise BadRecord(f"{rec.get('op')} stage: {exc}") from None
    except ValueError as exc:  # the node's own checks (GraphError is a ValueError)
        raise BadRecord(f"{rec.get('op')} stage: {exc}") from None
