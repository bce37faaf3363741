"""Elementwise ANN kernels that numpy cannot do in place in one pass: sigmoid (in float64,
as the reference), per-channel affine (unfolded batch norm), scaled copy."""
import numpy as np
from ._jit import njit


@njit(cache=True)
def sigmoid(x, out):
    for k in range(x.size):
        out[k] = np.float32(1.0 / (1.0 + np.exp(-np.float64(x[k]))))


@njit(cache=True)
def channel_affine(x, scale, shift, inner, out):
    """out = x * scale[c] + shift[c] over flat (B, C, inner) data, float32."""
    n_c = scale.size
    k = 0
    while k < x.size:
        for c in range(n_c):
            sc, sh = scale[c], shift[c]
            for i in range(inner):
                out[k] = x[k] * sc + sh
                k += 1


@njit(cache=True)
def scale_copy(x, gain, out):
    g = np.float32(gain)
    for k in range(x.size):
        out[k] = x[k] * g


@njit(cache=True)
def add2(a, b, out):
    for k in range(out.size):
        out[k] = a[k] + b[k]


@njit(cache=True)
def add3(a, b, c, out):
    """(a + b) + c in float32, the order numpy's sum over a stacked axis uses."""
    for k in range(out.size):
        out[k] = (a[k] + b[k]) + c[k]
