"""numba ops of the float SNN nodes: event-driven synapses, neurons, the fused
(synapse -> LIF) chain and probes, registered by node type."""
from __future__ import annotations

import numpy as np

from ... import snn
from ...kernels import conv, neuron, synapse
from ...ops import implements, params
from .base import F32, I32, Op, StatefulOp, entry_point, flat, kernel_call
from .policy import CSR_DENSITY


@implements("numba", snn.Dense, snn.Recurrent)
class SynapseOp(Op):
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
        xf = flat(x)
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
            rf = flat(r)

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
            return kernel_call(be, synapse.accumulate_csr, x, indptr, idx, data, bias, y, events=True)
        if mode == dn:
            return lambda t: blas(x, wt, y, False)
        if mode == synapse.AUTO and y.shape[0] == 1 and be.compiled:
            # compiled tick, batch 1: the kernel's own dense loop (same order as the event loop,
            # so the same sums) instead of BLAS, to stay one lowerable call
            return kernel_call(be, synapse.accumulate, x, wt, bias, y, mode, cross, events=True)
        acc, count = entry_point(synapse.accumulate, x, wt, bias, y, ev, 0.0), entry_point(synapse.count_active, xf)
        if mode == ev:
            return kernel_call(be, synapse.accumulate, x, wt, bias, y, ev, 0.0, events=True)

        def fn(t):
            if count(xf) > limit:
                blas(x, wt, y, False)
            else:
                be.events += acc(x, wt, bias, y, ev, 0.0)
        return fn


@implements("numba", snn.Conv2d)
class SConvOp(Op):
    """snn.Conv2d: event-driven scatter (work follows the active input pixels)."""

    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        n, be = self.node, self.be
        (sh, sw), (ph, pw) = n.stride, n.padding

        def fn(t):
            be.events += conv.conv2d_scatter(x, n.weight, n.bias, sh, sw, ph, pw, y)
        return fn


_EMPTY_F32, _EMPTY_I32 = np.zeros(0, F32), np.zeros(0, I32)


@implements("numba", snn.LIF)
class LIFOp(StatefulOp):
    def bind(self, bufs):
        n, st = self.node, self.state
        cur, s = flat(self.ins(bufs)[0]), flat(bufs[self.name])
        v = flat(st["v"])
        isyn = flat(st["i_syn"]) if "i_syn" in st else _EMPTY_F32
        ref = flat(st["refrac"]) if "refrac" in st else _EMPTY_I32
        if params.is_scalar(n.beta) and params.is_scalar(n.threshold):
            args = (n.beta, n.threshold, n.v_reset, n.alpha or 0.0, n.alpha is not None, n.refractory,
                    n.reset == "zero")
            kernel = neuron.lif_update
        else:
            shape = bufs[self.name].shape  # (batch, ...): per-neuron parameters repeat over the batch
            args = (params.kernel_array(n.beta, shape, F32), params.kernel_array(n.threshold, shape, F32),
                    n.v_reset, n.alpha or 0.0, n.alpha is not None, n.refractory, n.reset == "zero")
            kernel = neuron.lif_update_per_neuron
        return kernel_call(self.be, kernel, cur, v, isyn, ref, s, *args)


@implements("numba", snn.ALIF)
class ALIFOp(StatefulOp):
    def bind(self, bufs):
        n, st, shape = self.node, self.state, bufs[self.name].shape
        cur, s, v, a = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(st["v"]), flat(st["a"])
        args = tuple(params.kernel_array(p, shape, F32) for p in (n.beta, n.threshold, n.adapt, n.rho))
        args += (n.v_reset, n.reset == "zero")
        return kernel_call(self.be, neuron.alif_update, cur, v, a, s, *args)


@implements("numba", snn.LI)
class LIOp(StatefulOp):
    def bind(self, bufs):
        n = self.node
        cur, y, v = flat(self.ins(bufs)[0]), flat(bufs[self.name]), flat(self.state["v"])
        if params.is_scalar(n.beta):
            return kernel_call(self.be, neuron.li_update, cur, v, n.beta, y)
        beta = params.flat(n.beta, bufs[self.name].shape, F32)  # per-neuron values repeat over the batch

        def fn(t):
            np.multiply(v, beta, out=v)
            np.add(v, cur, out=v)
            np.copyto(y, v)
        return fn


@implements("numba", snn.Probe)
class ProbeOp(Op):
    """Copies one state field of its input's op into its value array every tick."""

    def bind(self, bufs):
        src = self.entry.inputs[0]
        field = self.node.field
        st = self.be.state_of(src)
        if field not in st:
            from ...errors import BackendError
            raise BackendError(f"probe `{self.name}`: `{src}` has no state field {field!r} on the numba "
                               f"backend (it has {sorted(st)})")
        a, y = st[field], bufs[self.name]
        return lambda t: np.copyto(y, a)


class ChainOp(Op):
    """A fused run of (snn.Dense -> LIF) layers (fusion.py): one kernel call per tick for
    all of them. Value and state arrays of every layer are views into a few flat arrays."""

    def __init__(self, be, pairs):
        super().__init__(be, pairs[0][0])
        self.pairs = pairs
        self.outs = [e.name for p in pairs for e in p]
        self.x_name = pairs[0][0].inputs[0]

    def state_of(self, name):
        return self.state.get(name, {})

    def alloc(self, batch, bufs):
        sizes = [d.node.out_features for d, _ in self.pairs]
        total = batch * sum(sizes)
        self.st = np.zeros((4, total), F32)  # rows: current, membrane, filtered current, spikes
        cur, v, isyn, spk = (self.st[r] for r in (neuron.CUR, neuron.V, neuron.ISYN, neuron.SPK))
        # refractory counters, then (batch 1) the scratch list of a layer's active inputs
        n_in_max = max(d.node.in_features for d, _ in self.pairs)
        self.refrac = np.zeros(total + (n_in_max if batch == 1 else 0), I32)
        ip = np.zeros((len(self.pairs), 11), np.int64)
        fp = np.zeros((len(self.pairs), 7), np.float64)
        parts, off, woff, spans = [], 0, 0, []
        self.state = {}
        for l, (d, lif) in enumerate(self.pairs):
            dn, ln, n_out = d.node, lif.node, d.node.out_features
            blk = slice(off, off + batch * n_out)
            bufs[d.name] = cur[blk].reshape((batch, n_out))
            bufs[lif.name] = spk[blk].reshape((batch, n_out))
            v[blk] = ln.v_init
            st = {"v": v[blk].reshape(batch, n_out)}
            alif = type(ln) is snn.ALIF
            alpha, refractory = getattr(ln, "alpha", None), getattr(ln, "refractory", 0)
            if alif:  # the adaptation variable lives in the filtered-current row
                st["a"] = isyn[blk].reshape(batch, n_out)
            if alpha is not None:
                st["i_syn"] = isyn[blk].reshape(batch, n_out)
            if refractory:
                st["refrac"] = self.refrac[blk].reshape(batch, n_out)
            self.state[lif.name] = st
            n_w = dn.in_features * n_out
            mode = self.be.mode_of(d.name)
            if batch > 1 and mode != synapse.EVENT:  # dense sums of a batch go to BLAS
                mode = synapse.DENSE_CALLER if mode == synapse.DENSE else synapse.AUTO_CALLER
            ip[l] = (dn.in_features, n_out, woff, woff + n_w, off, mode,
                     ln.reset == "zero", refractory, alpha is not None, batch,
                     neuron.KIND_ALIF if alif else neuron.KIND_LIF)
            fp[l] = (ln.beta, ln.threshold, ln.v_reset, alpha or 0.0, self.be.crossover_for(batch, n_out),
                     ln.adapt if alif else 0.0, ln.rho if alif else 0.0)
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
        x0 = flat(bufs[self.x_name])
        blas, n_layers = self.blas, len(self.pairs)
        args = (x0, self.wb, self.ip, self.fp, self.st, self.refrac)
        be = self.be
        self.args = args
        if self.refrac.size > self.st.shape[1]:  # batch 1: never hands a layer back
            self.finish = None
            return kernel_call(be, neuron.snn_chain_tick, *args, events=True)
        k = entry_point(neuron.snn_chain_step, *args, 0, False)

        def finish(ev, l):  # layers handed back for BLAS (batch > 1 only)
            while l < n_layers:
                x, w, b, y = blas[l]
                np.matmul(x, w, out=y)
                np.add(y, b, out=y)
                e, l = k(*args, l, True)
                ev += e
            be.events += ev

        self.finish = finish

        def fn(t):
            finish(*k(*args, 0, False))
        return fn
