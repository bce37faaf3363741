"""Integer (chip mode) layer kernels (numba): dense and synaptic accumulation, integer
convolutions and pooling, and the helpers of the exact float GEMM. docs/integer.md, bit for
bit; conventions as in tianrt.kernels.intmath (which re-exports these names)."""
from __future__ import annotations

import numpy as np
from ._jit import njit

from .intprim import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, _same_size, requant, rescale, sat32


# -- dense and synaptic accumulation ---------------------------------------------------------

@njit(cache=True)
def acc_set_bias(acc, bias):
    """acc (int64) = bias: start an accumulation."""
    _same_size(acc, bias)
    for o in range(acc.size):
        acc[o] = bias[o]


@njit(cache=True)
def acc_add_events(x, wt, acc):
    """Event-driven accumulation: for each nonzero x[j] add x[j] * wt[j, :] to acc (int64).
    x: one sample's spikes (0/1) or integer currents, (n_in,); wt: int8 (n_in, n_out), the
    transposed weight, so each event reads one contiguous row. Work follows the number of
    active inputs, not the fan-in. Returns the number of active inputs."""
    n_in, n_out = wt.shape
    if x.size != n_in or acc.size != n_out:
        raise ValueError("intmath.acc_add_events: x, wt (n_in, n_out) and acc disagree")
    active = 0
    for j in range(n_in):
        xv = x[j]
        if xv != 0:
            active += 1
            k = np.int64(xv)
            if k == 1:
                for o in range(n_out):
                    acc[o] += wt[j, o]
            else:
                for o in range(n_out):
                    acc[o] += k * np.int64(wt[j, o])
    return active


@njit(cache=True)
def acc_add_index_events(idx, wt, acc):
    """acc (int64) += wt[j, :] for each presynaptic index j in idx (events as a list, e.g.
    routed spike packets); wt int8 (n_in, n_out)."""
    n_in, n_out = wt.shape
    if acc.size != n_out:
        raise ValueError("intmath.acc_add_index_events: acc size differs from wt's n_out")
    for e in range(idx.size):
        j = idx[e]
        if j < 0 or j >= n_in:
            raise ValueError("intmath.acc_add_index_events: presynaptic index out of range")
        for o in range(n_out):
            acc[o] += wt[j, o]


@njit(cache=True)
def acc_add_dense(x, w, acc):
    """Dense accumulation acc[o] += sum_i w[o, i] x[i] (int64); w int8 (n_out, n_in)."""
    n_out, n_in = w.shape
    if x.size != n_in or acc.size != n_out:
        raise ValueError("intmath.acc_add_dense: x, w (n_out, n_in) and acc disagree")
    for o in range(n_out):
        s = np.int64(0)
        for i in range(n_in):
            s += np.int64(w[o, i]) * np.int64(x[i])
        acc[o] += s


@njit(cache=True)
def acc_store_sat32(acc, out):
    """out (int32) = sat32(acc)."""
    _same_size(acc, out)
    for o in range(acc.size):
        out[o] = sat32(acc[o])


@njit(cache=True)
def dense_acc(x, w, bias, out):
    """The int32 accumulators of q.Dense / q.SynDense, dense path:
    out[b, o] = sat32(sum_i w[o, i] x[b, i] + bias[o]); x (B, n_in), w int8 (n_out, n_in)."""
    n_out, n_in = w.shape
    B = x.shape[0]
    if x.shape[1] != n_in or bias.size != n_out or out.shape[0] != B or out.shape[1] != n_out:
        raise ValueError("intmath.dense_acc: x (B, n_in), w (n_out, n_in), bias, out (B, n_out) disagree")
    for b in range(B):
        for o in range(n_out):
            s = np.int64(bias[o])
            for i in range(n_in):
                s += np.int64(w[o, i]) * np.int64(x[b, i])
            out[b, o] = sat32(s)


@njit(cache=True)
def dense(x, w, bias, mult, shift, lo, hi, out):
    """q.Dense: out[b, o] = requant(sat32(W x + bias)[o], mult[o], shift[o], lo, hi)."""
    n_out, n_in = w.shape
    B = x.shape[0]
    if (x.shape[1] != n_in or bias.size != n_out or mult.size != n_out or shift.size != n_out
            or out.shape[0] != B or out.shape[1] != n_out):
        raise ValueError("intmath.dense: x (B, n_in), w (n_out, n_in), bias/mult/shift (n_out,), out (B, n_out) disagree")
    for b in range(B):
        for o in range(n_out):
            s = np.int64(bias[o])
            for i in range(n_in):
                s += np.int64(w[o, i]) * np.int64(x[b, i])
            out[b, o] = requant(sat32(s), mult[o], shift[o], lo, hi)


@njit(cache=True)
def syn_dense_events(x, wt, bias, out, acc):
    """q.SynDense, event-driven: out[b] = sat32(sum over nonzero x[b, j] of x[b, j] wt[j] + bias).
    x (B, n_in) spikes or integer currents; wt int8 (n_in, n_out) (the transposed weight);
    acc: int64 scratch of n_out. Returns the number of active inputs over the batch
    (synaptic events = that times n_out)."""
    B = x.shape[0]
    n_out = wt.shape[1]
    if out.shape[0] != B or out.shape[1] != n_out:
        raise ValueError("intmath.syn_dense_events: out must be (B, n_out)")
    active = 0
    for b in range(B):
        acc_set_bias(acc, bias)
        active += acc_add_events(x[b], wt, acc)
        acc_store_sat32(acc, out[b])
    return active


@njit(cache=True)
def syn_recurrent_events(x, r, wt, wt_rec, bias, out, acc):
    """q.SynRecurrent, event-driven: out[b] = sat32(W x[b] + W_rec r[b] + bias), one
    saturation after the exact sum. wt (n_in, n_out), wt_rec (n_out, n_out) transposed;
    acc int64 scratch of n_out. Returns the number of active inputs (x and r)."""
    B = x.shape[0]
    n_out = wt.shape[1]
    if r.shape[0] != B or out.shape[0] != B or out.shape[1] != n_out:
        raise ValueError("intmath.syn_recurrent_events: x, r and out batch sizes disagree")
    active = 0
    for b in range(B):
        acc_set_bias(acc, bias)
        active += acc_add_events(x[b], wt, acc)
        active += acc_add_events(r[b], wt_rec, acc)
        acc_store_sat32(acc, out[b])
    return active


@njit(cache=True)
def acc_add_rescaled(part, mult, shift, acc):
    """acc[o] += rescale(part[o], mult[o], shift[o]) (int64): a product summed at its own
    scale, moved to the accumulator's; mult/shift one per neuron (or one for all, size 1)."""
    _same_size(part, acc)
    one = mult.size == 1
    if shift.size != mult.size or not (one or mult.size == acc.size):
        raise ValueError("intmath.acc_add_rescaled: mult and shift must have size 1 or one per neuron")
    for o in range(acc.size):
        k = 0 if one else o
        acc[o] += rescale(part[o], mult[k], shift[k])


@njit(cache=True)
def syn_recurrent_rescaled_events(x, r, wt, wt_rec, bias, mult, shift, out, acc, part):
    """q.SynRecurrent with a rescaled feed-forward product, event-driven:
    out[b] = sat32(rescale(W x[b], mult, shift) + W_rec r[b] + bias). ``part``: int64
    scratch of n_out for the feed-forward sum. Returns the number of active inputs."""
    B = x.shape[0]
    n_out = wt.shape[1]
    if r.shape[0] != B or out.shape[0] != B or out.shape[1] != n_out or part.size != n_out:
        raise ValueError("intmath.syn_recurrent_rescaled_events: x, r, out and scratch disagree")
    active = 0
    for b in range(B):
        part[:] = 0
        active += acc_add_events(x[b], wt, part)
        acc_set_bias(acc, bias)
        acc_add_rescaled(part, mult, shift, acc)
        active += acc_add_events(r[b], wt_rec, acc)
        acc_store_sat32(acc, out[b])
    return active


# -- convolution and pooling (B, C, H, W) ------------------------------------------------------

@njit(cache=True)
def _check_window_out(x, out, c_out, kh, kw, sh, sw, ph, pw):
    B, _, H, W = x.shape
    ho = (H + 2 * ph - kh) // sh + 1
    wo = (W + 2 * pw - kw) // sw + 1
    if (sh < 1 or sw < 1 or ho < 1 or wo < 1 or out.shape[0] != B or out.shape[1] != c_out
            or out.shape[2] != ho or out.shape[3] != wo):
        raise ValueError("intmath: output shape is not (B, C_out, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1)")


@njit(cache=True)
def _conv_row(x, w, b, o, oy, sh, sw, ph, pw, bias_o, row):
    """row[ox] (int64) = bias_o + the zero-padded window sum of output row oy, channel o.
    Loops weight by weight over the valid output columns, so the inner loop is a
    bounds-check-free strided multiply-add that LLVM can vectorise."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    kh, kw = w.shape[2], w.shape[3]
    wo = row.size
    for ox in range(wo):
        row[ox] = bias_o
    for c in range(C):
        for ky in range(kh):
            iy = oy * sh - ph + ky
            if iy < 0 or iy >= H:
                continue
            for kx in range(kw):
                wv = np.int64(w[o, c, ky, kx])
                if wv == 0:
                    continue
                # output columns whose input column ox*sw - pw + kx lies in [0, W)
                lo = max(0, (pw - kx + sw - 1) // sw)
                hi = min(wo, (W - 1 + pw - kx) // sw + 1)
                if hi <= lo:
                    continue
                # slices indexed from 0 (no negative-index wraparound checks) vectorise
                start = lo * sw + kx - pw
                rs = row[lo:hi]
                if sw == 1:  # a contiguous slice: the common case, vectorised
                    xc = x[b, c, iy, start:start + hi - lo]
                    for i in range(rs.size):
                        rs[i] += wv * np.int64(xc[i])
                else:
                    xs = x[b, c, iy, start:start + (hi - lo - 1) * sw + 1:sw]
                    for i in range(rs.size):
                        rs[i] += wv * np.int64(xs[i])


@njit(cache=True)
def conv2d_acc(x, w, bias, sh, sw, ph, pw, out):
    """The int32 accumulators of q.Conv2d / q.SynConv2d: out[b, o, y, x] = sat32(bias[o] +
    sum over the zero-padded window of w[o] x[b]); w int8 (O, C, kh, kw); x (B, C, H, W)
    int8-range activations, spikes or currents."""
    O, C, kh, kw = w.shape
    if x.shape[1] != C or bias.size != O:
        raise ValueError("intmath.conv2d_acc: x channels or bias size disagree with w (O, C, kh, kw)")
    _check_window_out(x, out, O, kh, kw, sh, sw, ph, pw)
    row = np.empty(out.shape[3], np.int64)  # the one allocation: a row of accumulators
    for b in range(x.shape[0]):
        for o in range(O):
            for oy in range(out.shape[2]):
                _conv_row(x, w, b, o, oy, sh, sw, ph, pw, np.int64(bias[o]), row)
                orow = out[b, o, oy]
                for ox in range(row.size):
                    orow[ox] = sat32(row[ox])


@njit(cache=True)
def conv2d_events_acc(x, w, bias, sh, sw, ph, pw, out, acc):
    """q.SynConv2d, event-driven: the same int32 accumulators as conv2d_acc, but work follows
    the nonzero inputs: each active x[b, c, iy, ix] scatters x * w[:, c, ky, kx] into every
    output it reaches. acc: int64 scratch of shape (O, Ho, Wo). Returns the number of
    active inputs over the batch."""
    O, C, kh, kw = w.shape
    if x.shape[1] != C or bias.size != O:
        raise ValueError("intmath.conv2d_events_acc: x channels or bias size disagree with w (O, C, kh, kw)")
    _check_window_out(x, out, O, kh, kw, sh, sw, ph, pw)
    ho, wo = out.shape[2], out.shape[3]
    if acc.shape[0] != O or acc.shape[1] != ho or acc.shape[2] != wo:
        raise ValueError("intmath.conv2d_events_acc: acc scratch must be (O, Ho, Wo)")
    H, W = x.shape[2], x.shape[3]
    active = 0
    for b in range(x.shape[0]):
        for o in range(O):
            for oy in range(ho):
                for ox in range(wo):
                    acc[o, oy, ox] = bias[o]
        for c in range(C):
            for iy in range(H):
                for ix in range(W):
                    xv = x[b, c, iy, ix]
                    if xv == 0:
                        continue
                    active += 1
                    k = np.int64(xv)
                    for ky in range(kh):
                        ty = iy + ph - ky
                        if ty < 0 or ty % sh != 0 or ty // sh >= ho:
                            continue
                        oy = ty // sh
                        for kx in range(kw):
                            tx = ix + pw - kx
                            if tx < 0 or tx % sw != 0 or tx // sw >= wo:
                                continue
                            ox = tx // sw
                            for o in range(O):
                                acc[o, oy, ox] += k * np.int64(w[o, c, ky, kx])
        for o in range(O):
            for oy in range(ho):
                for ox in range(wo):
                    out[b, o, oy, ox] = sat32(acc[o, oy, ox])
    return active


@njit(cache=True)
def conv2d(x, w, bias, mult, shift, sh, sw, ph, pw, lo, hi, out):
    """q.Conv2d: out = requant(sat32(conv + bias), mult[o], shift[o], lo, hi) per channel o."""
    O, C, kh, kw = w.shape
    if x.shape[1] != C or bias.size != O or mult.size != O or shift.size != O:
        raise ValueError("intmath.conv2d: x channels or bias/mult/shift sizes disagree with w (O, C, kh, kw)")
    _check_window_out(x, out, O, kh, kw, sh, sw, ph, pw)
    row = np.empty(out.shape[3], np.int64)  # the one allocation: a row of accumulators
    for b in range(x.shape[0]):
        for o in range(O):
            for oy in range(out.shape[2]):
                _conv_row(x, w, b, o, oy, sh, sw, ph, pw, np.int64(bias[o]), row)
                orow = out[b, o, oy]
                m, n = mult[o], shift[o]
                for ox in range(row.size):
                    orow[ox] = requant(sat32(row[ox]), m, n, lo, hi)


@njit(cache=True)
def maxpool2d(x, kh, kw, sh, sw, ph, pw, out):
    """q.MaxPool2d: max over each window, padding counting as -128."""
    _check_window_out(x, out, x.shape[1], kh, kw, sh, sw, ph, pw)
    H, W = x.shape[2], x.shape[3]
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oy in range(out.shape[2]):
                for ox in range(out.shape[3]):
                    m = np.int64(INT32_MIN) - 1
                    for ky in range(kh):
                        iy = oy * sh - ph + ky
                        for kx in range(kw):
                            ix = ox * sw - pw + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                v = np.int64(x[b, c, iy, ix])
                            else:
                                v = np.int64(INT8_MIN)
                            if v > m:
                                m = v
                    out[b, c, oy, ox] = m


@njit(cache=True)
def avgpool2d(x, kh, kw, sh, sw, ph, pw, mult, shift, out):
    """q.AvgPool2d: requant(sat32(window sum, zero padding counted), mult, shift, -128, 127)."""
    _check_window_out(x, out, x.shape[1], kh, kw, sh, sw, ph, pw)
    H, W = x.shape[2], x.shape[3]
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oy in range(out.shape[2]):
                for ox in range(out.shape[3]):
                    s = np.int64(0)
                    for ky in range(kh):
                        iy = oy * sh - ph + ky
                        if iy < 0 or iy >= H:
                            continue
                        for kx in range(kw):
                            ix = ox * sw - pw + kx
                            if 0 <= ix < W:
                                s += np.int64(x[b, c, iy, ix])
                    out[b, c, oy, ox] = requant(sat32(s), mult, shift, INT8_MIN, INT8_MAX)


@njit(cache=True)
def global_avgpool(x, mult, shift, out):
    """q.GlobalAvgPool2d: out[b, c] = requant(sat32(sum over H, W), mult, shift, -128, 127)."""
    B, C, H, W = x.shape
    if out.shape[0] != B or out.shape[1] != C:
        raise ValueError("intmath.global_avgpool: out must be (B, C)")
    for b in range(B):
        for c in range(C):
            s = np.int64(0)
            for y in range(H):
                for z in range(W):
                    s += np.int64(x[b, c, y, z])
            out[b, c] = requant(sat32(s), mult, shift, INT8_MIN, INT8_MAX)


# -- exact integer products on float BLAS ------------------------------------------------------
# An int8 weight times an integer input is an integer; a float32 (float64) sum of such terms
# is exact, in any order and with or without FMA, while every partial sum stays below 2^24
# (2^53) in magnitude. Every partial sum is bounded by sum_i |w[o, i]| * max |x|, so with
# that bound below the limit, float GEMM (BLAS) followed by a cast to int64 gives the exact
# int64 sum. The callers add the bias and saturate in int64 afterwards (docs/integer.md);
# the bound and the choice of dtype: tianrt.ops.exact.exact_float_dtype.

@njit(cache=True)
def max_abs(x):
    """max |x| over a flat array of integers or 0/1 spikes, as an int64 (0 when empty);
    a non-integer float is rounded up, so the bound stays a bound."""
    m = 0.0
    for k in range(x.size):
        a = abs(np.float64(x[k]))
        if a > m:
            m = a
    if m > 9.2e18:
        return np.int64(INT32_MAX) * 2 ** 31
    return np.int64(np.ceil(m))


@njit(cache=True)
def to_float(x, out):
    """out = x as floats (flat arrays): the operand of an exact float GEMM."""
    _same_size(x, out)
    for k in range(x.size):
        out[k] = x[k]


@njit(cache=True)
def im2col(x, kh, kw, sh, sw, ph, pw, cols):
    """cols[(b * Ho + oy) * Wo + ox, (c * kh + ky) * kw + kx] = x[b, c, oy*sh - ph + ky,
    ox*sw - pw + kx], zero outside x: the zero-padded windows of the whole batch as rows
    of a (B * Ho * Wo, C * kh * kw) float matrix, so conv = cols @ w.reshape(O, -1).T."""
    B, C, H, W = x.shape
    ho = (H + 2 * ph - kh) // sh + 1
    wo = (W + 2 * pw - kw) // sw + 1
    if sh < 1 or sw < 1 or ho < 1 or wo < 1 or cols.shape[0] != B * ho * wo or cols.shape[1] != C * kh * kw:
        raise ValueError("intmath.im2col: cols must be (B * Ho * Wo, C * kh * kw)")
    r = 0
    for b in range(B):
        for oy in range(ho):
            for ox in range(wo):
                row = cols[r]
                k = 0
                for c in range(C):
                    for ky in range(kh):
                        iy = oy * sh - ph + ky
                        for kx in range(kw):
                            ix = ox * sw - pw + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                row[k] = x[b, c, iy, ix]
                            else:
                                row[k] = 0
                            k += 1
                r += 1


@njit(cache=True)
def gemm_acc(g, bias, out):
    """The int32 accumulators from an exact float GEMM: out[b, o, p] = sat32(int64(g[b, p, o])
    + bias[o]); g (B, P, O) float holding integers, out (B, O, P) int32 (P = Ho * Wo for a
    convolution, 1 for a dense layer)."""
    B, P, O = g.shape
    if out.shape[0] != B or out.shape[1] != O or out.shape[2] != P or bias.size != O:
        raise ValueError("intmath.gemm_acc: g (B, P, O), bias (O,), out (B, O, P) disagree")
    for b in range(B):
        for p in range(P):
            for o in range(O):
                out[b, o, p] = sat32(np.int64(g[b, p, o]) + np.int64(bias[o]))


@njit(cache=True)
def gemm_requant(g, bias, mult, shift, lo, hi, out):
    """q.Dense / q.Conv2d from an exact float GEMM: out[b, o, p] = requant(sat32(int64(g[b, p,
    o]) + bias[o]), mult[o], shift[o], lo, hi); shapes as gemm_acc."""
    B, P, O = g.shape
    if (out.shape[0] != B or out.shape[1] != O or out.shape[2] != P or bias.size != O
            or mult.size != O or shift.size != O):
        raise ValueError("intmath.gemm_requant: g (B, P, O), bias/mult/shift (O,), out (B, O, P) disagree")
    for b in range(B):
        for p in range(P):
            for o in range(O):
                out[b, o, p] = requant(sat32(np.int64(g[b, p, o]) + np.int64(bias[o])), mult[o], shift[o], lo, hi)


@njit(cache=True, fastmath={"reassoc", "contract"})
def gemm_nt(a, b, g):
    """g[i, j] = sum_k a[i, k] b[j, k] (float, a (N, K), b (M, K), g (N, M)): a single-thread
    GEMM for small exact products, predictable where BLAS's threads compete for cores.
    Reassociation (vectorised sums) is allowed: under the exactness bound every order of
    the sum gives the same exact integer."""
    n, kk = a.shape
    m = b.shape[0]
    if b.shape[1] != kk or g.shape[0] != n or g.shape[1] != m:
        raise ValueError("intmath.gemm_nt: a (N, K), b (M, K), g (N, M) disagree")
    for i in range(n):
        ai = a[i]
        for j in range(m):
            bj = b[j]
            s = g.dtype.type(0)
            for k in range(kk):
                s += ai[k] * bj[k]
            g[i, j] = s
