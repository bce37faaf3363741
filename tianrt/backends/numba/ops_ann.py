"""numba ops of the float ANN nodes (dense, convolution with its epilogues, pooling,
activations, structure), registered by node type."""
from __future__ import annotations

import numpy as np

from ... import ann, bridge
from ...kernels import conv, elementwise, synapse
from ...ops import implements
from .base import F32, Op, flat, kernel_call
from .policy import SMALL_DENSE


@implements("numba", ann.Dense)
class DenseOp(Op):
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
            return kernel_call(self.be, synapse.accumulate, x2, wt, b, y, dn, 0.0)

        def fn(t):
            np.matmul(x2, wt, out=y)
            np.add(y, b, out=y)
        return fn


@implements("numba", ann.Conv2d)
class ConvOp(Op):
    """Conv2d: a direct kernel or im2col + BLAS, chosen per layer by timing both on the
    layer's own buffers when the program is bound (``conv_mode="auto"``; policy.conv_choice).
    With ``relu`` set, also writes the following ReLU's value (an epilogue: one pass less,
    one call less), and with ``pool`` set, the 2x2/2 MaxPool2d that follows that ReLU;
    every value array holds what the reference holds."""
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
            direct = kernel_call(self.be, conv.conv3x3_wide, *args)
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


class EpilogueOp(Op):
    """A node whose value its producer writes (see ConvOp.relu): nothing to do per tick."""

    def bind(self, bufs):
        return None


def _window(node):
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    return kh, kw, sh, sw, ph, pw


@implements("numba", ann.MaxPool2d)
class MaxPoolOp(Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        geo = _window(self.node)
        return kernel_call(self.be, conv.maxpool2d, x, *geo, y)


@implements("numba", ann.AvgPool2d)
class AvgPoolOp(Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        geo = _window(self.node)
        return kernel_call(self.be, conv.avgpool2d, x, *geo, y)


@implements("numba", ann.GlobalAvgPool2d)
class GapOp(Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        return kernel_call(self.be, conv.global_avgpool, x, y)


@implements("numba", ann.ReLU)
class ReLUOp(Op):
    def bind(self, bufs):
        (x,), y, zero = self.ins(bufs), bufs[self.name], F32(0)
        return lambda t: np.maximum(x, zero, out=y)


@implements("numba", ann.ClippedReLU)
class ClippedReLUOp(Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        lo, hi = F32(0), F32(self.node.max_value)
        return lambda t: np.clip(x, lo, hi, out=y)


@implements("numba", ann.Sigmoid)
class SigmoidOp(Op):
    def bind(self, bufs):
        xf, yf = flat(self.ins(bufs)[0]), flat(bufs[self.name])
        return kernel_call(self.be, elementwise.sigmoid, xf, yf)


@implements("numba", ann.Tanh)
class TanhOp(Op):
    def bind(self, bufs):
        (x,), y = self.ins(bufs), bufs[self.name]
        return lambda t: np.tanh(x, out=y)


@implements("numba", ann.BatchNorm)
class BatchNormOp(Op):
    def bind(self, bufs):
        xf, yf = flat(self.ins(bufs)[0]), flat(bufs[self.name])
        scale, shift = self.node.scale_shift()
        inner = int(np.prod(self.entry.shape[1:], dtype=np.int64))
        return kernel_call(self.be, elementwise.channel_affine, xf, scale, shift, inner, yf)


@implements("numba", bridge.DirectCurrent)
class DirectCurrentOp(Op):
    def bind(self, bufs):
        xf, yf, g = flat(self.ins(bufs)[0]), flat(bufs[self.name]), self.node.gain
        return kernel_call(self.be, elementwise.scale_copy, xf, g, yf)


@implements("numba", ann.Flatten)
class FlattenOp(Op):
    """A view of its input's value array: costs nothing per tick."""

    def alloc(self, batch, bufs):
        x = bufs[self.entry.inputs[0]]
        bufs[self.name] = x.reshape(x.shape[0], -1)

    def bind(self, bufs):
        return None


@implements("numba", ann.Add)
class AddOp(Op):
    def bind(self, bufs):
        xs, y = self.ins(bufs), bufs[self.name]
        first, rest = xs[0], xs[1:]
        if y.dtype == F32 and len(xs) in (2, 3):  # one pass instead of a copy and adds
            fl = [flat(x) for x in xs] + [flat(y)]
            return kernel_call(self.be, elementwise.add2 if len(xs) == 2 else elementwise.add3, *fl)

        def fn(t):
            np.copyto(y, first)
            for x in rest:
                np.add(y, x, out=y)
        return fn


@implements("numba", ann.Concat)
class ConcatOp(Op):
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
