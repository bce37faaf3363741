"""numba ops of the float bridges (encoders and decoders), registered by node type."""
from __future__ import annotations

import numpy as np

from ... import bridge
from ...kernels import codec
from ...ops import implements
from ...ops.encoders import pack_rng, unpack_rng
from .base import DECODER, Op, StatefulOp, TickExpr, entry_point, flat, kernel_call


@implements("numba", bridge.RateEncoder)
class RateOp(StatefulOp):
    def bind(self, bufs):
        x, y, acc, sc = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["acc"]), self.node.scale
        return kernel_call(self.be, codec.rate_encode, x, sc, acc, y)


@implements("numba", bridge.PoissonEncoder)
class PoissonOp(Op):
    """numpy's Generator as the reference uses it (same draws), into a preallocated array;
    its PCG64 state is checkpointed as the reference's ``rng`` field."""

    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.rng = np.random.default_rng(self.node.seed)
        self.draw = np.zeros((batch,) + self.entry.shape, np.float64)

    def extra_state(self):
        return {"rng": pack_rng(self.rng)}

    def load_extra_state(self, st):
        self.rng = unpack_rng(st["rng"])

    def bind(self, bufs):
        x, y, sc, draw = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node.scale, self.draw
        dflat = flat(draw)

        def fn(t):
            self.rng.random(out=draw)
            codec.bernoulli_threshold(dflat, x, sc, y)
        return fn


@implements("numba", bridge.LatencyEncoder)
class LatencyOp(Op):
    def bind(self, bufs):
        x, y, n = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node
        k = entry_point(codec.latency_encode, x, n.scale, n.window, 0, y)
        fn = lambda t: k(x, n.scale, n.window, t % n.window, y)  # noqa: E731
        fn.call = (codec.latency_encode, (x, n.scale, n.window, TickExpr(f"t % {n.window}"), y), False)
        return fn


@implements("numba", bridge.SpikeCount)
class SpikeCountOp(StatefulOp):
    kind = DECODER

    def bind(self, bufs):
        n = self.node
        s, y, c = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["count"])
        div, w = (float(n.window) if n.rate else 1.0), n.window
        if n.mode == "sliding":
            ring = flat(self.state["ring"])
            k = entry_point(codec.count_sliding, s, ring, 0, c, div, True, y)
            fn = lambda t: k(s, ring, t % w, c, div, t >= w - 1, y)  # noqa: E731
            fn.call = (codec.count_sliding, (s, ring, TickExpr(f"t % {w}"), c, div, TickExpr(f"t >= {w - 1}"),
                                             y), False)
            return fn
        k = entry_point(codec.count_tumbling, s, c, div, True, y)
        fn = lambda t: k(s, c, div, (t + 1) % w == 0, y)  # noqa: E731
        fn.call = (codec.count_tumbling, (s, c, div, TickExpr(f"(t + 1) % {w} == 0"), y), False)
        return fn


@implements("numba", bridge.MembraneReadout)
class MembraneOp(StatefulOp):
    kind = DECODER

    def bind(self, bufs):
        n = self.node
        x, y, v, w = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["v"]), n.window
        md = float(w) if n.mean else 0.0
        k = entry_point(codec.membrane_window, x, v, n.beta, True, md, y)
        fn = lambda t: k(x, v, n.beta, (t + 1) % w == 0, md, y)  # noqa: E731
        fn.call = (codec.membrane_window, (x, v, n.beta, TickExpr(f"(t + 1) % {w} == 0"), md, y), False)
        return fn


@implements("numba", bridge.FirstSpike)
class FirstSpikeOp(StatefulOp):
    kind = DECODER

    def bind(self, bufs):
        s, y, f, w = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["first"]), self.node.window
        k = entry_point(codec.first_spike, s, f, w, 0, y)
        fn = lambda t: k(s, f, w, t % w, y)  # noqa: E731
        fn.call = (codec.first_spike, (s, f, w, TickExpr(f"t % {w}"), y), False)
        return fn
