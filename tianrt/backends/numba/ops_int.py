"""numba ops of the integer (chip mode, ``tr.q``) nodes on ``tianrt.kernels.intmath``, bit
for bit as docs/integer.md (and the emulator, which runs the same kernels), registered by
node type."""
from __future__ import annotations

import numpy as np

from ... import q, qmath
from ...kernels import intmath, synapse
from ...ops import alif as alif_family, implements, lif as lif_family, params
from .base import DECODER, Op, StatefulOp, entry_point, flat, kernel_call
from .intgemm import ExactGemm

_I64 = np.int64


def _flat_state(st):
    return {k: flat(v) for k, v in st.items()}


@implements("numba", q.Quantize)
class QuantizeOp(Op):
    def bind(self, bufs):
        x, y, sc = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node.scale
        if isinstance(sc, np.ndarray):  # one scale per feature: the reference's numpy rule, exactly
            xs, ys = self.ins(bufs)[0], bufs[self.name]
            return lambda t: np.copyto(ys, qmath.quantize(xs, sc))
        return kernel_call(self.be, intmath.quantize, x, sc, y)


@implements("numba", q.Dequantize)
class DequantizeOp(Op):
    def bind(self, bufs):
        x, y, sc = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node.scale
        return kernel_call(self.be, intmath.dequantize, x, sc, y)


@implements("numba", q.Clamp)
class ClampOp(Op):
    def bind(self, bufs):
        x, y, n = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node
        return kernel_call(self.be, intmath.clamp_array, x, n.lo, n.hi, y)


@implements("numba", q.Lookup)
class LookupOp(Op):
    def bind(self, bufs):
        x, y, table = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node.table
        return kernel_call(self.be, intmath.lookup, x, table, y)


@implements("numba", q.DirectCurrent)
class QDirectOp(Op):
    def bind(self, bufs):
        x, y, g = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node.gain
        return kernel_call(self.be, intmath.direct_current, x, g, y)


@implements("numba", q.Add)
class QAddOp(Op):
    def bind(self, bufs):
        n, yf = self.node, flat(bufs[self.name])
        acc = np.zeros(yf.size, _I64)
        flats = [flat(a) for a in self.ins(bufs)]
        ms = [int(m) for m in n.multipliers]

        def fn(t):
            acc[:] = 0
            for a, m in zip(flats, ms):
                intmath.add_scaled(a, m, acc)
            intmath.requant_array(acc, 1, n.shift, n.lo, n.hi, yf)
        return fn


@implements("numba", q.Dense)
class QDenseOp(Op):
    """At batch > 1: one exact float GEMM (intgemm) when its bound holds."""

    def bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        x2 = x.reshape(x.shape[0], -1)
        if x.shape[0] > 1 and self.be.int_gemm:
            gemm = ExactGemm(x2, n.weight, n.bias, y, requant=(n.multiplier, n.shift, n.lo, n.hi))
            return lambda t: gemm() or intmath.dense(x2, n.weight, n.bias, n.multiplier, n.shift, n.lo, n.hi, y)
        return lambda t: intmath.dense(x2, n.weight, n.bias, n.multiplier, n.shift, n.lo, n.hi, y)


@implements("numba", q.Conv2d, q.SynConv2d)
class QConvOp(Op):
    """im2col + one exact float GEMM (intgemm) when its bound holds, at every batch size
    (2-30x faster than the int kernel even at batch 1: bench/bench_intmath.py)."""

    def bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        (sh, sw), (ph, pw) = n.stride, n.padding
        synaptic = isinstance(n, q.SynConv2d)  # int32 currents, no requantisation
        if synaptic:
            slow = lambda t: intmath.conv2d_acc(x, n.weight, n.bias, sh, sw, ph, pw, y)  # noqa: E731
        else:
            slow = lambda t: intmath.conv2d(x, n.weight, n.bias, n.multiplier, n.shift,  # noqa: E731
                                            sh, sw, ph, pw, n.lo, n.hi, y)
        if not self.be.int_gemm:
            return slow
        rq = None if synaptic else (n.multiplier, n.shift, n.lo, n.hi)
        gemm = ExactGemm(x, n.weight, n.bias, y, conv=(sh, sw, ph, pw), requant=rq)
        return lambda t: gemm() or slow(t)


@implements("numba", q.SynDense, q.SynRecurrent)
class QSynOp(Op):
    def bind(self, bufs):
        xs, y, n, be = self.ins(bufs), bufs[self.name], self.node, self.be
        wt = np.ascontiguousarray(n.weight.T)
        acc = np.zeros(y.shape[1], _I64)
        x = xs[0].reshape(xs[0].shape[0], -1)
        if isinstance(n, q.SynRecurrent):
            wr = np.ascontiguousarray(n.weight_rec.T)
            r = xs[1]
            if n.rescaled:
                part = np.zeros(y.shape[1], _I64)

                def fn(t):
                    be.events += wt.shape[1] * intmath.syn_recurrent_rescaled_events(
                        x, r, wt, wr, n.bias, n.ff_mult, n.ff_shift, y, acc, part)
                return fn

            def fn(t):
                be.events += wt.shape[1] * intmath.syn_recurrent_events(x, r, wt, wr, n.bias, y, acc)
            return fn

        if x.shape[0] > 1 and be.int_gemm and be.mode_of(self.name) != synapse.EVENT:
            # above the crossover activity (or forced dense): one exact float GEMM
            gemm, xf = ExactGemm(x, n.weight, n.bias, y), flat(x)
            limit = -1 if be.mode_of(self.name) == synapse.DENSE else be.crossover_for(*y.shape) * xf.size
            count = entry_point(synapse.count_active, xf)

            def fn(t):
                if not (count(xf) > limit and gemm()):
                    be.events += wt.shape[1] * intmath.syn_dense_events(x, wt, n.bias, y, acc)
            return fn

        def fn(t):
            be.events += wt.shape[1] * intmath.syn_dense_events(x, wt, n.bias, y, acc)
        return fn


@implements("numba", q.LIF)
class QLIFOp(StatefulOp):
    family = lif_family

    def bind(self, bufs):
        cur, s, st = flat(self.ins(bufs)[0]), flat(bufs[self.name]), _flat_state(self.state)
        kp, step = self.family.kernel_params(self.node, bufs[self.name].shape), self.family.kernel_step
        return lambda t: step(kp, st, cur, s)


@implements("numba", q.ALIF)
class QALIFOp(QLIFOp):
    family = alif_family


@implements("numba", q.LI)
class QLIOp(StatefulOp):
    def bind(self, bufs):
        n, shape = self.node, bufs[self.name].shape  # per-neuron parameters repeat over the batch
        cur, y, v = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["v"])
        lm, ls = params.kernel_array(n.leak_mult, shape, _I64), params.kernel_array(n.leak_shift, shape, _I64)

        def fn(t):
            intmath.leaky_integrate(cur, v, lm, ls)
            y[:] = v
        return fn


@implements("numba", q.MembraneReadout)
class QMembraneOp(StatefulOp):
    kind = DECODER

    def bind(self, bufs):
        n = self.node
        x, y, v, w = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["v"]), n.window
        lm, ls = np.full(1, n.leak_mult, _I64), np.full(1, n.leak_shift, _I64)

        def fn(t):
            intmath.leaky_integrate(x, v, lm, ls)
            if (t + 1) % w:
                return False
            y[:] = v
            v[:] = 0
            return True
        return fn


@implements("numba", q.RateEncoder)
class QRateOp(StatefulOp):
    def bind(self, bufs):
        x, y, acc, d = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["acc"]), self.node.full_scale
        return kernel_call(self.be, intmath.rate_encoder_step, x, acc, d, y)


@implements("numba", q.LatencyEncoder)
class QLatencyOp(Op):
    def bind(self, bufs):
        x, y, n = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node
        return lambda t: intmath.latency_encoder_step(x, n.full_scale, n.window, t, y)


def _window(node):
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    return kh, kw, sh, sw, ph, pw


@implements("numba", q.MaxPool2d)
class QMaxPoolOp(Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        geo = _window(self.node)
        return lambda t: intmath.maxpool2d(x, *geo, y)


@implements("numba", q.AvgPool2d)
class QAvgPoolOp(Op):
    def bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        geo = _window(n)
        return lambda t: intmath.avgpool2d(x, *geo, n.multiplier, n.shift, y)


@implements("numba", q.GlobalAvgPool2d)
class QGapOp(Op):
    def bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        return lambda t: intmath.global_avgpool(x, n.multiplier, n.shift, y)

