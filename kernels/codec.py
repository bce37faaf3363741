"""Bridges between tensors and spikes: encoders (rate, latency, Poisson threshold), decoders
(spike count tumbling/sliding, membrane readout, first-spike time) and the input check.

Arithmetic mirrors the reference backend exactly (float64 for encoder phases, float32 for
decoder accumulators), so outputs are bit-identical. Arrays are flat; decoders return True
on the ticks at which they emit.
"""
import numpy as np
from ._jit import njit

OK, NOT_FINITE, NOT_BINARY = 0, 1, 2


@njit(cache=True)
def check_copy(src, dst, spike):
    """Check a flat float32 input, then copy it into its buffer only if it is clean: returns
    OK, NOT_FINITE (NaN/inf present) or NOT_BINARY (spike input with a value other than 0/1)."""
    code = check_values(src, spike)
    if code == OK:
        for k in range(src.size):
            dst[k] = src[k]
    return code


@njit(cache=True)
def check_values(src, spike):
    """OK, NOT_FINITE or NOT_BINARY for a flat float32 input (see check_copy). Branch-free
    counting so the loop vectorises: x - x is 0 for finite x and NaN otherwise."""
    bad = 0
    nonbin = 0
    for k in range(src.size):
        x = src[k]
        bad += (x - x) != 0
        nonbin += (x != 0) & (x != 1)
    if bad:
        return NOT_FINITE
    if spike and nonbin:
        return NOT_BINARY
    return OK


@njit(cache=True, inline="always")
def _unit(x, scale):
    u = np.float64(x) / scale
    return min(max(u, 0.0), 1.0)


@njit(cache=True)
def rate_encode(x, scale, acc, out):
    """Integrate-and-fire coding: acc += clip(x/scale, 0, 1); spike when acc >= 1."""
    for k in range(acc.size):
        a = acc[k] + _unit(x[k], scale)
        if a >= 1.0:
            a -= 1.0
            out[k] = 1.0
        else:
            out[k] = 0.0
        acc[k] = a


@njit(cache=True)
def latency_encode(x, scale, window, phase, out):
    """One spike per window at phase floor((1 - u)(W - 1) + 1/2) for u = clip(x/scale) > 0."""
    for k in range(out.size):
        u = _unit(x[k], scale)
        target = np.floor((1.0 - u) * (window - 1) + 0.5)
        out[k] = 1.0 if (u > 0 and target == phase) else 0.0


@njit(cache=True)
def bernoulli_threshold(r, x, scale, out):
    """Poisson encoder's comparison: spike where the uniform draw r < clip(x/scale, 0, 1)."""
    for k in range(out.size):
        out[k] = 1.0 if r[k] < _unit(x[k], scale) else 0.0


@njit(cache=True)
def count_tumbling(s, count, div, emit, out):
    """count += s; at the window's end (``emit``) out = count / div and count restarts."""
    d = np.float32(div)
    for k in range(count.size):
        c = count[k] + s[k]
        if emit:
            out[k] = c / d
            c = np.float32(0.0)
        count[k] = c
    return emit


@njit(cache=True)
def count_sliding(s, ring, slot, count, div, emit, out):
    """Sliding window of W ticks kept as a ring of the last W spike vectors."""
    d = np.float32(div)
    n = count.size
    base = slot * n
    for k in range(n):
        c = count[k] + (s[k] - ring[base + k])
        ring[base + k] = s[k]
        count[k] = c
        if emit:
            out[k] = c / d
    return emit


@njit(cache=True)
def membrane_window(x, v, beta, emit, mean_div, out):
    """v = beta v + I; at the window's end emit v (v / W when mean_div > 0) and restart."""
    b32 = np.float32(beta)
    for k in range(v.size):
        vn = b32 * v[k] + x[k]
        if emit:
            out[k] = vn / np.float32(mean_div) if mean_div > 0 else vn
            vn = np.float32(0.0)
        v[k] = vn
    return emit


@njit(cache=True)
def first_spike(s, first, window, phase, out):
    """Per neuron the phase of its first spike in the window (W if none), emitted at the end."""
    w = np.float32(window)
    emit = phase == window - 1
    for k in range(first.size):
        f = first[k]
        if f == w and s[k] > 0:
            f = np.float32(phase)
        if emit:
            out[k] = f
            f = w
        first[k] = f
    return emit
