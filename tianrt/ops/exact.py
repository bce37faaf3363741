"""Exact integer products in numpy: int8 weights times integer (or 0/1 spike) inputs as
int64 sums, on float BLAS whenever a bound proves the float result exact (docs/integer.md).

Used by the reference rules of the integer weight layers (``ops.linear``, ``ops.synapse``)
and by the numba backend's exact GEMM (which shares the bound).
"""
from __future__ import annotations

import numpy as np

from ..qmath import sat32
from .arrays import I64, channel, i64, windows

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
        return i64(a) @ w.astype(I64).T
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
    win = windows(np.asarray(x, dtype=dt), w.shape[2:], stride, padding, 0)  # B, C, Ho, Wo, kh, kw
    B, C, ho, wo, kh, kw = win.shape
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(B * ho * wo, C * kh * kw)
    acc = (cols @ w.reshape(w.shape[0], -1).astype(dt).T).astype(I64)
    acc = acc.reshape(B, ho, wo, -1).transpose(0, 3, 1, 2)
    return sat32(acc + channel(bias, 4, I64))


def dense_acc_int64(x, w, bias):
    """dense_acc on the int64 matmul only (the exact fallback; kept for benchmarks)."""
    x = i64(x).reshape(x.shape[0], -1)
    return sat32(x @ w.astype(I64).T + bias.astype(I64))


def conv_acc_int64(x, w, bias, stride, padding):
    """conv_acc on the int64 einsum only (the exact fallback; kept for benchmarks)."""
    win = windows(i64(x), w.shape[2:], stride, padding, 0)
    acc = np.einsum("bchwij,ocij->bohw", win, w.astype(I64))
    return sat32(acc + channel(bias, 4, I64))
