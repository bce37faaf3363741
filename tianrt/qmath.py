"""Integer-mode arithmetic and scale helpers in plain numpy (no numba): docs/integer.md.

Two kinds of function live here:

- the exact integer primitives on int64 arrays (``sat32``, ``round_shift``, ``requant``,
  ``round_half_away``, ``quantize``), used by the reference backend's integer mode;
- the float -> integer parameter helpers used by ``tr.quantize`` and the chip compiler:
  ``quantize_multiplier(scale) -> (m, n)`` with ``scale ~= m * 2**-n``, ``m`` in
  ``[2**14, 2**15)``, per-channel ``quantize_multipliers``, ``requant_params`` for a layer,
  ``quantize_leak`` for a membrane decay, and symmetric int8 weight / int32 bias / integer
  threshold quantisation.
"""
from __future__ import annotations

import math

import numpy as np

from .kernels.limits import (INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, MULT_BITS,  # noqa: F401
                             MULT_LIMIT, SHIFT_LIMIT)

WEIGHT_MAX = 127  # weights use the symmetric range [-127, 127]

I64 = np.int64


# -- exact integer primitives (int64 arrays) -------------------------------------------------

def sat32(x):
    """min(max(x, -2**31), 2**31 - 1) elementwise, as int64: saturate, never wrap."""
    return np.clip(np.asarray(x, dtype=I64), INT32_MIN, INT32_MAX)


def round_shift(x, n):
    """x / 2**n rounded half away from zero: sign(x) * ((|x| + 2**(n-1)) >> n), and x for
    n = 0. x int64 (|x| < 2**62), n in [0, 62] (scalar or broadcastable array)."""
    x = np.asarray(x, dtype=I64)
    n = np.asarray(n, dtype=I64)
    if np.any(n < 0) or np.any(n > SHIFT_LIMIT):
        raise ValueError(f"round_shift: shifts must be in [0, {SHIFT_LIMIT}]")
    half = np.where(n > 0, np.left_shift(I64(1), np.maximum(n - 1, 0)), 0)
    mag = np.right_shift(np.abs(x) + half, n)
    return np.where(x < 0, -mag, mag).astype(I64)


def requant(acc, m, n, lo=INT8_MIN, hi=INT8_MAX):
    """clamp(round_shift(acc * m, n), lo, hi) with the product exact in int64."""
    prod = np.asarray(acc, dtype=I64) * np.asarray(m, dtype=I64)
    return np.clip(round_shift(prod, n), lo, hi)


def rescale(acc, m, n):
    """round_shift(sat32(acc) * m, n): an exact product sum moved to another scale without a
    clamp (the feed-forward product of a q.SynRecurrent, requantised to its membrane's
    unit before the recurrent product is added). m in [0, 2**15), n in [0, 62]."""
    return round_shift(sat32(acc) * np.asarray(m, dtype=I64), n)


def round_half_away(y):
    """float64 -> int64, to nearest with halves away from zero, exactly (no y + 0.5 double
    rounding). |y| must be below 2**62."""
    y = np.asarray(y, dtype=np.float64)
    a = np.abs(y)
    f = np.floor(a)
    r = f.astype(I64) + (a - f >= 0.5)
    return np.where(y < 0, -r, r).astype(I64)


def quantize(x, scale, lo=INT8_MIN, hi=INT8_MAX):
    """q.Quantize: clamp(round_half_away(float64(x) / scale), lo, hi) as int32; NaN gives 0.
    ``scale``: a number, or one per feature (broadcast against x's trailing axes)."""
    y = np.asarray(x, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    y = np.where(np.isnan(y), 0.0, y)
    y = np.clip(y, lo - 1.0, hi + 1.0)  # keep huge or infinite quotients representable
    return np.clip(round_half_away(y), lo, hi).astype(np.int32)


def dequantize(q, scale):
    """q.Dequantize: float32(float64(q) * scale)."""
    return (np.asarray(q, dtype=np.float64) * float(scale)).astype(np.float32)


# -- real scales as fixed-point multipliers -----------------------------------------------------

def quantize_multiplier(scale: float) -> tuple[int, int]:
    """A real ``scale >= 0`` as ``(m, n)`` with ``scale ~= m * 2**-n``: ``m`` normalised to
    ``[2**14, 2**15)`` (relative error at most ``2**-15``) and ``0 <= n <= 62``.

    ``scale = 0`` gives ``(0, 0)``. Scales below ``2**-48`` cannot be normalised within
    ``n <= 62``: they get ``n = 62`` and a smaller ``m`` (``(0, 0)`` when it rounds to 0).
    Scales of ``2**15 - 1/2`` and above do not fit and raise ValueError.
    """
    s = float(scale)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"quantize_multiplier: scale must be a finite number >= 0, got {scale!r}")
    if s == 0.0:
        return 0, 0
    f, e = math.frexp(s)  # s = f * 2**e, 0.5 <= f < 1
    m = int(round_half_away(f * MULT_LIMIT))  # exact: scaling by a power of two
    n = MULT_BITS - e
    if m == MULT_LIMIT:
        m, n = m // 2, n - 1
    if n < 0:
        raise ValueError(f"quantize_multiplier: scale {s!r} is too large for a multiplier below "
                         f"2**15 with a shift >= 0 (largest is {MULT_LIMIT - 1}); "
                         "rescale the layer (e.g. a larger output scale)")
    if n > SHIFT_LIMIT:
        m = int(round_half_away(math.ldexp(s, SHIFT_LIMIT)))
        return (m, SHIFT_LIMIT) if m else (0, 0)
    return m, n


def quantize_multipliers(scales) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``quantize_multiplier``: int32 arrays ``(m, n)`` of the scales' shape."""
    s = np.asarray(scales, dtype=np.float64)
    pairs = [quantize_multiplier(v) for v in s.reshape(-1)]
    m = np.array([p[0] for p in pairs], dtype=np.int32).reshape(s.shape)
    n = np.array([p[1] for p in pairs], dtype=np.int32).reshape(s.shape)
    return m, n


def multiplier_value(m, n):
    """The real value ``m * 2**-n`` of a multiplier/shift pair (float64, arrays welcome)."""
    return np.ldexp(np.asarray(m, dtype=np.float64), -np.asarray(n, dtype=np.int32))


def requant_params(in_scale: float, weight_scale, out_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Multiplier/shift arrays of a q.Dense / q.Conv2d: the accumulator (in units of
    ``in_scale * weight_scale``) rescaled to the output's scale, per channel when
    ``weight_scale`` is an array."""
    if not float(out_scale) > 0 or not float(in_scale) > 0:
        raise ValueError(f"requant_params: scales must be > 0, got in_scale={in_scale}, out_scale={out_scale}")
    ws = np.asarray(weight_scale, dtype=np.float64)
    if np.any(~np.isfinite(ws)) or np.any(ws <= 0):
        raise ValueError("requant_params: weight scales must be finite and > 0")
    return quantize_multipliers(float(in_scale) * ws / float(out_scale))


def quantize_leak(beta: float) -> tuple[int, int]:
    """A decay factor ``beta`` in [0, 1] as ``(leak_mult, leak_shift)`` for q.LIF / q.LI /
    q.MembraneReadout: ``beta = 1`` (IF) is exactly ``(1, 0)``, ``beta = 0`` is ``(0, 0)``."""
    b = float(beta)
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"quantize_leak: beta must be in [0, 1], got {beta!r}")
    if b == 1.0:
        return 1, 0
    return quantize_multiplier(b)


# -- tensors ------------------------------------------------------------------------------------

def symmetric_scale(x, axis=None) -> np.ndarray | float:
    """The scale ``max|x| / 127`` that maps ``x`` onto [-127, 127]; per slice along the other
    axes when ``axis`` (the channel axis) is given. An all-zero slice gets scale 1."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    if not np.all(np.isfinite(a)):
        raise ValueError("symmetric_scale: values must be finite")
    if axis is None:
        m = float(a.max()) if a.size else 0.0
        return m / WEIGHT_MAX if m > 0 else 1.0
    red = tuple(i for i in range(a.ndim) if i != axis % a.ndim)
    m = a.max(axis=red) if a.size else np.zeros(a.shape[axis])
    return np.where(m > 0, m / WEIGHT_MAX, 1.0)


def quantize_weights(w, scale=None, axis=None) -> tuple[np.ndarray, np.ndarray | float]:
    """Symmetric int8 weights: ``(round_half_away(w / scale) clamped to [-127, 127], scale)``.
    Without ``scale`` it is ``symmetric_scale(w, axis)``; with ``axis`` (e.g. 0, the output
    channel) the scale is per channel and broadcast along that axis."""
    w = np.asarray(w, dtype=np.float64)
    if scale is None:
        scale = symmetric_scale(w, axis)
    s = np.asarray(scale, dtype=np.float64)
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("quantize_weights: scale must be finite and > 0")
    if s.ndim:
        if axis is None:
            raise ValueError("quantize_weights: a per-channel scale needs the channel axis")
        shape = [1] * w.ndim
        shape[axis] = -1
        s = s.reshape(shape)
    q = np.clip(round_half_away(np.clip(w / s, -WEIGHT_MAX - 1.0, WEIGHT_MAX + 1.0)), -WEIGHT_MAX, WEIGHT_MAX)
    return q.astype(np.int8), scale


def quantize_bias(b, scale) -> np.ndarray:
    """int32 bias in units of ``scale`` (= input scale * weight scale), saturating."""
    y = np.asarray(b, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("quantize_bias: bias / scale must be finite (scale > 0)")
    return np.clip(round_half_away(np.clip(y, INT32_MIN - 1.0, INT32_MAX + 1.0)),
                   INT32_MIN, INT32_MAX).astype(np.int32)


def quantize_threshold(theta: float, scale: float) -> int:
    """An integer firing threshold for q.LIF: round_half_away(theta / scale), at least 1."""
    y = float(theta) / float(scale)
    if not math.isfinite(y) or y <= 0:
        raise ValueError(f"quantize_threshold: theta / scale must be finite and > 0, got {theta}/{scale}")
    return int(min(max(int(round_half_away(min(y, INT32_MAX + 1.0))), 1), INT32_MAX))


def rate_spike_count(q, full_scale: int, ticks: int):
    """Spikes q.RateEncoder emits for ``q`` held ``ticks`` ticks from reset:
    ``floor((T x + floor(D/2)) / D)`` with ``x = clamp(q, 0, D)``."""
    d = int(full_scale)
    x = np.clip(np.asarray(q, dtype=I64), 0, d)
    return (I64(ticks) * x + d // 2) // d
