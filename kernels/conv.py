"""2-D convolution (direct gather, im2col for BLAS, event-driven scatter for spikes) and
pooling on (B, C, H, W) float32 arrays, PyTorch layout and semantics (cross-correlation,
zero padding; max pooling pads with -inf, average pooling counts the padding)."""
import numpy as np
from numba import njit


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
    """(B, C, H, W) -> (B, C) mean; float64 accumulation rounded once to float32."""
    B, C, H, W = x.shape
    for b in range(B):
        for c in range(C):
            s = 0.0
            for iy in range(H):
                for ix in range(W):
                    s += x[b, c, iy, ix]
            out[b, c] = np.float32(s / (H * W))
