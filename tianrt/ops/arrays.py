"""Small numpy helpers shared by the reference rules of several op families."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

F32, I32, I64 = np.float32, np.int32, np.int64


def windows(x, kernel, stride, padding, fill):
    """The (kh, kw) windows of a batch of images x (B, C, H, W), padded with ``fill``:
    a view (B, C, H', W', kh, kw) taken every ``stride`` pixels."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::sh, ::sw]


def channel(v, ndim, dtype=None):
    """A per-channel vector shaped to broadcast against (B, C, ...)."""
    return np.asarray(v, dtype=dtype).reshape((1, -1) + (1,) * (ndim - 2))


def i64(x):
    return np.asarray(x).astype(I64, copy=False)


def unit(x, scale):
    """clip(x / scale, 0, 1) in float64: the encoders' normalised input."""
    return np.clip(x.astype(np.float64) / scale, 0.0, 1.0)
