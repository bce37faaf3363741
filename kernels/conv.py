"""2-D convolution (direct gather, im2col for BLAS, event-driven scatter for spikes) and
pooling on (B, C, H, W) float32 arrays, PyTorch layout and semantics (cross-correlation,
zero padding; max pooling pads with -inf, average pooling counts the padding)."""
import numpy as np
from ._jit import njit


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
def _taps3(w, o, c):
    return (w[o, c, 0, 0], w[o, c, 0, 1], w[o, c, 0, 2], w[o, c, 1, 0], w[o, c, 1, 1], w[o, c, 1, 2],
            w[o, c, 2, 0], w[o, c, 2, 1], w[o, c, 2, 2])


@njit(cache=True)
def conv3x3_wide(x, w, bias, ph, pw, xpad, wide, out, relu, has_relu, pool, has_pool):
    """Stride-1 3x3 convolution, arithmetic bound: the sample is laid out zero-padded in
    ``xpad`` rows (C, >= wide.shape[1] + 2*Wp + 2) and the output computed on the padded
    width Wp in ``wide`` (O, n >= Ho*Wp), two output channels per pass with all nine taps of an input
    channel in one vectorised loop: 9 loads, 2 load/stores and 18 FMAs per vector of
    outputs, against one load/store per FMA for an axpy per tap. The first input channel
    stores instead of accumulating. The epilogue drops the padded-width columns, adds the
    bias and, with ``has_relu``, also writes max(., 0) to ``relu`` and, with ``has_pool``
    too, the 2x2/2 max pooling of that to ``pool``.

    ``xpad``'s padding must be zero on entry (allocate it zeroed): only the interior is
    written. More than two output channels per pass needs more runtime alias checks than
    LLVM allows in one loop, and the loop stops vectorising (measured)."""
    B, C, H, W = x.shape
    O = w.shape[0]
    Wp = W + 2 * pw
    Ho, Wo = H + 2 * ph - 2, Wp - 2
    n = np.uint64(wide.shape[1])
    one, two = np.uint64(1), np.uint64(2)
    w1, w2 = np.uint64(Wp), np.uint64(2 * Wp)
    zero = np.float32(0.0)
    for b in range(B):
        for c in range(C):
            for y in range(H):
                base = (y + ph) * Wp + pw
                for z in range(W):
                    xpad[c, base + z] = x[b, c, y, z]
        for o0 in range(0, O - 1, 2):
            o1 = o0 + 1
            d0, d1 = wide[o0], wide[o1]
            for c in range(C):
                r = xpad[c]
                a0, a1, a2, a3, a4, a5, a6, a7, a8 = _taps3(w, o0, c)
                e0, e1, e2, e3, e4, e5, e6, e7, e8 = _taps3(w, o1, c)
                if c == 0:
                    for i in range(n):
                        u0, u1, u2 = r[i], r[i + one], r[i + two]
                        v0, v1, v2 = r[i + w1], r[i + w1 + one], r[i + w1 + two]
                        t0, t1, t2 = r[i + w2], r[i + w2 + one], r[i + w2 + two]
                        d0[i] = (a0 * u0 + a1 * u1 + a2 * u2) + (a3 * v0 + a4 * v1 + a5 * v2) + \
                            (a6 * t0 + a7 * t1 + a8 * t2)
                        d1[i] = (e0 * u0 + e1 * u1 + e2 * u2) + (e3 * v0 + e4 * v1 + e5 * v2) + \
                            (e6 * t0 + e7 * t1 + e8 * t2)
                else:
                    for i in range(n):
                        u0, u1, u2 = r[i], r[i + one], r[i + two]
                        v0, v1, v2 = r[i + w1], r[i + w1 + one], r[i + w1 + two]
                        t0, t1, t2 = r[i + w2], r[i + w2 + one], r[i + w2 + two]
                        d0[i] += (a0 * u0 + a1 * u1 + a2 * u2) + (a3 * v0 + a4 * v1 + a5 * v2) + \
                            (a6 * t0 + a7 * t1 + a8 * t2)
                        d1[i] += (e0 * u0 + e1 * u1 + e2 * u2) + (e3 * v0 + e4 * v1 + e5 * v2) + \
                            (e6 * t0 + e7 * t1 + e8 * t2)
        if O % 2:  # the last channel of an odd count, alone
            o0 = O - 1
            d0 = wide[o0]
            d0[:] = zero
            for c in range(C):
                r = xpad[c]
                a0, a1, a2, a3, a4, a5, a6, a7, a8 = _taps3(w, o0, c)
                for i in range(n):
                    d0[i] += (a0 * r[i] + a1 * r[i + one] + a2 * r[i + two]) + \
                        (a3 * r[i + w1] + a4 * r[i + w1 + one] + a5 * r[i + w1 + two]) + \
                        (a6 * r[i + w2] + a7 * r[i + w2 + one] + a8 * r[i + w2 + two])
        for o in range(O):
            bo = bias[o]
            for oy in range(Ho):
                src = wide[o, oy * Wp:oy * Wp + Wo]
                dst = out[b, o, oy]
                if has_relu:
                    rd = relu[b, o, oy]
                    for z in range(Wo):
                        v = src[z] + bo
                        dst[z] = v
                        rd[z] = max(v, zero)
                else:
                    for z in range(Wo):
                        dst[z] = src[z] + bo
    if has_pool:  # a separate loop nest: inside the channel loop it stopped the taps loops vectorising
        _maxpool2x2(relu, pool)


def conv3x3_scratch(c: int, o: int, h: int, w: int, ph: int, pw: int):
    """Zeroed (xpad, wide) scratch arrays for conv3x3_wide on a (c, h, w) input."""
    wp = w + 2 * pw
    n = (h + 2 * ph - 2) * wp
    return np.zeros((c, n + 2 * wp + 2), np.float32), np.zeros((o, n), np.float32)


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
