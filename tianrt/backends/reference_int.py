"""Integer (chip) mode of the reference backend: every ``q.*`` node in numpy, docs/integer.md.

Written to be read: each op is the formula of docs/integer.md on batched arrays, with int64
intermediates (``tianrt.qmath``) and int32 results on integer edges. Spikes are float32
0/1 like everywhere else in the reference backend. ``reference.make_op`` hands ``q.*``
nodes to ``make_int_op``.
"""
from __future__ import annotations

import numpy as np

from .. import q
from ..errors import BackendError
from ..qmath import dequantize, quantize, requant, round_shift, sat32
from .reference import Op, Stateless, _windows

I32, I64, F32 = np.int32, np.int64, np.float32


def _i64(x):
    return np.asarray(x).astype(I64, copy=False)


def _channel(v, ndim):
    """A per-channel vector shaped to broadcast against (B, C, ...)."""
    return np.asarray(v, dtype=I64).reshape((1, -1) + (1,) * (ndim - 2))


# -- ANN ---------------------------------------------------------------------------------------

# Exact integer products on float BLAS: an int8 weight times an integer input is an
# integer, and a float32 (float64) sum of such terms is exact in any order, FMA or not,
# while every partial sum stays below 2^24 (2^53) in magnitude. Every partial sum of row o
# is at most sum_i |w[o, i]| * max |x|, so below that limit a float GEMM cast back to int64
# is the exact int64 sum; above it the int64 path runs. Bias and sat32 follow in int64.
FLOAT32_EXACT = 2 ** 24
FLOAT64_EXACT = 2 ** 53


def weight_bound(w) -> int:
    """max over output rows o of sum |w[o, ...]| (w (O, ...) integers), a Python int."""
    w = np.asarray(w)
    if w.size == 0:
        return 0
    w16 = w.reshape(w.shape[0], -1).astype(np.int16 if w.dtype == np.int8 else I64)  # |-128| fits int16
    return int(np.abs(w16).sum(axis=1, dtype=I64).max())


def input_bound(x) -> int:
    """max |x| over an integer (or 0/1 spike) array, a Python int (0 when empty)."""
    x = np.asarray(x)
    if x.size == 0:
        return 0
    return max(int(np.ceil(x.max())), -int(np.floor(x.min())), 0)


def exact_float_dtype(wbound: int, xbound: int):
    """The narrowest float dtype whose GEMM is exact for weights with ``weight_bound``
    ``wbound`` and inputs with ``input_bound`` ``xbound``: float32 when wbound * xbound
    < 2^24, float64 when < 2^53, None otherwise (the int64 path)."""
    b = int(wbound) * int(xbound)
    if b < FLOAT32_EXACT:
        return np.float32
    if b < FLOAT64_EXACT:
        return np.float64
    return None


def exact_matmul(a, w):
    """a @ w.T exactly, as int64: a (N, K) integers or spikes, w (O, K) int8. Float BLAS
    when the bound allows it, int64 otherwise. (The bound is taken from the weights on
    every call, so a node whose weights change between calls stays exact.)"""
    dt = exact_float_dtype(weight_bound(w), input_bound(a))
    if dt is None:
        return _i64(a) @ w.astype(I64).T
    return (np.asarray(a, dtype=dt) @ w.astype(dt).T).astype(I64)


def dense_acc(x, w, bias):
    """sat32(W x + bias) on (B, n_in) integers, exact (float BLAS under the bound)."""
    x = np.asarray(x).reshape(x.shape[0], -1)
    return sat32(exact_matmul(x, w) + bias.astype(I64))


def conv_acc(x, w, bias, stride, padding):
    """sat32(conv(W, x) + bias) over zero-padded windows, exact: im2col + float BLAS under
    the bound, the int64 einsum (conv_acc_int64) otherwise."""
    dt = exact_float_dtype(weight_bound(w), input_bound(x))
    if dt is None:
        return conv_acc_int64(x, w, bias, stride, padding)
    win = _windows(np.asarray(x, dtype=dt), w.shape[2:], stride, padding, 0)  # B, C, Ho, Wo, kh, kw
    B, C, ho, wo, kh, kw = win.shape
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(B * ho * wo, C * kh * kw)
    acc = (cols @ w.reshape(w.shape[0], -1).astype(dt).T).astype(I64)
    acc = acc.reshape(B, ho, wo, -1).transpose(0, 3, 1, 2)
    return sat32(acc + _channel(bias, 4))


def dense_acc_int64(x, w, bias):
    """dense_acc on the int64 matmul only (the exact fallback; kept for benchmarks)."""
    x = _i64(x).reshape(x.shape[0], -1)
    return sat32(x @ w.astype(I64).T + bias.astype(I64))


def conv_acc_int64(x, w, bias, stride, padding):
    """conv_acc on the int64 einsum only (the exact fallback; kept for benchmarks)."""
    win = _windows(_i64(x), w.shape[2:], stride, padding, 0)
    acc = np.einsum("bchwij,ocij->bohw", win, w.astype(I64))
    return sat32(acc + _channel(bias, 4))


def _requant_out(acc, n):
    return requant(acc, _channel(n.multiplier, acc.ndim), _channel(n.shift, acc.ndim),
                   n.lo, n.hi).astype(I32)


def stateless_int_fn(n):
    """The function of a stateless integer node on batched arrays, or None."""
    if isinstance(n, q.Quantize):
        return lambda x: quantize(x, n.scale)
    if isinstance(n, q.Dequantize):
        return lambda x: dequantize(x, n.scale)
    if isinstance(n, q.Dense):
        return lambda x: _requant_out(dense_acc(x, n.weight, n.bias), n)
    if isinstance(n, q.Conv2d):
        return lambda x: _requant_out(conv_acc(x, n.weight, n.bias, n.stride, n.padding), n)
    if isinstance(n, q.MaxPool2d):
        return lambda x: _windows(_i64(x), n.kernel_size, n.stride, n.padding,
                                  q.INT8_MIN).max(axis=(-2, -1)).astype(I32)
    if isinstance(n, q.AvgPool2d):
        return lambda x: requant(sat32(_windows(_i64(x), n.kernel_size, n.stride, n.padding, 0)
                                       .sum(axis=(-2, -1))), n.multiplier, n.shift).astype(I32)
    if isinstance(n, q.GlobalAvgPool2d):
        return lambda x: requant(sat32(_i64(x).sum(axis=(2, 3))), n.multiplier, n.shift).astype(I32)
    if isinstance(n, q.Clamp):
        return lambda x: np.clip(_i64(x), n.lo, n.hi).astype(I32)
    if isinstance(n, q.Lookup):
        return lambda x: n.table.astype(I32)[np.clip(_i64(x), q.INT8_MIN, q.INT8_MAX) + 128]
    if isinstance(n, q.Add):
        def add(*xs):
            total = sum(_i64(x) * I64(m) for x, m in zip(xs, n.multipliers))
            return requant(total, 1, n.shift, n.lo, n.hi).astype(I32)
        return add
    if isinstance(n, q.SynDense):
        return lambda x: dense_acc(x, n.weight, n.bias).astype(I32)
    if isinstance(n, q.SynConv2d):
        return lambda x: conv_acc(x, n.weight, n.bias, n.stride, n.padding).astype(I32)
    if isinstance(n, q.SynRecurrent):
        return lambda x, r: sat32(exact_matmul(x, n.weight) + exact_matmul(r, n.weight_rec)
                                  + n.bias.astype(I64)).astype(I32)
    if isinstance(n, q.DirectCurrent):
        return lambda x: sat32(_i64(x) * I64(n.gain)).astype(I32)
    return None


# -- SNN and bridges (stateful) ---------------------------------------------------------------

def _leak(v, mult, shift):
    return round_shift(_i64(v) * I64(mult), shift)


class LIFOp(Op):
    """q.LIF: optional current filter, then refractory / charge, fire, reset."""

    def init(self, batch):
        n, shape = self.node, (batch,) + self.shape
        st = {"v": np.full(shape, n.v_init, I32)}
        if n.alpha_mult is not None:
            st["i_syn"] = np.zeros(shape, I32)
        if n.refractory:
            st["refrac"] = np.zeros(shape, I32)
        return st

    def __call__(self, st, xs, t):
        n, cur = self.node, _i64(xs[0])
        if n.alpha_mult is not None:
            cur = sat32(_leak(st["i_syn"], n.alpha_mult, n.alpha_shift) + cur)
            st["i_syn"] = cur.astype(I32)
        v = sat32(_leak(st["v"], n.leak_mult, n.leak_shift) + cur)
        s = v >= n.threshold
        if n.reset == "subtract":
            v = sat32(v - I64(n.threshold) * s)
        else:
            v = np.where(s, I64(n.v_reset), v)
        if n.refractory:
            resting = st["refrac"] > 0  # refractory neurons neither charge nor fire
            s &= ~resting
            v = np.where(resting, st["v"], v)
            st["refrac"] = np.where(resting, st["refrac"] - 1,
                                    np.where(s, n.refractory, 0)).astype(I32)
        st["v"] = v.astype(I32)
        return s.astype(F32)


class LIOp(Op):
    """q.LI: v = sat32(round_shift(v * leak_mult, leak_shift) + I); emits v."""

    def init(self, batch):
        return {"v": np.full((batch,) + self.shape, self.node.v_init, I32)}

    def __call__(self, st, xs, t):
        n = self.node
        st["v"] = sat32(_leak(st["v"], n.leak_mult, n.leak_shift) + _i64(xs[0])).astype(I32)
        return st["v"].copy()


class MembraneOp(Op):
    """q.MembraneReadout: leaky integration over a window of W ticks, emitted at its end."""

    def init(self, batch):
        return {"v": np.zeros((batch,) + self.shape, I32)}

    def __call__(self, st, xs, t):
        n = self.node
        st["v"] = sat32(_leak(st["v"], n.leak_mult, n.leak_shift) + _i64(xs[0])).astype(I32)
        if (t + 1) % n.window:
            return None
        out = st["v"]
        st["v"] = np.zeros_like(out)
        return out


class RateOp(Op):
    """q.RateEncoder: acc starts at floor(D/2); acc += clamp(q, 0, D); spike and subtract D
    when acc >= D."""

    def init(self, batch):
        return {"acc": np.full((batch,) + self.shape, self.node.full_scale // 2, I32)}

    def __call__(self, st, xs, t):
        d = self.node.full_scale
        acc = _i64(st["acc"]) + np.clip(_i64(xs[0]), 0, d)
        s = acc >= d
        st["acc"] = (acc - d * s).astype(I32)
        return s.astype(F32)


class LatencyOp(Op):
    """q.LatencyEncoder: one spike per window at phase ((D - x)(W - 1) 2 + D) // (2 D)."""

    def __call__(self, st, xs, t):
        d, w = self.node.full_scale, self.node.window
        x = np.clip(_i64(xs[0]), 0, d)
        phase = ((d - x) * (w - 1) * 2 + d) // (2 * d)
        return ((x > 0) & (phase == t % w)).astype(F32)


_STATEFUL = {q.LIF: LIFOp, q.LI: LIOp, q.MembraneReadout: MembraneOp, q.RateEncoder: RateOp,
             q.LatencyEncoder: LatencyOp}


def make_int_op(entry, plan) -> Op:
    """The reference op of a ``q.*`` plan entry."""
    op = _STATEFUL.get(type(entry.node))
    if op is not None:
        return op(entry, plan)
    fn = stateless_int_fn(entry.node)
    if fn is None:
        raise BackendError(f"reference backend has no integer op for `{entry.name}` ({entry.node.op})")
    return Stateless(entry, plan, fn)
