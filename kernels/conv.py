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
    for b in range(B):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    m = -np.inf
                    for ky in range(kh):
                        iy = oy * sh - ph + ky
                        for kx in range(kw):
                            ix = ox * sw - pw + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                v = x[b, c, iy, ix]
                                if v > m or np.isnan(v):
                                    m = v
                    out[b, c, oy, ox] = m


@njit(cache=True)
def avgpool2d(x, kh, kw, sh, sw, ph, pw, out):
    B, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    n = np.float32(kh * kw)
    for b in range(B):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    s = np.float32(0.0)
                    for ky in range(kh):
                        iy = oy * sh - ph + ky
                        for kx in range(kw):
                            ix = ox * sw - pw + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                s += x[b, c, iy, ix]
                    out[b, c, oy, ox] = s / n


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
