"""One emulated unified core: axon gather, dendrite (crossbar MAC, synaptic integration,
pooling windows, scaled sums, partial-sum merge) and soma program, in integer arithmetic.

Built from one core record of the image (and the image's arrays); the soma program is
soma.py. The arithmetic is the shared integer kernels (tianrt.kernels.intmath), so the
chip equals the numba backend's integer mode bit for bit. Everything is batched: values are int64 arrays (B, n).
"""
from __future__ import annotations

import numpy as np

from tianrt.kernels import intmath

from tianrt.kernels.limits import MULT_LIMIT, SHIFT_LIMIT

from .soma import BadRecord, array_of, make_stage, need  # noqa: F401 (BadRecord re-exported)

I64 = np.int64


def _int(v, what, lo=-(2 ** 63), hi=2 ** 63 - 1):
    need(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi,
          f"{what} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _triple(geo, key):
    v = geo.get(key)
    need(isinstance(v, list) and len(v) in (2, 3), f"dendrite {key} must be a list of 2 or 3 integers")
    return v


def unroll_window(geo: dict, kind: str, weights=None, n: int | None = None, A: int | None = None):
    """The crossbar of a window tile: (mask (N, A) bool, weight (N, A) int8 or None).
    Axons are the patch (channel, row, col) in C order, neurons the block (channel, row, col).
    ``n`` and ``A`` (the core record's neurons and axons) are checked against the geometry
    before anything is allocated."""
    cg, PH, PW = (_int(v, "patch", 1, 1 << 16) for v in _triple(geo, "patch"))
    og, bh, bw = (_int(v, "block", 1, 1 << 16) for v in _triple(geo, "block"))
    kh, kw = (_int(v, "kernel", 1, 1 << 16) for v in _triple(geo, "kernel"))
    sh, sw = (_int(v, "stride", 1, 1 << 16) for v in _triple(geo, "stride"))
    need(PH == (bh - 1) * sh + kh and PW == (bw - 1) * sw + kw, "window patch does not match block and kernel")
    if n is not None:
        need(og * bh * bw == n, f"dendrite block {[og, bh, bw]} has {og * bh * bw} neurons, the record says {n}")
    if A is not None:
        need(cg * PH * PW == A, f"dendrite patch {[cg, PH, PW]} has {cg * PH * PW} axons, the record says {A}")
    need(cg * PH * PW <= 1 << 16 and og * bh * bw <= 1 << 16, "window tile too large")
    o, y, x = np.indices((og, bh, bw)).reshape(3, -1)
    c, py, px = np.indices((cg, PH, PW)).reshape(3, -1)
    dy = py[None, :] - y[:, None] * sh
    dx = px[None, :] - x[:, None] * sw
    valid = (dy >= 0) & (dy < kh) & (dx >= 0) & (dx < kw)
    if kind == "conv":
        need(weights.shape == (og, cg, kh, kw), f"conv kernel shape {weights.shape}, expected {(og, cg, kh, kw)}")
        w = weights[o[:, None], c[None, :], np.clip(dy, 0, kh - 1), np.clip(dx, 0, kw - 1)]
        return valid, np.where(valid, w, 0).astype(np.int8)
    need(og == cg, "a pooling tile needs as many block channels as patch channels")
    valid &= c[None, :] == o[:, None]
    return valid, (valid.astype(np.int8) if kind == "sumpool" else None)


class CoreUnit:
    """A core: gathers its axons from buffers, runs its dendrite and soma, writes its
    neurons' values into its output buffer, and reports its work for the counters."""

    def __init__(self, rec: dict, arrays, buffers: list, spec: dict):
        self.id = _int(rec["id"], "core id", 0, 65534)
        self.layer = str(rec.get("layer", ""))
        self.n = n = _int(rec["n_neurons"], "n_neurons", 1, spec["neurons_per_core"])
        self.n_axons = A = _int(rec["n_axons"], "n_axons", 0, spec["axons_per_core"])
        self.axon_mode = rec["axon_mode"]
        need(self.axon_mode in ("ann", "snn"), "axon_mode must be 'ann' or 'snn'")
        self.per_tick = bool(rec["per_tick"])
        self.segs = []
        total = 0
        for seg in rec["axons"]:
            need(isinstance(seg, list) and len(seg) == 2, "axon segments are [buffer, index array]")
            b = _int(seg[0], "axon buffer", -1, len(buffers) - 1)
            raw = array_of(arrays, seg[1], np.int32, "axon indices")
            need(raw.ndim == 1 and total + raw.size <= A, f"axon indices must be 1-D and hold {A} axons in all")
            idx = raw.astype(np.intp)
            if b >= 0:
                need(idx.size == 0 or (idx.min() >= 0 and idx.max() < buffers[b]["size"]),
                      f"axon indices outside buffer {b}")
            self.segs.append((b, idx))
            total += idx.size
        need(total == A, f"axon segments hold {total} axons, record says {A}")
        self.bufs_in = sorted({b for b, _ in self.segs if b >= 0})
        clock = rec.get("clock", self.bufs_in)
        need(isinstance(clock, list) and all(isinstance(b, int) and 0 <= b < len(buffers) for b in clock),
              "clock must list buffer ids")
        self.clock = sorted(set(clock))
        ob, oid = rec["out"]
        self.out_buf = _int(ob, "output buffer", 0, len(buffers) - 1)
        self.wide = bool(rec.get("wide_out", False))
        self._dendrite(rec["dendrite"], arrays, spec)
        need(isinstance(rec["stages"], list), "stages must be a list")
        self.stages, width = [], n
        for s in rec["stages"]:
            self.stages.append(make_stage(s, arrays, width))
            width = self.stages[-1].n_out
        self.n_out = width
        raw = array_of(arrays, oid, np.int32, "output indices")
        need(raw.shape == (width,), f"output indices are {raw.shape}, the core emits {width} values")
        self.out_idx = raw.astype(np.intp)
        need(self.out_idx.shape == (width,) and (width == 0 or (self.out_idx.min() >= 0
             and self.out_idx.max() < buffers[self.out_buf]["size"])), "output indices do not fit")
        self.spikes_out = bool(self.stages) and self.stages[-1].spikes
        # int64 values per inference this core keeps: held values, one per stage, rings
        self.state_values = n * (1 + sum(s.state_values for s in self.stages))
        self.real = np.concatenate([np.full(i.size, b >= 0) for b, i in self.segs]) if self.segs else np.zeros(0, bool)

    def _dendrite(self, d: dict, arrays, spec):
        n, A = self.n, self.n_axons
        self.kind = kind = d.get("kind")
        self.fill = 0
        self.weight_bytes = 0
        if kind == "mac":
            w = array_of(arrays, d["weight"], np.int8, "weights")
            need(w.shape == (n, A), f"weights {w.shape}, expected {(n, A)}")
            self.w = np.ascontiguousarray(w)
            self.weight_bytes = w.size
            self.mask = None
        elif kind in ("conv", "sumpool", "maxpool"):
            k = array_of(arrays, d["weights"], np.int8, "kernel") if kind == "conv" else None
            mask, w = unroll_window(d, kind, k, n, A)
            need(mask.shape == (n, A), f"window tile is {mask.shape}, record says {(n, A)}")
            self.mask, self.w = mask, w
            self.weight_bytes = 0 if k is None else k.size
            if kind == "maxpool":
                self.fill = -128
                self.win = np.nonzero(mask)[1].reshape(n, -1)
        elif kind in ("add", "merge"):
            self.groups = _int(d["groups"], "groups", 1, A or 1)
            need(self.groups * n == A, f"{kind}: {self.groups} groups of {n} neurons need {self.groups * n} axons")
            if kind == "add":
                m = d["multipliers"]
                need(isinstance(m, list) and len(m) == self.groups, "add: one multiplier per input")
                self.mult = np.array([_int(v, "multiplier", 0, 2 ** 15 - 1) for v in m], I64)
        elif kind == "pass":
            need(A == n, "a pass-through core has one axon per neuron")
        else:
            raise BadRecord(f"unknown dendrite kind {kind!r}")
        self._rescale_field(d, arrays)
        need(self.weight_bytes <= spec["weight_bytes_per_core"],
              f"{self.weight_bytes} weight bytes exceed the core's {spec['weight_bytes_per_core']}")
        if self.kind in ("mac", "conv", "sumpool"):
            self.wt = np.ascontiguousarray(self.w.T)
        if self.kind == "mac":
            self.fanout = np.full(A, n, I64)
        elif self.kind in ("conv", "sumpool", "maxpool"):
            self.fanout = self.mask.sum(0).astype(I64)

    def _rescale_field(self, d: dict, arrays) -> None:
        """A ``mac`` or ``merge`` dendrite's optional ``rescale``: the first ``axons`` axons
        (``groups`` groups) sum apart and their sum is rescaled per neuron
        (intmath.rescale) before the rest is added (a q.SynRecurrent's feed-forward product)."""
        self.split = None
        r = d.get("rescale")
        if r is None:
            return
        need(isinstance(r, dict) and self.kind in ("mac", "merge"), "rescale: only a mac or merge dendrite has one")
        key, top = ("axons", self.n_axons) if self.kind == "mac" else ("groups", self.groups)
        count = _int(r.get(key), f"rescale {key}", 0, top)
        self.r_mult = np.ascontiguousarray(array_of(arrays, r.get("mult"), np.int32, "rescale mult"))
        self.r_shift = np.ascontiguousarray(array_of(arrays, r.get("shift"), np.int32, "rescale shift"))
        need(self.r_mult.shape == (self.n,) and self.r_shift.shape == (self.n,),
             "rescale mult and shift need one value per neuron")
        need(bool((self.r_mult >= 0).all() and (self.r_mult < MULT_LIMIT).all() and (self.r_shift >= 0).all()
                  and (self.r_shift <= SHIFT_LIMIT).all()), "rescale multiplier/shift out of range")
        self.split = count * (1 if self.kind == "mac" else self.n)
        if self.kind == "mac":
            self.w_parts = (np.ascontiguousarray(self.w[:, :self.split]), np.ascontiguousarray(self.w[:, self.split:]))
            self.wt_parts = (np.ascontiguousarray(self.w_parts[0].T), np.ascontiguousarray(self.w_parts[1].T))

    def _mac(self, x, acc):
        """The crossbar: acc += W x per sample (events in SNN axon mode); with ``rescale`` the
        first axons' sum is rescaled into acc."""
        add = intmath.acc_add_events if self.axon_mode == "snn" else intmath.acc_add_dense
        if self.split is None:
            w = self.wt if self.axon_mode == "snn" else self.w
            for b in range(x.shape[0]):
                add(x[b], w, acc[b])
            return
        ws = self.wt_parts if self.axon_mode == "snn" else self.w_parts
        part = np.zeros(self.n, I64)
        for b in range(x.shape[0]):
            part[:] = 0
            add(np.ascontiguousarray(x[b, :self.split]), ws[0], part)
            intmath.acc_add_rescaled(part, self.r_mult, self.r_shift, acc[b])
            add(np.ascontiguousarray(x[b, self.split:]), ws[1], acc[b])

    def init(self, B: int) -> None:
        self.held = np.zeros((B, self.n), I64)
        for s in self.stages:
            s.init(B)

    def gather(self, bufs) -> np.ndarray:
        parts = [bufs[b][:, i] if b >= 0 else np.full((bufs[self.out_buf].shape[0], i.size), self.fill, I64)
                 for b, i in self.segs]
        if not parts:
            return np.zeros((bufs[self.out_buf].shape[0], 0), I64)
        return np.ascontiguousarray(np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])

    def step(self, bufs, fresh, t: int, work: dict) -> bool:
        """Run one round; returns whether the output is new. ``work`` gets macs, syn_events,
        neurons, spikes and packets of this core."""
        fresh_in = any(fresh[b] for b in self.clock)
        active = self.per_tick or fresh_in
        B = self.held.shape[0]
        macs = syn = 0
        if active:
            x = self.gather(bufs)
            acc = np.zeros((B, self.n), I64)
            k = self.kind
            if k in ("mac", "conv", "sumpool"):
                self._mac(x, acc)
                if self.axon_mode == "snn":
                    syn = int((((x != 0) & self.real) @ self.fanout).sum())
                else:
                    macs = B * int(self.fanout[self.real].sum())
            elif k == "maxpool":
                acc = x[:, self.win].max(axis=2)
                macs = B * int(self.fanout[self.real].sum())
            elif k == "add":
                acc = (x.reshape(B, self.groups, self.n) * self.mult[None, :, None]).sum(1)
                macs = B * self.n_axons
            elif k == "merge":
                acc = x[:, self.split or 0:].reshape(B, -1, self.n).sum(1)
                if self.split is not None:
                    part = x[:, :self.split].reshape(B, -1, self.n).sum(1)
                    for b in range(B):
                        intmath.acc_add_rescaled(part[b], self.r_mult, self.r_shift, acc[b])
                macs = B * self.n_axons
            else:
                acc = x.astype(I64, copy=True)
            self.held = acc
        val, new = self.held, active
        for s in self.stages:
            if s.per_tick or new:
                out = s.run(val, t)
                if out is None:
                    new = False
                else:
                    s.held, new = out, True
            else:
                new = False
            val = s.held
        work["macs"] += macs
        work["syn_events"] += syn
        work["neurons"] += B * self.n if (active or any(s.per_tick for s in self.stages)) else 0
        if new:
            bufs[self.out_buf][:, self.out_idx] = val
            fresh[self.out_buf] = True
            if self.spikes_out:
                k = int(np.count_nonzero(val))
                work["spikes"] += k
                work["packets"] += k
            else:
                work["packets"] += B * self.n_out * (2 if self.wide else 1)
        return new
