"""The numba backend: the reference's semantics on fused, event-driven kernels.

At build the plan becomes a short program of ops; at the first input (when the batch size
is known) every value, state and scratch array is allocated once, and each op is bound to
its arrays as a closure around one kernel call. A tick is then one pass over that program:
no array is allocated except the copies that ``step`` returns (and ``Generator.random``'s
draws for a Poisson encoder, which writes into a preallocated array).

Fusion: every run of ``snn.Dense -> LIF/IF`` pairs, each layer fed by the one before,
becomes a single kernel call per tick (synaptic accumulation, LIF update and spike
emission for all layers); a Conv2d also writes a following ReLU. Synapses are
event-driven below a crossover input activity and dense above it (``synapse_mode``:
"auto" | "event" | "dense", or a dict per node name); at batch 1 both loops sum in the
same order, so the choice never changes a result; at batch > 1 the dense side is BLAS.

Integer graphs (``tr.q`` nodes) run on ``tianrt.kernels.intmath`` bit for bit
(docs/integer.md). Design notes and tolerances: docs/numba-backend.md.
"""
from __future__ import annotations

import time

import numpy as np

from .. import ann, bridge, q, snn
from ..errors import BackendError
from ..graph import Delay, Input, Plan
from ..kernels import codec, conv, elementwise, intmath, neuron, synapse
from ..runtime import Backend
from . import numba_calibrate
from .numba_intgemm import ExactGemm
from .reference import _pack_rng, _unpack_rng

F32, I32 = np.float32, np.int32
_F32_DTYPE = np.dtype(np.float32)
MODES = {"event": synapse.EVENT, "dense": synapse.DENSE, "auto": synapse.AUTO}
CONV_MODES = ("auto", "direct", "im2col")
# Input activity (active inputs / all inputs) above which a dense pass beats the event loop,
# used unless `tianrt warmup --calibrate` measured this machine (numba_calibrate.py);
# measured by `bench/bench_kernels.py scaling` on a 1024->1024 layer (docs/benchmarks.md):
# at batch 1 the event loop stays ahead of both the dense loop and BLAS up to ~70-90 %
# activity; at batch 32 BLAS's weight reuse wins from 30-70 % (varies run to run).
DEFAULT_CROSSOVER = 0.8
DEFAULT_CROSSOVER_BATCH = 0.5
# crossover_for: the batch at which DEFAULT_CROSSOVER_BATCH is measured, and the per-event
# overhead of the event loop in multiply-adds (fitted: bench_kernels.py batch).
BATCH_REF, EVENT_OVERHEAD = 32, 16
# A tensor Dense layer with at most this many weights runs on the synapse loop at batch 1.
SMALL_DENSE = 16384
# A synapse weight matrix with fewer non-zeros than this is run from CSR rows.
CSR_DENSITY = 0.25

ALWAYS, DECODER, ON_EVENT = 0, 1, 2
# conv_choice's measurements: (input shape with batch, weight shape, stride, padding, outputs)
# -> the faster algorithm, for the life of the process
_CONV_MEASURED: dict[tuple, str] = {}


def _ep(kernel, *example):
    """numba's compiled entry point of ``kernel`` for the types of ``example`` (loaded from
    the cache or compiled now). Calling it skips the dispatcher's per-call type resolution,
    about 0.1 us per argument, which adds up at ~10 kernel calls per tick. Every later call
    must pass arguments of exactly these types (the bound arrays, and per-tick scalars of
    fixed Python types)."""
    try:
        return kernel.compile(tuple(kernel.typeof_pyval(a) for a in example))
    except Exception:  # an unusual argument type: keep the dispatcher
        return kernel


def _flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view (never a copy: kernels write through it into the value array)."""
    if not a.flags.c_contiguous:
        raise BackendError(f"numba backend: internal array of shape {a.shape} is not contiguous")
    return a.reshape(-1)


class _Op:
    """One step of the program. ``outs`` are the entries it writes; ``alloc`` makes their
    value arrays and the op's state; ``bind`` returns fn(t) -> bool (emitted)."""
    kind = ALWAYS

    def __init__(self, be: "NumbaBackend", entry):
        self.be, self.entry, self.node = be, entry, entry.node
        self.name, self.outs = entry.name, [entry.name]
        self.state: dict[str, np.ndarray] = {}

    def out_dtype(self):
        return I32 if self.entry.numeric == "int" else F32

    def alloc(self, batch: int, bufs: dict) -> None:
        bufs[self.name] = np.zeros((batch,) + self.entry.shape, self.out_dtype())

    def bind(self, bufs: dict):
        raise NotImplementedError

    def ins(self, bufs):
        return [bufs[i] for i in self.entry.inputs]


def _kind(entry) -> int:
    if isinstance(entry.node, (bridge.Decoder, q.MembraneReadout)):
        return DECODER
    return ALWAYS if entry.per_tick else ON_EVENT


# -- float ANN ops --------------------------------------------------------------------------

class DenseOp(_Op):
    """Tensor-domain Dense: BLAS matmul into the preallocated output, then the bias; a
    small layer at batch 1 (up to SMALL_DENSE weights) is one call of the dense synapse
    loop instead (bias + rows, vectorised over the outputs): BLAS's call overhead is most
    of such a layer's cost (W2's 32 -> 4: 1.4 -> 0.4 us)."""

    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        x2 = x.reshape(x.shape[0], -1)
        wt, b = np.ascontiguousarray(self.node.weight.T), self.node.bias
        if x2.shape[0] == 1 and wt.size <= SMALL_DENSE:
            dn = synapse.DENSE
            k = _ep(synapse.accumulate, x2, wt, b, y, dn, 0.0)
            return lambda t: k(x2, wt, b, y, dn, 0.0)

        def fn(t):
            np.matmul(x2, wt, out=y)
            np.add(y, b, out=y)
        return fn


class ConvOp(_Op):
    """Conv2d: a direct kernel or im2col + BLAS, chosen per layer by timing both on the
    layer's own buffers when the program is bound (``conv_mode="auto"``; see
    ``NumbaBackend.conv_choice``). With ``relu`` set, also writes the following ReLU's
    value (an epilogue: one pass less, one call less), and with ``pool`` set, the 2x2/2
    MaxPool2d that follows that ReLU; every value array holds what the reference holds."""
    relu: str | None = None
    pool: str | None = None

    def bind(self, bufs):
        forms = {k: self._with_pool(self._with_relu(fn, bufs), bufs) for k, fn in self._forms(bufs).items()}
        outs = [bufs[o] for o in (self.name, self.relu, self.pool) if o]
        choice = self.be.conv_choice(self.entry, forms, outs, bufs[self.entry.inputs[0]].shape)
        return forms[choice]

    def _with_pool(self, fn, bufs):
        if self.pool is None or getattr(fn, "fused_pool", False):
            return fn
        r, p = bufs[self.relu], bufs[self.pool]

        def with_pool(t):
            fn(t)
            conv.maxpool2d(r, 2, 2, 2, 2, 0, 0, p)
        return with_pool

    def _with_relu(self, fn, bufs):
        if self.relu is None or getattr(fn, "fused_relu", False):
            return fn
        y, r, zero = bufs[self.name], bufs[self.relu], F32(0)

        def with_relu(t):
            fn(t)
            np.maximum(y, zero, out=r)
        return with_relu

    def _forms(self, bufs):
        """name -> fn(t) for each algorithm that can run this layer ("direct", "im2col")."""
        (x,), y = self.ins(bufs), bufs[self.name]
        n = self.node
        (kh, kw), (sh, sw), (ph, pw) = n.kernel_size, n.stride, n.padding
        w, b = n.weight, n.bias
        O, C = w.shape[0], w.shape[1]
        batch = y.shape[0]
        if (sh, sw) != (1, 1):
            wm = np.ascontiguousarray(w.reshape(O, -1))
            cols = np.zeros((C * kh * kw, y.shape[2] * y.shape[3]), F32)
            ys = [y[i].reshape(O, -1) for i in range(batch)]
            bcol = b.reshape(O, 1)

            def im2col(t):
                for i, yi in enumerate(ys):
                    conv.im2col(x, i, kh, kw, sh, sw, ph, pw, cols)
                    np.matmul(wm, cols, out=yi)
                    np.add(yi, bcol, out=yi)
            return {"direct": lambda t: conv.conv2d_direct(x, w, b, sh, sw, ph, pw, y), "im2col": im2col}
        # stride 1: both forms work on the zero-padded sample laid out on the padded width
        Hp, Wp = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
        xpad = np.zeros((C, Hp * Wp + kw), F32)
        m = (Hp - kh + 1) * Wp
        wide = np.zeros((O, m), F32)
        r = bufs[self.relu] if self.relu is not None else y
        if (kh, kw) == (3, 3):
            xp3, wide3 = conv.conv3x3_scratch(C, O, x.shape[2], x.shape[3], ph, pw)
            p = bufs[self.pool] if self.pool is not None else y
            args = (x, w, b, ph, pw, xp3, wide3, y, r, self.relu is not None, p, self.pool is not None)
            k = _ep(conv.conv3x3_wide, *args)

            def direct(t):
                k(*args)
            direct.fused_relu = direct.fused_pool = True
        else:
            def direct(t):
                conv.conv2d_wide(x, w, b, ph, pw, xpad, wide, y)
        wm = np.ascontiguousarray(w.reshape(O, -1))
        cols = np.zeros((C * kh * kw, m), F32)
        if self.relu is not None:
            def im2col(t):
                for i in range(batch):
                    conv.im2col_wide(x, i, ph, pw, kh, kw, xpad, cols)
                    np.matmul(wm, cols, out=wide)
                    conv.unwide_bias_relu(wide, b, Wp, y, r, i)
            im2col.fused_relu = True
        else:
            def im2col(t):
                for i in range(batch):
                    conv.im2col_wide(x, i, ph, pw, kh, kw, xpad, cols)
                    np.matmul(wm, cols, out=wide)
                    conv.unwide_bias(wide, b, Wp, y, i)
        return {"direct": direct, "im2col": im2col}


class EpilogueOp(_Op):
    """A node whose value its producer writes (see ConvOp.relu): nothing to do per tick."""

    def bind(self, bufs):
        return None


class PoolOp(_Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        n = self.node
        (kh, kw), (sh, sw), (ph, pw) = n.kernel_size, n.stride, n.padding
        if isinstance(n, q.MaxPool2d):
            return lambda t: intmath.maxpool2d(x, kh, kw, sh, sw, ph, pw, y)
        if isinstance(n, q.AvgPool2d):
            m, s = n.multiplier, n.shift
            return lambda t: intmath.avgpool2d(x, kh, kw, sh, sw, ph, pw, m, s, y)
        k = conv.maxpool2d if isinstance(n, ann.MaxPool2d) else conv.avgpool2d
        return lambda t: k(x, kh, kw, sh, sw, ph, pw, y)


class GapOp(_Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        if isinstance(self.node, q.GlobalAvgPool2d):
            m, s = self.node.multiplier, self.node.shift
            return lambda t: intmath.global_avgpool(x, m, s, y)
        return lambda t: conv.global_avgpool(x, y)


class ActOp(_Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        n, xf, yf = self.node, _flat(x), _flat(y)
        if isinstance(n, ann.ReLU):
            zero = F32(0)
            return lambda t: np.maximum(x, zero, out=y)
        if isinstance(n, ann.ClippedReLU):
            lo, hi = F32(0), F32(n.max_value)
            return lambda t: np.clip(x, lo, hi, out=y)
        if isinstance(n, ann.Sigmoid):
            return lambda t: elementwise.sigmoid(xf, yf)
        if isinstance(n, ann.Tanh):
            return lambda t: np.tanh(x, out=y)
        if isinstance(n, ann.BatchNorm):
            scale, shift = n.scale_shift()
            inner = int(np.prod(self.entry.shape[1:], dtype=np.int64))
            return lambda t: elementwise.channel_affine(xf, scale, shift, inner, yf)
        if isinstance(n, bridge.DirectCurrent):
            g = n.gain
            k = _ep(elementwise.scale_copy, xf, g, yf)
            return lambda t: k(xf, g, yf)
        raise BackendError(f"numba backend: no elementwise kernel for `{self.name}` ({n.op})")


class FlattenOp(_Op):
    """A view of its input's value array: costs nothing per tick."""

    def alloc(self, batch, bufs):
        x = bufs[self.entry.inputs[0]]
        bufs[self.name] = x.reshape(x.shape[0], -1)

    def bind(self, bufs):
        return None


class AddOp(_Op):
    def bind(self, bufs):
        xs, y = self.ins(bufs), bufs[self.name]
        first, rest = xs[0], xs[1:]
        if y.dtype == F32 and len(xs) in (2, 3):  # one pass instead of a copy and adds
            fl = [_flat(x) for x in xs] + [_flat(y)]
            k = _ep(elementwise.add2 if len(xs) == 2 else elementwise.add3, *fl)
            return lambda t: k(*fl)

        def fn(t):
            np.copyto(y, first)
            for x in rest:
                np.add(y, x, out=y)
        return fn


class ConcatOp(_Op):
    def bind(self, bufs):
        xs, y = self.ins(bufs), bufs[self.name]
        ax = self.node.axis + 1 if self.node.axis >= 0 else self.node.axis + y.ndim
        parts, start = [], 0
        for x in xs:
            sl = [slice(None)] * y.ndim
            sl[ax] = slice(start, start + x.shape[ax])
            parts.append((y[tuple(sl)], x))
            start += x.shape[ax]

        def fn(t):
            for dst, src in parts:
                np.copyto(dst, src)
        return fn


# -- float SNN ops ----------------------------------------------------------------------------

class SynapseOp(_Op):
    """snn.Dense / snn.Recurrent outside a fused chain (and every layer at batch > 1):
    event-driven below the crossover activity, BLAS above it ("auto"), or as forced by
    ``synapse_mode``; CSR rows when the weight matrix is sparse and not forced dense."""

    def bind(self, bufs):
        xs, y = self.ins(bufs), bufs[self.name]
        n, be = self.node, self.be
        mode = be.mode_of(self.name)
        cross = be.crossover_for(y.shape[0], y.shape[1])
        wt = np.ascontiguousarray(n.weight.T)
        bias = n.bias
        x = xs[0].reshape(xs[0].shape[0], -1)
        xf = _flat(x)
        limit = cross * xf.size
        ev, dn = synapse.EVENT, synapse.DENSE

        def blas(x, wt, y, add):
            if add:
                y += x @ wt  # recurrent second input only; allocates, rare
            else:
                np.matmul(x, wt, out=y)
                np.add(y, bias, out=y)

        if isinstance(n, snn.Recurrent):
            wr = np.ascontiguousarray(n.weight_rec.T)
            r = xs[1]
            rf = _flat(r)

            def fn(t):
                for xx, xxf, w, add in ((x, xf, wt, False), (r, rf, wr, True)):
                    if mode == dn or (mode != ev and synapse.count_active(xxf) > cross * xxf.size):
                        blas(xx, w, y, add)
                    elif add:
                        be.events += synapse.accumulate_add(xx, w, y, ev, 0.0)
                    else:
                        be.events += synapse.accumulate(xx, w, bias, y, ev, 0.0)
            return fn
        if mode != dn and np.count_nonzero(wt) < CSR_DENSITY * wt.size:
            indptr, idx, data = synapse.to_csr(wt)
            k = _ep(synapse.accumulate_csr, x, indptr, idx, data, bias, y)

            def fn(t):
                be.events += k(x, indptr, idx, data, bias, y)
            return fn
        if mode == dn:
            return lambda t: blas(x, wt, y, False)
        acc, count = _ep(synapse.accumulate, x, wt, bias, y, ev, 0.0), _ep(synapse.count_active, xf)
        if mode == ev:
            def fn(t):
                be.events += acc(x, wt, bias, y, ev, 0.0)
            return fn

        def fn(t):
            if count(xf) > limit:
                blas(x, wt, y, False)
            else:
                be.events += acc(x, wt, bias, y, ev, 0.0)
        return fn


class SConvOp(_Op):
    """snn.Conv2d: event-driven scatter (work follows the active input pixels)."""

    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        n, be = self.node, self.be
        (sh, sw), (ph, pw) = n.stride, n.padding

        def fn(t):
            be.events += conv.conv2d_scatter(x, n.weight, n.bias, sh, sw, ph, pw, y)
        return fn


def _lif_state(node, batch, shape):
    st = {"v": np.full((batch,) + shape, node.v_init, F32)}
    if node.alpha is not None:
        st["i_syn"] = np.zeros((batch,) + shape, F32)
    if node.refractory:
        st["refrac"] = np.zeros((batch,) + shape, I32)
    return st


class LIFOp(_Op):
    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = _lif_state(self.node, batch, self.entry.shape)

    def bind(self, bufs):
        n, st = self.node, self.state
        cur, s = _flat(self.ins(bufs)[0]), _flat(bufs[self.name])
        v = _flat(st["v"])
        isyn = _flat(st["i_syn"]) if "i_syn" in st else np.zeros(0, F32)
        ref = _flat(st["refrac"]) if "refrac" in st else np.zeros(0, I32)
        args = (n.beta, n.threshold, n.v_reset, n.alpha or 0.0, n.alpha is not None, n.refractory,
                n.reset == "zero")
        k = _ep(neuron.lif_update, cur, v, isyn, ref, s, *args)
        return lambda t: k(cur, v, isyn, ref, s, *args)


class LIOp(_Op):
    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = {"v": np.full((batch,) + self.entry.shape, self.node.v_init, F32)}

    def bind(self, bufs):
        cur, y, v, beta = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["v"]), self.node.beta
        k = _ep(neuron.li_update, cur, v, beta, y)
        return lambda t: k(cur, v, beta, y)


class ChainOp(_Op):
    """A fused run of (snn.Dense -> LIF) layers: one kernel call per tick for all of them.
    Value and state arrays of every layer are views into a few flat arrays."""

    def __init__(self, be, pairs):
        super().__init__(be, pairs[0][0])
        self.pairs = pairs
        self.outs = [e.name for p in pairs for e in p]
        self.x_name = pairs[0][0].inputs[0]

    def alloc(self, batch, bufs):
        sizes = [d.node.out_features for d, _ in self.pairs]
        total = batch * sum(sizes)
        self.st = np.zeros((4, total), F32)  # rows: current, membrane, filtered current, spikes
        cur, v, isyn, spk = (self.st[r] for r in (neuron.CUR, neuron.V, neuron.ISYN, neuron.SPK))
        self.refrac = np.zeros(total, I32)
        ip = np.zeros((len(self.pairs), 10), np.int64)
        fp = np.zeros((len(self.pairs), 5), np.float64)
        parts, off, woff, spans = [], 0, 0, []
        self.state = {}
        for l, (d, lif) in enumerate(self.pairs):
            dn, ln, n_out = d.node, lif.node, d.node.out_features
            blk = slice(off, off + batch * n_out)
            bufs[d.name] = cur[blk].reshape((batch, n_out))
            bufs[lif.name] = spk[blk].reshape((batch, n_out))
            v[blk] = ln.v_init
            st = {"v": v[blk].reshape(batch, n_out)}
            if ln.alpha is not None:
                st["i_syn"] = isyn[blk].reshape(batch, n_out)
            if ln.refractory:
                st["refrac"] = self.refrac[blk].reshape(batch, n_out)
            self.state[lif.name] = st
            n_w = dn.in_features * n_out
            mode = self.be.mode_of(d.name)
            if batch > 1 and mode != synapse.EVENT:  # dense sums of a batch go to BLAS
                mode = synapse.DENSE_CALLER if mode == synapse.DENSE else synapse.AUTO_CALLER
            ip[l] = (dn.in_features, n_out, woff, woff + n_w, off, mode,
                     ln.reset == "zero", ln.refractory, ln.alpha is not None, batch)
            fp[l] = (ln.beta, ln.threshold, ln.v_reset, ln.alpha or 0.0,
                     self.be.crossover_for(batch, n_out))
            spans.append((self.x_name if l == 0 else self.pairs[l - 1][1].name, d.name, woff, n_w,
                          dn.in_features, n_out))
            parts += [dn.weight.T.reshape(-1), dn.bias]
            off += batch * n_out
            woff += n_w + n_out
        self.wb = np.ascontiguousarray(np.concatenate(parts), dtype=F32)
        self.ip, self.fp = ip, fp
        # per layer, for the BLAS hand-back: input (B, n_in), weights (n_in, n_out), bias, output
        self.blas = [(bufs[x].reshape(batch, -1), self.wb[wo:wo + nw].reshape(ni, no),
                      self.wb[wo + nw:wo + nw + no], bufs[y]) for x, y, wo, nw, ni, no in spans]

    def bind(self, bufs):
        x0 = _flat(bufs[self.x_name])
        blas, n_layers = self.blas, len(self.pairs)
        args = (x0, self.wb, self.ip, self.fp, self.st, self.refrac)
        be, k = self.be, _ep(neuron.snn_chain_step, *args, 0, False)

        def finish(ev, l):  # layers handed back for BLAS (batch > 1 only)
            while l < n_layers:
                x, w, b, y = blas[l]
                np.matmul(x, w, out=y)
                np.add(y, b, out=y)
                e, l = k(*args, l, True)
                ev += e
            be.events += ev

        def fn(t):
            finish(*k(*args, 0, False))
        self.finish, self.args = finish, args
        return fn


# -- bridges ----------------------------------------------------------------------------------

class RateOp(_Op):
    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = {"acc": np.full((batch,) + self.entry.shape, 0.5, np.float64)}

    def bind(self, bufs):
        x, y, acc, sc = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["acc"]), self.node.scale
        k = _ep(codec.rate_encode, x, sc, acc, y)
        return lambda t: k(x, sc, acc, y)


class PoissonOp(_Op):
    """numpy's Generator as the reference uses it (same draws), into a preallocated array."""

    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.rng = np.random.default_rng(self.node.seed)
        self.draw = np.zeros((batch,) + self.entry.shape, np.float64)
        self.state = {}

    def bind(self, bufs):
        x, y, sc, draw = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), self.node.scale, self.draw
        dflat = _flat(draw)

        def fn(t):
            self.rng.random(out=draw)
            codec.bernoulli_threshold(dflat, x, sc, y)
        return fn


class LatencyOp(_Op):
    def bind(self, bufs):
        x, y, n = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), self.node
        k = _ep(codec.latency_encode, x, n.scale, n.window, 0, y)
        return lambda t: k(x, n.scale, n.window, t % n.window, y)


class SpikeCountOp(_Op):
    kind = DECODER

    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        shape = (batch,) + self.entry.shape
        self.state = {"count": np.zeros(shape, F32)}
        if self.node.mode == "sliding":
            self.state = {"ring": np.zeros((self.node.window,) + shape, F32), "count": self.state["count"]}

    def bind(self, bufs):
        n = self.node
        s, y, c = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["count"])
        div, w = (float(n.window) if n.rate else 1.0), n.window
        if n.mode == "sliding":
            ring = _flat(self.state["ring"])
            k = _ep(codec.count_sliding, s, ring, 0, c, div, True, y)
            return lambda t: k(s, ring, t % w, c, div, t >= w - 1, y)
        k = _ep(codec.count_tumbling, s, c, div, True, y)
        return lambda t: k(s, c, div, (t + 1) % w == 0, y)


class MembraneOp(_Op):
    kind = DECODER

    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = {"v": np.zeros((batch,) + self.entry.shape, self.out_dtype())}

    def bind(self, bufs):
        n = self.node
        x, y, v, w = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["v"]), n.window
        if isinstance(n, q.MembraneReadout):
            lm, ls = n.leak_mult, n.leak_shift

            def fn(t):
                intmath.leaky_integrate(x, v, lm, ls)
                if (t + 1) % w:
                    return False
                y[:] = v
                v[:] = 0
                return True
            return fn
        md = float(w) if n.mean else 0.0
        k = _ep(codec.membrane_window, x, v, n.beta, True, md, y)
        return lambda t: k(x, v, n.beta, (t + 1) % w == 0, md, y)


class FirstSpikeOp(_Op):
    kind = DECODER

    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = {"first": np.full((batch,) + self.entry.shape, self.node.window, F32)}

    def bind(self, bufs):
        s, y, f, w = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["first"]), self.node.window
        k = _ep(codec.first_spike, s, f, w, 0, y)
        return lambda t: k(s, f, w, t % w, y)


# -- integer (chip) mode ops: tianrt.kernels.intmath, bit for bit -------------------------------

class QElementOp(_Op):
    def bind(self, bufs):
        xs, y, n = self.ins(bufs), bufs[self.name], self.node
        x, yf = _flat(xs[0]), _flat(y)
        if isinstance(n, q.Quantize):
            return lambda t: intmath.quantize(x, n.scale, yf)
        if isinstance(n, q.Dequantize):
            return lambda t: intmath.dequantize(x, n.scale, yf)
        if isinstance(n, q.Clamp):
            return lambda t: intmath.clamp_array(x, n.lo, n.hi, yf)
        if isinstance(n, q.Lookup):
            return lambda t: intmath.lookup(x, n.table, yf)
        if isinstance(n, q.DirectCurrent):
            return lambda t: intmath.direct_current(x, n.gain, yf)
        if isinstance(n, q.Add):
            acc = np.zeros(yf.size, np.int64)
            flats = [_flat(a) for a in xs]
            ms = [int(m) for m in n.multipliers]

            def fn(t):
                acc[:] = 0
                for a, m in zip(flats, ms):
                    intmath.add_scaled(a, m, acc)
                intmath.requant_array(acc, 1, n.shift, n.lo, n.hi, yf)
            return fn
        raise BackendError(f"numba backend: no integer kernel for `{self.name}` ({n.op})")


class QDenseOp(_Op):
    """At batch > 1: one exact float GEMM (numba_intgemm) when its bound holds."""

    def bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        x2 = x.reshape(x.shape[0], -1)
        if x.shape[0] > 1 and self.be.int_gemm:
            gemm = ExactGemm(x2, n.weight, n.bias, y, requant=(n.multiplier, n.shift, n.lo, n.hi))
            return lambda t: gemm() or intmath.dense(x2, n.weight, n.bias, n.multiplier, n.shift, n.lo, n.hi, y)
        return lambda t: intmath.dense(x2, n.weight, n.bias, n.multiplier, n.shift, n.lo, n.hi, y)


class QConvOp(_Op):
    """im2col + one exact float GEMM (numba_intgemm) when its bound holds, at every batch
    size (2-30x faster than the int kernel even at batch 1: bench/bench_intmath.py)."""

    def bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        (sh, sw), (ph, pw) = n.stride, n.padding
        if self.be.int_gemm:
            rq = None if isinstance(n, q.SynConv2d) else (n.multiplier, n.shift, n.lo, n.hi)
            gemm, slow = ExactGemm(x, n.weight, n.bias, y, conv=(sh, sw, ph, pw), requant=rq), self._int_bind(bufs)
            return lambda t: gemm() or slow(t)
        return self._int_bind(bufs)

    def _int_bind(self, bufs):
        (x,), y, n = self.ins(bufs), bufs[self.name], self.node
        (sh, sw), (ph, pw) = n.stride, n.padding
        if isinstance(n, q.SynConv2d):
            return lambda t: intmath.conv2d_acc(x, n.weight, n.bias, sh, sw, ph, pw, y)
        return lambda t: intmath.conv2d(x, n.weight, n.bias, n.multiplier, n.shift, sh, sw, ph, pw,
                                        n.lo, n.hi, y)


class QSynOp(_Op):
    def bind(self, bufs):
        xs, y, n, be = self.ins(bufs), bufs[self.name], self.node, self.be
        wt = np.ascontiguousarray(n.weight.T)
        acc = np.zeros(y.shape[1], np.int64)
        x = xs[0].reshape(xs[0].shape[0], -1)
        if isinstance(n, q.SynRecurrent):
            wr = np.ascontiguousarray(n.weight_rec.T)
            r = xs[1]

            def fn(t):
                be.events += wt.shape[1] * intmath.syn_recurrent_events(x, r, wt, wr, n.bias, y, acc)
            return fn

        if x.shape[0] > 1 and be.int_gemm and be.mode_of(self.name) != synapse.EVENT:
            # above the crossover activity (or forced dense): one exact float GEMM
            gemm, xf = ExactGemm(x, n.weight, n.bias, y), _flat(x)
            limit = -1 if be.mode_of(self.name) == synapse.DENSE else be.crossover_for(*y.shape) * xf.size
            count = _ep(synapse.count_active, xf)

            def fn(t):
                if not (count(xf) > limit and gemm()):
                    be.events += wt.shape[1] * intmath.syn_dense_events(x, wt, n.bias, y, acc)
            return fn

        def fn(t):
            be.events += wt.shape[1] * intmath.syn_dense_events(x, wt, n.bias, y, acc)
        return fn


class QLIFOp(_Op):
    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        n, shape = self.node, (batch,) + self.entry.shape
        self.state = {"v": np.full(shape, n.v_init, I32)}
        if n.alpha_mult is not None:
            self.state["i_syn"] = np.zeros(shape, I32)
        if n.refractory:
            self.state["refrac"] = np.zeros(shape, I32)

    def bind(self, bufs):
        n, st = self.node, self.state
        cur, s, v = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(st["v"])
        isyn = _flat(st["i_syn"]) if "i_syn" in st else np.zeros(0, I32)
        ref = _flat(st["refrac"]) if "refrac" in st else np.zeros(0, I32)
        am = -1 if n.alpha_mult is None else n.alpha_mult
        args = (n.threshold, n.leak_mult, n.leak_shift, am, n.alpha_shift, n.reset == "zero", n.v_reset,
                n.refractory)
        return lambda t: intmath.lif_step(cur, v, isyn, ref, *args, s)


class QLIOp(_Op):
    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = {"v": np.full((batch,) + self.entry.shape, self.node.v_init, I32)}

    def bind(self, bufs):
        n = self.node
        cur, y, v = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["v"])

        def fn(t):
            intmath.leaky_integrate(cur, v, n.leak_mult, n.leak_shift)
            y[:] = v
        return fn


class QRateOp(_Op):
    def alloc(self, batch, bufs):
        super().alloc(batch, bufs)
        self.state = {"acc": np.full((batch,) + self.entry.shape, self.node.full_scale // 2, I32)}

    def bind(self, bufs):
        x, y, acc, d = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), _flat(self.state["acc"]), self.node.full_scale
        return lambda t: intmath.rate_encoder_step(x, acc, d, y)


class QLatencyOp(_Op):
    def bind(self, bufs):
        x, y, n = _flat(self.ins(bufs)[0]), _flat(bufs[self.name]), self.node
        return lambda t: intmath.latency_encoder_step(x, n.full_scale, n.window, t, y)


_TABLE = [  # order matters: subclasses first
    (q.Quantize, QElementOp), (q.Dequantize, QElementOp), (q.Clamp, QElementOp), (q.Lookup, QElementOp),
    (q.DirectCurrent, QElementOp), (q.Add, QElementOp), (q.Dense, QDenseOp), (q.Conv2d, QConvOp),
    (q.SynConv2d, QConvOp), (q.SynDense, QSynOp), (q.SynRecurrent, QSynOp), (q.LIF, QLIFOp),
    (q.LI, QLIOp), (q.RateEncoder, QRateOp), (q.LatencyEncoder, QLatencyOp),
    (q.MembraneReadout, MembraneOp), (q.MaxPool2d, PoolOp), (q.AvgPool2d, PoolOp),
    (q.GlobalAvgPool2d, GapOp),
    (snn.Dense, SynapseOp), (snn.Recurrent, SynapseOp), (snn.Conv2d, SConvOp),
    (snn.LIF, LIFOp), (snn.LI, LIOp),
    (bridge.RateEncoder, RateOp), (bridge.PoissonEncoder, PoissonOp),
    (bridge.LatencyEncoder, LatencyOp), (bridge.DirectCurrent, ActOp),
    (bridge.SpikeCount, SpikeCountOp), (bridge.MembraneReadout, MembraneOp),
    (bridge.FirstSpike, FirstSpikeOp),
    (ann.Dense, DenseOp), (ann.Conv2d, ConvOp), (ann.MaxPool2d, PoolOp), (ann.AvgPool2d, PoolOp),
    (ann.GlobalAvgPool2d, GapOp), (ann.Flatten, FlattenOp), (ann.Add, AddOp), (ann.Concat, ConcatOp),
    (ann.ReLU, ActOp), (ann.ClippedReLU, ActOp), (ann.Sigmoid, ActOp), (ann.Tanh, ActOp),
    (ann.BatchNorm, ActOp),
]


def _op_class(entry):
    for cls, op in _TABLE:
        if isinstance(entry.node, cls):
            return op
    raise BackendError(f"numba backend cannot run `{entry.name}` ({entry.node.op}); "
                       "the reference backend may (backend='reference')")


class NumbaBackend(Backend):
    """Fast backend on tianrt.kernels. Options: ``synapse_mode`` ("auto" | "event" | "dense",
    or a dict node name -> mode), ``crossover`` (input activity where auto switches from
    event to dense), ``conv_mode`` ("auto" | "direct" | "im2col") and ``fuse`` (bool)."""

    name = "numba"
    # integer mode: exact float GEMM for q.Conv2d/SynConv2d (and q.Dense/SynDense at batch
    # > 1) when its bound holds (numba_intgemm); False keeps the int64 kernels (benchmarks)
    int_gemm = True

    def __init__(self, plan: Plan, synapse_mode="auto", crossover: float | None = None,
                 conv_mode: str = "auto", fuse: bool = True):
        from ..kernels._jit import HAVE_NUMBA
        if not HAVE_NUMBA:
            raise BackendError("backend 'numba' needs the numba package, which is not installed here "
                               "(it has no wheels for 32-bit ARM or x86); use backend='reference' "
                               "(numpy), or backend='auto' to take numba wherever it is installed")
        super().__init__(plan)
        self.synapse_mode = synapse_mode
        names = {e.name for e in plan.entries}
        if isinstance(synapse_mode, dict):
            bad = [k for k in synapse_mode if k not in names]
            if bad:
                raise BackendError(f"synapse_mode names unknown node(s) {bad}; nodes: {sorted(names)}")
            for k, m in synapse_mode.items():
                if m not in MODES:
                    raise BackendError(f"synapse_mode[{k!r}] = {m!r}; choose one of {', '.join(MODES)}")
        elif synapse_mode not in MODES:
            raise BackendError(f"synapse_mode = {synapse_mode!r}; choose one of {', '.join(MODES)} "
                               "or give a dict node name -> mode")
        cal = numba_calibrate.load() if crossover is None else None  # `tianrt warmup --calibrate`
        self.crossover_given = crossover is not None
        if crossover is not None:
            self.crossover = self.crossover_batch = float(crossover)
        elif cal is not None:
            self.crossover, self.crossover_batch = cal["batch1"], cal["batch_n"]
        else:
            self.crossover, self.crossover_batch = DEFAULT_CROSSOVER, DEFAULT_CROSSOVER_BATCH
        if not 0.0 <= self.crossover <= 1.0:
            raise BackendError(f"crossover is a fraction of active inputs in [0, 1], got {crossover}")
        if conv_mode not in CONV_MODES:
            raise BackendError(f"conv_mode = {conv_mode!r}; choose one of {', '.join(CONV_MODES)}")
        self.conv_mode = conv_mode
        self.conv_chosen: dict[str, str] = {}  # conv layer -> algorithm used (after the first input)
        self.events = 0
        self.index = {e.name: i for i, e in enumerate(plan.entries)}
        self._compile(fuse)

    # -- build --------------------------------------------------------------------------------
    def mode_of(self, name: str) -> int:
        m = self.synapse_mode.get(name, "auto") if isinstance(self.synapse_mode, dict) else self.synapse_mode
        return MODES[m]

    def crossover_for(self, batch: int, n_out: int) -> float:
        """The activity above which a float synapse of ``n_out`` outputs goes dense at this
        batch size. The batch crossover is measured at batch 32; larger batches make BLAS
        relatively faster (better weight reuse) and the event loop slower (its (batch,
        n_out) output no longer stays in L1), and a short fan-out pays the per-event cost
        (a branch, often mispredicted, and the row setup) on little work, so the measured
        value is scaled by sqrt(32 / batch) and n_out / (n_out + 16) -- fitted to the
        sweep of bench/bench_kernels.py batch (docs/benchmarks.md). An explicit ``crossover=`` is
        used as given."""
        if batch == 1:
            return self.crossover
        if self.crossover_given:
            return self.crossover_batch
        return self.crossover_batch * min(1.0, (BATCH_REF / batch) ** 0.5) * n_out / (n_out + EVENT_OVERHEAD)

    def conv_choice(self, entry, forms: dict, outs: list, x_shape: tuple) -> str:
        """The algorithm for a convolution layer: ``conv_mode`` if not "auto"; else the
        faster of ``forms`` (name -> fn(t)) timed on the layer's own buffers (best of 5 after
        a warm-up call), remembered per layer shape for the process. Which one wins depends
        on the shape and the machine (on W2: the 3x3 direct kernel on all three layers,
        1.5-2x ahead of im2col + BLAS; docs/benchmarks.md). The timing runs overwrite the
        layer's value arrays (``outs``), which are zeroed again afterwards."""
        if self.conv_mode != "auto":
            choice = self.conv_mode
        else:
            n = entry.node
            key = (x_shape, n.weight.shape, n.stride, n.padding, len(outs))
            choice = _CONV_MEASURED.get(key)
            if choice is None:
                times = {}
                for name, fn in forms.items():
                    fn(0)  # warm-up (and compile or load from the cache)
                    best = float("inf")
                    for _ in range(5):
                        t0 = time.perf_counter()
                        fn(0)
                        best = min(best, time.perf_counter() - t0)
                        if best > 0.01:  # a big layer: one timing tells, keep the bind short
                            break
                    times[name] = best
                choice = _CONV_MEASURED[key] = min(times, key=times.get)
                for a in outs:
                    a.fill(0)
        self.conv_chosen[entry.name] = choice
        return choice

    def _compile(self, fuse: bool) -> None:
        plan = self.plan
        users: dict[str, list[str]] = {e.name: [] for e in plan.entries}
        for e in plan.entries:
            for i in e.inputs:
                users[i].append(e.name)
        by_name = {e.name: e for e in plan.entries}
        in_chain: set[str] = set()
        chains: dict[str, list] = {}
        if fuse:
            for e in plan.entries:
                if e.name in in_chain or not self._fusable_syn(e):
                    continue
                pairs, cur = [], e
                while self._fusable_syn(cur) and cur.name not in in_chain:
                    lifs = [by_name[u] for u in users[cur.name] if self._fusable_lif(by_name[u])]
                    if not lifs:
                        break
                    pairs.append((cur, lifs[0]))
                    in_chain.update((cur.name, lifs[0].name))
                    nxt = [by_name[u] for u in users[lifs[0].name] if self._fusable_syn(by_name[u])
                           and u not in in_chain]
                    if not nxt:
                        break
                    cur = nxt[0]
                if pairs:
                    chains[e.name] = pairs
        epilogue, pools = {}, {}  # conv name -> the ReLU / the 2x2/2 MaxPool2d of that ReLU it also writes
        if fuse:
            for e in plan.entries:
                if type(e.node) is ann.Conv2d:
                    relus = [u for u in users[e.name] if type(by_name[u].node) is ann.ReLU]
                    if relus:
                        epilogue[e.name] = relus[0]
                        mps = [u for u in users[relus[0]] if type(by_name[u].node) is ann.MaxPool2d
                               and (by_name[u].node.kernel_size, by_name[u].node.stride,
                                    by_name[u].node.padding) == ((2, 2), (2, 2), (0, 0))]
                        if mps:
                            pools[e.name] = mps[0]
        self.ops: list[_Op] = []
        for e in plan.entries:
            if isinstance(e.node, (Input, Delay)):
                continue
            if e.name in chains:
                self.ops.append(ChainOp(self, chains[e.name]))
            elif e.name not in in_chain:
                cls = EpilogueOp if e.name in epilogue.values() or e.name in pools.values() else _op_class(e)
                op = cls(self, e)
                op.kind = DECODER if op.kind == DECODER else _kind(e)
                if e.name in epilogue:
                    op.relu = epilogue[e.name]
                    op.pool = pools.get(e.name)
                self.ops.append(op)
        self.inputs_ = [e for e in plan.entries if isinstance(e.node, Input)]
        self.delays = [e for e in plan.entries if isinstance(e.node, Delay)]

    @staticmethod
    def _fusable_syn(e) -> bool:
        return type(e.node) is snn.Dense

    @staticmethod
    def _fusable_lif(e) -> bool:
        return type(e.node) in (snn.LIF, snn.IF)

    # -- state --------------------------------------------------------------------------------
    def _init_state(self, batch: int) -> None:
        bufs: dict[str, np.ndarray] = {}
        for e in self.inputs_ + self.delays:
            bufs[e.name] = np.zeros((batch,) + e.shape, I32 if e.numeric == "int" else F32)
        self.nxt = {d.name: np.zeros_like(bufs[d.name]) for d in self.delays}
        self.nxt_fresh = {d.name: False for d in self.delays}
        for op in self.ops:
            op.alloc(batch, bufs)
        self.bufs = bufs
        idx = self.index
        self.fresh = [False] * len(self.plan.entries)
        prog = []
        for op in self.ops:
            fn = op.bind(bufs)
            oi = idx[op.outs[-1]] if op.kind == DECODER else idx[op.name]
            if op.kind == ALWAYS:
                for o in op.outs:
                    self.fresh[idx[o]] = True
                if fn is not None:
                    prog.append((ALWAYS, fn, oi, ()))
            else:
                prog.append((op.kind, fn, oi, tuple(idx[i] for i in op.entry.inputs)))
        self.prog = prog
        for e in self.inputs_:
            if e.per_tick:
                self.fresh[idx[e.name]] = True
        self.tensor_inputs = [idx[e.name] for e in self.inputs_ if not e.per_tick]
        self.delay_io = [(idx[d.name], bufs[d.name], self.nxt[d.name], d.name, bufs[d.source], idx[d.source])
                         for d in self.delays]
        self.slots = {e.name: (e.shape if not self.batched else (batch,) + e.shape,
                               _flat(bufs[e.name]), e.domain == "spike", idx[e.name]) for e in self.inputs_}
        self.outs = [(k, idx[src], bufs[src] if self.batched else bufs[src][0])
                     for k, src in self.plan.outputs.items()]
        # The whole graph is one fused chain fed by its only (spike) input: step() then checks,
        # copies and runs the tick in a single kernel call.
        self.direct = None
        if (len(self.prog) == 1 and isinstance(self.ops[0], ChainOp) and len(self.inputs_) == 1
                and not self.delays and self.ops[0].x_name == self.inputs_[0].name
                and self.inputs_[0].domain == "spike"):
            name = self.inputs_[0].name
            args = self.ops[0].args[1:]
            x0 = self.slots[name][1]
            k = _ep(neuron.snn_chain_step_input, x0, x0, *args)
            self.direct = (name, self.slots[name][0], args, self.ops[0].finish, x0, k, len(self.ops[0].pairs))

    def _states(self):
        for op in self.ops:
            if isinstance(op, ChainOp):
                yield from op.state.items()
            elif op.state or isinstance(op, PoissonOp):
                yield op.name, op.state

    def _get_state(self):
        out = {}
        for name, st in self._states():
            for k, v in st.items():
                out[f"{name}/{k}"] = v
        for op in self.ops:
            if isinstance(op, PoissonOp):
                out[f"{op.name}/rng"] = _pack_rng(op.rng)
        for e in self.plan.entries:
            out[f"{e.name}/__value__"] = self.bufs[e.name]
        for d in self.delays:
            out[f"{d.name}/__delayed__"] = self.nxt[d.name]
            out[f"{d.name}/__delayed_fresh__"] = np.asarray(self.nxt_fresh[d.name])
        return out

    def _set_state(self, state):
        for name, st in self._states():
            for k, v in st.items():
                np.copyto(v, state[f"{name}/{k}"])
        for op in self.ops:
            if isinstance(op, PoissonOp):
                op.rng = _unpack_rng(state[f"{op.name}/rng"])
        for e in self.plan.entries:
            np.copyto(self.bufs[e.name], state[f"{e.name}/__value__"])
        for d in self.delays:
            np.copyto(self.nxt[d.name], state[f"{d.name}/__delayed__"])
            self.nxt_fresh[d.name] = bool(state[f"{d.name}/__delayed_fresh__"])

    # -- ticks --------------------------------------------------------------------------------
    def _run(self) -> None:
        fr, t = self.fresh, self.t
        for di, val, nxt, dn, _, _ in self.delay_io:
            np.copyto(val, nxt)
            fr[di] = self.nxt_fresh[dn]
        for kind, fn, oi, ins in self.prog:
            if kind == ALWAYS:
                fn(t)
            elif kind == DECODER:
                fr[oi] = fn(t)
            else:
                for i in ins:
                    if fr[i]:
                        if fn is not None:
                            fn(t)
                        fr[oi] = True
                        break
                else:
                    fr[oi] = False
        for di, val, nxt, dn, src, si in self.delay_io:
            np.copyto(nxt, src)
            self.nxt_fresh[dn] = fr[si]

    def _tick(self, inputs):
        fr = self.fresh
        for i in self.tensor_inputs:
            fr[i] = False
        for k, a in inputs.items():
            np.copyto(self.bufs[k], a)
            fr[self.index[k]] = True
        self._run()
        return {k: self.bufs[self.plan.outputs[k]] for k, oi, _ in self.outs if fr[oi]}

    def step(self, inputs: dict | None = None) -> dict:
        """One tick. Same checks and return convention as Backend.step, with the input check
        and copy done by one kernel call per input."""
        if self.batch is None:
            return Backend.step(self, inputs)
        d = self.direct
        if d is not None and inputs and len(inputs) == 1:
            v = inputs.get(d[0])
            if type(v) is np.ndarray and v.dtype is _F32_DTYPE and v.shape == d[1]:
                flags = v.flags
                if flags.c_contiguous and flags.aligned:
                    code, ev, layer = d[5](v.reshape(-1), d[4], *d[2])
                    if code:
                        self._check_input(d[0], v)  # raises the base class's error
                    if layer == d[6]:
                        self.events += ev
                    else:
                        d[3](ev, layer)  # hand-back of dense layers (batch > 1)
                    self.t += 1
                    return {k: a.copy() for k, _, a in self.outs}
        fr = self.fresh
        for i in self.tensor_inputs:
            fr[i] = False
        if inputs:
            slots = self.slots
            if len(inputs) > 1:  # check every input before changing any
                for k, v in inputs.items():
                    self._check_input(k, v)
            for k, v in inputs.items():
                slot = slots.get(k)
                if (slot is not None and type(v) is np.ndarray and v.dtype == F32
                        and v.shape == slot[0] and v.flags.c_contiguous):
                    if codec.check_copy(v.reshape(-1), slot[1], slot[2]):
                        self._check_input(k, v)  # raises the same error as the base class
                else:
                    a = self._check_input(k, v)
                    np.copyto(self.bufs[k], a)
                fr[slot[3]] = True
        self._run()
        self.t += 1
        return {k: v.copy() for k, oi, v in self.outs if fr[oi]}

    def run(self, inputs: dict, ticks: int | None = None):
        """Many ticks. With a time axis, the whole sequence is checked in one kernel call
        per input and the ticks then run without per-tick checks or dicts; any problem
        (or ``ticks=``) falls back to Backend.run, whose errors name the offending tick."""
        if ticks is not None and int(ticks) >= 1:
            return self._run_held(inputs, int(ticks))
        if ticks is not None or not inputs:
            return Backend.run(self, inputs, ticks)
        arrs = {}
        for k, v in inputs.items():
            spec = self.input_specs.get(k)
            a = v if isinstance(v, np.ndarray) and v.dtype == F32 else None
            if spec is None or a is None or a.ndim < 1 or a.shape[0] < 1:
                return Backend.run(self, inputs, ticks)
            per = a.shape[1:]
            if per != spec.shape and per[1:] != spec.shape:
                return Backend.run(self, inputs, ticks)
            arrs[k] = np.ascontiguousarray(a)
        n = {a.shape[0] for a in arrs.values()}
        if len(n) != 1:
            return Backend.run(self, inputs, ticks)
        n = n.pop()
        for k, a in arrs.items():  # the first frame initialises the state (and checks the batch)
            self._check_input(k, a[0])
        if self.batch is None:
            return Backend.run(self, inputs, ticks)
        for k, a in arrs.items():
            want = ((self.batch,) if self.batched else ()) + self.input_specs[k].shape
            if a.shape[1:] != want or codec.check_values(a.reshape(-1), self.slots[k][2]):
                return Backend.run(self, inputs, ticks)
        feeds = [(self.bufs[k], a.reshape((n,) + self.bufs[k].shape), self.slots[k][3]) for k, a in arrs.items()]
        fr, outs = self.fresh, self.outs
        vals: dict[str, list] = {k: [] for k in self.plan.outputs}
        when: dict[str, list] = {k: [] for k in self.plan.outputs}
        tensor_inputs = self.tensor_inputs
        for i in range(n):
            for j in tensor_inputs:
                fr[j] = False
            for buf, a, idx in feeds:
                np.copyto(buf, a[i])
                fr[idx] = True
            t = self.t
            self._run()
            self.t += 1
            for k, oi, v in outs:
                if fr[oi]:
                    vals[k].append(v.copy())
                    when[k].append(t)
        return self._stack(vals, when)

    def _run_held(self, inputs: dict, ticks: int):
        """run(inputs, ticks=N): the values are checked and presented at the first tick
        (through step), then held for the remaining ticks without per-tick checks."""
        vals: dict[str, list] = {k: [] for k in self.plan.outputs}
        when: dict[str, list] = {k: [] for k in self.plan.outputs}
        t0 = self.t
        for k, v in self.step(dict(inputs or {})).items():
            vals[k].append(v)
            when[k].append(t0)
        fr, outs, tensor_inputs = self.fresh, self.outs, self.tensor_inputs
        for _ in range(ticks - 1):
            for j in tensor_inputs:
                fr[j] = False
            t = self.t
            self._run()
            self.t += 1
            for k, oi, v in outs:
                if fr[oi]:
                    vals[k].append(v.copy())
                    when[k].append(t)
        return self._stack(vals, when)

    def reset(self) -> None:
        super().reset()
        self.events = 0
