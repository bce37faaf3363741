"""Exact integer Dense/Conv layers on float BLAS for the numba backend's integer mode.

At batch > 1, ``q.Dense``, ``q.Conv2d``, ``q.SynDense`` and ``q.SynConv2d`` run as one
float GEMM over the whole batch (im2col for convolutions) when the bound of
``tianrt.ops.exact.exact_float_dtype`` proves it exact (float32 below 2^24, float64 below
2^53), then add the bias, saturate and requantise in int64 (``intmath.gemm_acc`` /
``gemm_requant``), bit for bit as docs/integer.md says. The bound is checked on every
call against the current input (its ``max |x|``); when it fails, the caller runs its
int64 kernel instead. Buffers are allocated at bind, a float64 set only when first needed.

Small products (below SMALL_GEMM multiply-adds: batch-1 convolutions) run on
``intmath.gemm_nt``, numba's single-thread loop, instead of BLAS: about 2x slower than an
idle BLAS but never stalled by BLAS threads waiting for a core that another process holds
(seen here as 0.05 -> 8 ms per tick on a loaded 2-core machine), which streaming needs.
"""
from __future__ import annotations

import numpy as np

from ...kernels import intmath
from ...ops.exact import exact_float_dtype, weight_bound

SMALL_GEMM = 1 << 21


class ExactGemm:
    """One layer's exact GEMM path. ``x``: the bound input value array (B, ...); ``w``: int8
    (O, C, kh, kw) with ``conv`` = (sh, sw, ph, pw), or (O, n_in) with ``conv`` None;
    ``out``: the int32 output (B, O, ...); ``requant``: (mult, shift, lo, hi) or None (the
    int32 accumulators). Calling it returns False, having done nothing, when the bound does
    not hold."""

    def __init__(self, x, w, bias, out, conv=None, requant=None):
        self.x, self.bias, self.conv, self.requant = x, bias, conv, requant
        self.xf = x.reshape(-1)
        B, O = out.shape[0], w.shape[0]
        self.P = int(np.prod(out.shape[2:], dtype=np.int64)) if conv else 1
        self.out3 = out.reshape(B, O, self.P)
        self.K = int(np.prod(w.shape[1:]))
        self.rows = B * self.P
        self.w2 = w.reshape(O, self.K)
        self.kh, self.kw = (w.shape[2], w.shape[3]) if conv else (1, 1)
        self.wbound = weight_bound(w)
        self.small = self.rows * self.K * O < SMALL_GEMM
        self._bufs: dict = {}

    def _buffers(self, dt):
        if dt not in self._bufs:
            # BLAS reads w as (K, O); gemm_nt as (O, K)
            wt = np.ascontiguousarray((self.w2 if self.small else self.w2.T).astype(dt))
            direct = self.conv is None and self.x.dtype == dt  # spikes already float32
            cols = None if direct else np.zeros((self.rows, self.K), dt)
            a = self.x.reshape(self.rows, self.K) if direct else cols  # the GEMM's left operand
            g = np.zeros((self.rows, self.w2.shape[0]), dt)
            g3 = g.reshape(self.out3.shape[0], self.P, self.out3.shape[1])
            self._bufs[dt] = (wt, cols, None if cols is None else cols.reshape(-1), a, g, g3)
        return self._bufs[dt]

    def __call__(self) -> bool:
        dt = exact_float_dtype(self.wbound, intmath.max_abs(self.xf))
        if dt is None:
            return False
        wt, cols, cols_flat, a, g, g3 = self._buffers(dt)
        if self.conv is not None:
            intmath.im2col(self.x, self.kh, self.kw, *self.conv, cols)
        elif cols is not None:
            intmath.to_float(self.xf, cols_flat)
        if self.small:
            intmath.gemm_nt(a, wt, g)
        else:
            np.matmul(a, wt, out=g)
        if self.requant is None:
            intmath.gemm_acc(g3, self.bias, self.out3)
        else:
            intmath.gemm_requant(g3, self.bias, *self.requant, self.out3)
        return True
