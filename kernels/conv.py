"""2-D convolution (direct gather, im2col for BLAS, event-driven scatter for spikes) and
pooling on (B, C, H, W) float32 arrays, PyTorch layout and semantics (cross-correlation,
zero padding; max pooling pads with -inf, average pooling counts the padding)."""
import numpy as np
from ._jit import njit
from .simd import LANES, round_up, vfma, vlane, vload, vmax, vpairmax, vrelu, vsplat, vstore


@njit(cache=True)
def conv2d_direct(x, w, bias, sh, sw, ph, pw, out):
    """Gather form: for every output row, axpy over the contiguous output width."""
    B, C, H, W = x.shape
    O, _, KH, KW = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for b in range(B):
        for o in range(O):
            for oy in range(Ho):
                for ox in range(Wo):
                    out[b, o, oy, ox] = bias[o]
            for c in range(C):
                for ky in range(KH):
                    for oy in range(Ho):
                        iy = oy * sh - ph + ky
                        if iy < 0 or iy >= H:
                            continue
                        for kx in range(KW):
                            wv = w[o, c, ky, kx]
                            # ox range with 0 <= ox*sw - pw + kx < W
                            lo = 0
                            while lo < Wo and lo * sw - pw + kx < 0:
                                lo += 1
                            hi = Wo
                            while hi > lo and (hi - 1) * sw - pw + kx >= W:
                                hi -= 1
                            for ox in range(lo, hi):
                                out[b, o, oy, ox] += wv * x[b, c, iy, ox * sw - pw + kx]


@njit(cache=True)
def conv2d_wide(x, w, bias, ph, pw, xpad, wide, out):
    """Stride-1 direct convolution as long contiguous axpys. The zero-padded input of a
    sample is laid out in ``xpad`` (C, Hp*Wp + KW) and the output is computed on the padded
    width (``wide`` (O, Ho*Wp)), so each (o, c, ky, kx) is one vectorisable loop over the
    whole output plane; the Wp - Wo extra columns are dropped when copying to ``out``."""
    B, C, H, W = x.shape
    O, _, KH, KW = w.shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    Ho, Wo = Hp - KH + 1, Wp - KW + 1
    n = np.uint64(Ho * Wp)
    for b in range(B):
        xpad[:] = 0.0
        for c in range(C):
            for y in range(H):
                base = (y + ph) * Wp + pw
                for z in range(W):
                    xpad[c, base + z] = x[b, c, y, z]
        for o in range(O):
            dst = wide[o]
            dst[:] = bias[o]
            for c in range(C):
                row = xpad[c]
                for ky in range(KH):
                    for kx in range(KW):
                        wv = w[o, c, ky, kx]
                        off = np.uint64(ky * Wp + kx)
                        for i in range(n):
                            dst[i] += wv * row[off + i]
            for oy in range(Ho):
                for ox in range(Wo):
                    out[b, o, oy, ox] = dst[oy * Wp + ox]


@njit(cache=True)
def conv3x3_wide(x, w, bias, ph, pw, xpad, wide, out, relu, has_relu, pool, has_pool):
    """Stride-1 3x3 convolution in explicit SIMD vectors (kernels/simd.py), row by row: the
    sample is laid out zero-padded in ``xpad`` (C, Hp*Wp + slack; the row stride Wp is the
    padded width rounded up to LANES, conv3x3_scratch's layout) and each output row
    computed in vectors of LANES outputs, two output channels per pass with the 18 weights
    of an input channel held in vector registers: per vector of outputs 9 loads, 2
    load/stores and 18 multiply-adds (FMA-bound). The first input channel starts from the
    bias; partial sums of the others go to ``wide`` (O, Ho*Wr), rows rounded up to Wr, a
    multiple of LANES; the last input channel writes ``out`` (and, with ``has_relu``,
    max(., 0) to ``relu``) directly, so there is no separate epilogue pass. With
    ``has_pool`` too, the 2x2/2 max pooling of ``relu`` goes to ``pool``.

    ``xpad``'s padding must be zero on entry (allocate it zeroed): only the interior is
    written. conv3x3_scratch allocates both scratch arrays. ``x``, ``out``, ``relu`` and
    ``pool`` must be C-contiguous (the backend's value arrays are)."""
    B, C, H, W = x.shape
    O = w.shape[0]
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    Wp = (W + 2 * pw + LANES - 1) // LANES * LANES  # xpad's row stride: rows start on a vector boundary
    Wr, rl = wide.shape[1] // Ho, xpad.shape[1]
    if not (x.flags.c_contiguous and out.flags.c_contiguous and relu.flags.c_contiguous
            and pool.flags.c_contiguous):
        raise ValueError("conv3x3_wide: x, out, relu and pool must be C-contiguous")
    # flat views, rows addressed by offset: an array view made (or passed) per row or per
    # channel costs two atomic reference-count updates, more than a row of arithmetic
    xf, of, rf = x.reshape(B * C * H * W), out.reshape(B * O * Ho * Wo), relu.reshape(relu.size)
    xp, wf = xpad.reshape(xpad.size), wide.reshape(wide.size)
    m = W - W % LANES
    for b in range(B):
        for c in range(C):
            for y in range(H):
                si, di = ((b * C + c) * H + y) * W, c * rl + (y + ph) * Wp + pw
                for z in range(0, m, LANES):
                    vstore(xp, di + z, vload(xf, si + z))
                for z in range(m, W):
                    xp[di + z] = xf[si + z]
        for o0 in range(0, O - 1, 2):
            _conv3x3_pair(xp, rl, w, bias, o0, wf, of, rf, has_relu, b, Ho, Wo, Wp, Wr)
        if O % 2:  # the last channel of an odd count, alone
            _conv3x3_one(xp, rl, w, bias, O - 1, wf, of, rf, has_relu, b, Ho, Wo, Wp, Wr)
    if has_pool:
        _maxpool2x2_flat(rf, pool.reshape(pool.size), B * O, Ho, Wo, pool.shape[2], pool.shape[3])


@njit(cache=True)
def _maxpool2x2_flat(xf, of, planes, H, W, Ho, Wo):
    """2x2/2 max pooling of ``planes`` (H, W) planes in the flat xf into (Ho, Wo) planes in
    the flat of, in vectors: each output vector from two input vectors of each of the two
    rows. The same comparisons in the same order as _maxpool2x2 (bit-identical)."""
    m = Wo - Wo % LANES
    for p in range(planes):
        for oy in range(Ho):
            r0, r1, d = (p * H + 2 * oy) * W, (p * H + 2 * oy + 1) * W, (p * Ho + oy) * Wo
            for ox in range(0, m, LANES):
                a = vpairmax(vload(xf, r0 + 2 * ox), vload(xf, r0 + 2 * ox + LANES))
                e = vpairmax(vload(xf, r1 + 2 * ox), vload(xf, r1 + 2 * ox + LANES))
                vstore(of, d + ox, vmax(a, e))
            for ox in range(m, Wo):
                a = max(xf[r0 + 2 * ox], xf[r0 + 2 * ox + 1])
                e = max(xf[r1 + 2 * ox], xf[r1 + 2 * ox + 1])
                of[d + ox] = max(a, e)


@njit(cache=True)
def _conv3x3_pair(xp, rl, w, bias, o0, wf, of, rf, has_relu, b, Ho, Wo, Wp, Wr):
    """Output channels o0, o0 + 1 of sample b (see conv3x3_wide); flat arrays."""
    o1, C = o0 + 1, w.shape[1]
    w2, plane = 2 * Wp, Ho * Wo
    d0, d1 = o0 * Ho * Wr, o1 * Ho * Wr
    obase = (b * w.shape[0] + o0) * plane
    for c in range(C):
        r = c * rl
        first, last = c == 0, c == C - 1
        a0, a1, a2 = vsplat(w[o0, c, 0, 0]), vsplat(w[o0, c, 0, 1]), vsplat(w[o0, c, 0, 2])
        a3, a4, a5 = vsplat(w[o0, c, 1, 0]), vsplat(w[o0, c, 1, 1]), vsplat(w[o0, c, 1, 2])
        a6, a7, a8 = vsplat(w[o0, c, 2, 0]), vsplat(w[o0, c, 2, 1]), vsplat(w[o0, c, 2, 2])
        e0, e1, e2 = vsplat(w[o1, c, 0, 0]), vsplat(w[o1, c, 0, 1]), vsplat(w[o1, c, 0, 2])
        e3, e4, e5 = vsplat(w[o1, c, 1, 0]), vsplat(w[o1, c, 1, 1]), vsplat(w[o1, c, 1, 2])
        e6, e7, e8 = vsplat(w[o1, c, 2, 0]), vsplat(w[o1, c, 2, 1]), vsplat(w[o1, c, 2, 2])
        b0, b1 = vsplat(bias[o0]), vsplat(bias[o1])
        for oy in range(Ho):
            for ox in range(0, Wo, LANES):
                i, j = r + oy * Wp + ox, oy * Wr + ox
                if first:
                    s0, s1 = b0, b1
                else:
                    s0, s1 = vload(wf, d0 + j), vload(wf, d1 + j)
                u = vload(xp, i)
                s0, s1 = vfma(a0, u, s0), vfma(e0, u, s1)
                u = vload(xp, i + 1)
                s0, s1 = vfma(a1, u, s0), vfma(e1, u, s1)
                u = vload(xp, i + 2)
                s0, s1 = vfma(a2, u, s0), vfma(e2, u, s1)
                u = vload(xp, i + Wp)
                s0, s1 = vfma(a3, u, s0), vfma(e3, u, s1)
                u = vload(xp, i + Wp + 1)
                s0, s1 = vfma(a4, u, s0), vfma(e4, u, s1)
                u = vload(xp, i + Wp + 2)
                s0, s1 = vfma(a5, u, s0), vfma(e5, u, s1)
                u = vload(xp, i + w2)
                s0, s1 = vfma(a6, u, s0), vfma(e6, u, s1)
                u = vload(xp, i + w2 + 1)
                s0, s1 = vfma(a7, u, s0), vfma(e7, u, s1)
                u = vload(xp, i + w2 + 2)
                s0, s1 = vfma(a8, u, s0), vfma(e8, u, s1)
                if not last:
                    vstore(wf, d0 + j, s0)
                    vstore(wf, d1 + j, s1)
                    continue
                k = obase + oy * Wo + ox  # the sums are complete: write the values
                if ox + LANES <= Wo:
                    vstore(of, k, s0)
                    vstore(of, k + plane, s1)
                    if has_relu:
                        vstore(rf, k, vrelu(s0))
                        vstore(rf, k + plane, vrelu(s1))
                else:
                    for q in range(Wo - ox):
                        v0, v1 = vlane(s0, q), vlane(s1, q)
                        of[k + q], of[k + plane + q] = v0, v1
                        if has_relu:
                            rf[k + q] = v0 if not v0 < 0 else np.float32(0.0)
                            rf[k + plane + q] = v1 if not v1 < 0 else np.float32(0.0)


@njit(cache=True)
def _conv3x3_one(xp, rl, w, bias, o, wf, of, rf, has_relu, b, Ho, Wo, Wp, Wr):
    """Output channel o alone (the last of an odd count); flat arrays."""
    C = w.shape[1]
    d, obase = o * Ho * Wr, (b * w.shape[0] + o) * Ho * Wo
    for c in range(C):
        for oy in range(Ho):
            for ox in range(0, Wo, LANES):
                i, j = c * rl + oy * Wp + ox, d + oy * Wr + ox
                s = vsplat(bias[o]) if c == 0 else vload(wf, j)
                for ky in range(3):
                    for kx in range(3):
                        s = vfma(vsplat(w[o, c, ky, kx]), vload(xp, i + ky * Wp + kx), s)
                if c < C - 1:
                    vstore(wf, j, s)
                    continue
                k = obase + oy * Wo + ox
                for q in range(min(LANES, Wo - ox)):
                    v0 = vlane(s, q)
                    of[k + q] = v0
                    if has_relu:
                        rf[k + q] = v0 if not v0 < 0 else np.float32(0.0)


def conv3x3_scratch(c: int, o: int, h: int, w: int, ph: int, pw: int):
    """Zeroed (xpad, wide) scratch arrays for conv3x3_wide on a (c, h, w) input: padded rows
    of a stride rounded up to LANES with the slack a vector row may read past the last
    column, and partial sums on rows rounded up to LANES; both start on a 64-byte boundary,
    so that the kx = 0 input loads and the partial-sum loads and stores are aligned (an
    unaligned 64-byte load spans two cache lines)."""
    wp, hp = round_up(w + 2 * pw), h + 2 * ph
    ho, wr = hp - 2, round_up(w + 2 * pw - 2)
    return _aligned_zeros((c, round_up((hp - 1) * wp + wr + 2))), _aligned_zeros((o, max(ho, 1) * wr))


def _aligned_zeros(shape):
    n = int(np.prod(shape))
    buf = np.zeros(n + LANES, np.float32)
    off = (-buf.ctypes.data % 64) // 4
    return buf[off:off + n].reshape(shape)


@njit(cache=True)
def im2col_wide(x, b, ph, pw, kh, kw, xpad, cols):
    """Stride-1 im2col on the padded width: row (c, ky, kx) of ``cols`` (C*kh*kw, Ho*Wp) is
    the contiguous run xpad[c, ky*Wp + kx :][:Ho*Wp] of the zero-padded sample b, so building
    it is plain copies. After ``wide = w2d @ cols``, ``unwide_bias`` keeps the Wo valid
    columns of each row."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    n = np.uint64((Hp - kh + 1) * Wp)
    xpad[:] = 0.0
    for c in range(C):
        for y in range(H):
            base = (y + ph) * Wp + pw
            for z in range(W):
                xpad[c, base + z] = x[b, c, y, z]
    r = 0
    for c in range(C):
        row = xpad[c]
        for ky in range(kh):
            for kx in range(kw):
                off = np.uint64(ky * Wp + kx)
                dst = cols[r]
                for i in range(n):
                    dst[i] = row[off + i]
                r += 1


@njit(cache=True)
def unwide_bias(wide, bias, wp, out, b):
    """out[b, o, y, x] = wide[o, y * wp + x] + bias[o] (drop the padded-width columns)."""
    O, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    for o in range(O):
        bo = bias[o]
        for y in range(Ho):
            src = wide[o, y * wp:y * wp + Wo]
            dst = out[b, o, y]
            for z in range(Wo):
                dst[z] = src[z] + bo


@njit(cache=True)
def unwide_bias_relu(wide, bias, wp, out, relu, b):
    """unwide_bias, also writing max(out, 0) to ``relu`` (a Conv2d -> ReLU epilogue)."""
    O, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    zero = np.float32(0.0)
    for o in range(O):
        bo = bias[o]
        for y in range(Ho):
            src = wide[o, y * wp:y * wp + Wo]
            dst, rd = out[b, o, y], relu[b, o, y]
            for z in range(Wo):
                v = src[z] + bo
                dst[z] = v
                rd[z] = max(v, zero)


@njit(cache=True)
def im2col(x, b, kh, kw, sh, sw, ph, pw, cols):
    """cols (C*kh*kw, Ho*Wo) of sample b, zero padded, for a BLAS matmul with w (O, C*kh*kw)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    r = 0
    for c in range(C):
        for ky in range(kh):
            for kx in range(kw):
                for oy in range(Ho):
                    iy = oy * sh - ph + ky
                    base = oy * Wo
                    for ox in range(Wo):
                        ix = ox * sw - pw + kx
                        if iy < 0 or iy >= H or ix < 0 or ix >= W:
                            cols[r, base + ox] = 0.0
                        else:
                            cols[r, base + ox] = x[b, c, iy, ix]
                r += 1


@njit(cache=True)
def conv2d_scatter(x, w, bias, sh, sw, ph, pw, out):
    """Event-driven form: each non-zero input pixel adds its weighted kernel to the outputs
    it reaches; the work follows the number of active inputs. Returns synaptic events."""
    B, C, H, W = x.shape
    O, _, KH, KW = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    ev = 0
    for b in range(B):
        for o in range(O):
            for oy in range(Ho):
                for ox in range(Wo):
                    out[b, o, oy, ox] = bias[o]
        for c in range(C):
            for iy in range(H):
                for ix in range(W):
                    xv = x[b, c, iy, ix]
                    if xv == 0:
                        continue
                    for ky in range(KH):
                        ty = iy + ph - ky
                        if ty < 0 or ty % sh != 0 or ty // sh >= Ho:
                            continue
                        oy = ty // sh
                        for kx in range(KW):
                            tx = ix + pw - kx
                            if tx < 0 or tx % sw != 0 or tx // sw >= Wo:
                                continue
                            ox = tx // sw
                            for o in range(O):
                                out[b, o, oy, ox] += xv * w[o, c, ky, kx]
                            ev += O
    return ev


@njit(cache=True)
def maxpool2d(x, kh, kw, sh, sw, ph, pw, out):
    B, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    if kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0:
        _maxpool2x2(x, out)
        return
    for b in range(B):
        for c in range(C):
            plane, dst = x[b, c], out[b, c]
            for oy in range(Ho):
                y0 = oy * sh - ph
                for ox in range(Wo):
                    x0 = ox * sw - pw
                    m = np.float32(-np.inf)
                    for ky in range(max(0, -y0), min(kh, H - y0)):
                        src = plane[y0 + ky]
                        for kx in range(max(0, -x0), min(kw, W - x0)):
                            v = src[x0 + kx]
                            if v > m:
                                m = v
                    dst[oy, ox] = m


@njit(cache=True)
def _maxpool2x2(x, out):
    # the common 2x2/2 case: two row maxima then a pairwise maximum, no bounds tests
    B, C = x.shape[0], x.shape[1]
    Ho, Wo = out.shape[2], out.shape[3]
    for b in range(B):
        for c in range(C):
            for oy in range(Ho):
                r0, r1, dst = x[b, c, 2 * oy], x[b, c, 2 * oy + 1], out[b, c, oy]
                for ox in range(Wo):
                    a = max(r0[2 * ox], r0[2 * ox + 1])
                    d = max(r1[2 * ox], r1[2 * ox + 1])
                    dst[ox] = max(a, d)


@njit(cache=True)
def avgpool2d(x, kh, kw, sh, sw, ph, pw, out):
    B, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    n = np.float32(kh * kw)
    for b in range(B):
        for c in range(C):
            plane, dst = x[b, c], out[b, c]
            for oy in range(Ho):
                y0 = oy * sh - ph
                for ox in range(Wo):
                    x0 = ox * sw - pw
                    s = np.float32(0.0)
                    for ky in range(max(0, -y0), min(kh, H - y0)):
                        src = plane[y0 + ky]
                        for kx in range(max(0, -x0), min(kw, W - x0)):
                            s += src[x0 + kx]
                    dst[oy, ox] = s / n


@njit(cache=True)
def global_avgpool(x, out):
    """(B, C, H, W) -> (B, C) mean; float64 accumulation (four interleaved partial sums,
    so that the adds overlap instead of waiting on one another) rounded once to float32."""
    B, C, H, W = x.shape
    n = H * W
    xf = x.reshape(B * C, n)
    m4 = n - n % 4
    for b in range(B):
        for c in range(C):
            row = xf[b * C + c]
            s0 = s1 = s2 = s3 = 0.0
            for k in range(0, m4, 4):
                s0 += row[k]
                s1 += row[k + 1]
                s2 += row[k + 2]
                s3 += row[k + 3]
            for k in range(m4, n):
                s0 += row[k]
            out[b, c] = np.float32(((s0 + s1) + (s2 + s3)) / n)
