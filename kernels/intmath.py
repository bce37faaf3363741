"""Integer (chip) mode arithmetic as numba kernels: docs/integer.md, bit for bit.

Pure functions on arrays and scalars, no graph. The numba backend's integer mode and the
firmware_sim chip emulator both call these, which is what makes them bit-exact with each
other; tests hold them to a pure-Python oracle written from docs/integer.md.

Conventions:

- Activations, currents, membranes and encoder accumulators are int32 arrays; weights int8
  (PyTorch layout (out, in[, kh, kw]) unless a name says ``wt`` = transposed (in, out));
  biases int32; per-channel multipliers and shifts int32. Every intermediate is int64.
- Overflow saturates (``sat32``), never wraps, wherever docs/integer.md says so.
- Elementwise kernels take flat 1-D C-contiguous arrays (pass ``a.reshape(-1)``); layer
  kernels take a leading batch axis. Results go into arrays the caller preallocates; the
  kernels allocate nothing (the integer convolutions: one row of int64 accumulators).
- Spike inputs may be any numeric dtype (float32, uint8, bool): nonzero is a spike. Spike
  outputs are written as 0/1 in the output array's dtype.
- Shapes are checked on entry (numba does not bounds-check): a mismatch raises ValueError.
"""
from __future__ import annotations

import numpy as np
from ._jit import njit

from .intlayers import (  # noqa: F401 (re-exported: intmath is the one name callers use)
    acc_set_bias, acc_add_events, acc_add_index_events, acc_add_dense, acc_store_sat32, dense_acc, dense, syn_dense_events, syn_recurrent_events, acc_add_rescaled, syn_recurrent_rescaled_events, conv2d_acc, conv2d_events_acc, conv2d, maxpool2d, avgpool2d, global_avgpool, max_abs, to_float, im2col, gemm_acc, gemm_requant, gemm_nt)
from .intprim import (  # noqa: F401 (re-exported)
    INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, sat32, round_shift, clamp, requant, rescale, round_half_away, latency_phase, rate_spike_count, _same_size)


# -- elementwise (flat 1-D arrays) -------------------------------------------------------------

@njit(cache=True)
def quantize(x, scale, out):
    """q.Quantize: out = clamp(round_half_away(float64(x) / scale), -128, 127); NaN gives 0."""
    _same_size(x, out)
    for k in range(x.size):
        y = np.float64(x[k]) / scale
        if y != y:
            out[k] = 0
            continue
        # clamp before rounding so that huge or infinite quotients stay representable
        if y > 256.0:
            y = 256.0
        elif y < -256.0:
            y = -256.0
        out[k] = clamp(round_half_away(y), INT8_MIN, INT8_MAX)


@njit(cache=True)
def dequantize(q, scale, out):
    """q.Dequantize: out = float32(float64(q) * scale)."""
    _same_size(q, out)
    for k in range(q.size):
        out[k] = np.float32(np.float64(q[k]) * scale)


@njit(cache=True)
def clamp_array(x, lo, hi, out):
    """q.Clamp: out = min(max(x, lo), hi)."""
    _same_size(x, out)
    for k in range(x.size):
        out[k] = clamp(x[k], lo, hi)


@njit(cache=True)
def lookup(x, table, out):
    """q.Lookup: out = table[clamp(x, -128, 127) + 128] (table: 256 int8 entries)."""
    _same_size(x, out)
    if table.size != 256:
        raise ValueError("intmath.lookup: the table needs 256 entries")
    for k in range(x.size):
        out[k] = table[clamp(x[k], INT8_MIN, INT8_MAX) + 128]


@njit(cache=True)
def add_scaled(x, m, acc):
    """acc += x * m in int64 (one input of q.Add; start from acc = 0)."""
    _same_size(x, acc)
    mm = np.int64(m)
    for k in range(x.size):
        acc[k] += np.int64(x[k]) * mm


@njit(cache=True)
def requant_array(acc, m, n, lo, hi, out):
    """out = requant(acc, m, n, lo, hi) elementwise, one multiplier and shift for all
    (q.Add is requant_array(sum, 1, shift, lo, hi, out) on the add_scaled sum)."""
    _same_size(acc, out)
    for k in range(acc.size):
        out[k] = clamp(round_shift(np.int64(acc[k]) * np.int64(m), n), lo, hi)


@njit(cache=True)
def requant_channels(acc, mult, shift, lo, hi, inner, out):
    """Per-channel requant of a flat (B, C, inner) accumulator array: element k belongs to
    channel (k // inner) % C, C = mult.size (inner = 1 for Dense, Ho*Wo for Conv2d)."""
    _same_size(acc, out)
    c = mult.size
    if shift.size != c or inner < 1 or acc.size % (c * inner) != 0:
        raise ValueError("intmath.requant_channels: acc size is not a multiple of channels * inner")
    k = 0
    for _ in range(acc.size // (c * inner)):
        for ch in range(c):
            m, n = mult[ch], shift[ch]
            for _i in range(inner):
                out[k] = requant(acc[k], m, n, lo, hi)
                k += 1


@njit(cache=True)
def direct_current(q, gain, out):
    """q.DirectCurrent: out = sat32(q * gain) (gain an int32)."""
    _same_size(q, out)
    g = np.int64(gain)
    for k in range(q.size):
        out[k] = sat32(np.int64(q[k]) * g)


# -- neurons, readouts and encoders (flat 1-D arrays, state updated in place) ----------------

@njit(cache=True)
def lif_step(i_in, v, i_syn, refrac, threshold, leak_mult, leak_shift, alpha_mult, alpha_shift,
             reset_zero, v_reset, refractory, s_out):
    """One tick of q.LIF (charge, fire, reset) for every neuron; returns the spike count.

    i_in: the input current (int32) or spikes; v: membranes (int32, in place);
    threshold, leak_mult, leak_shift: int64 arrays of size 1 (one value for all neurons) or
    of one value per neuron; i_syn: synaptic currents (int32, in place; used only when
    alpha_mult >= 0, pass an empty array otherwise); refrac: refractory counters (int32, in
    place; used only when refractory > 0); reset_zero: False for reset by subtraction, True
    for v = v_reset; s_out: spikes 0/1 (any dtype).
    """
    n = v.size
    if i_in.size != n or s_out.size != n:
        raise ValueError("intmath.lif_step: i_in, v and s_out sizes differ")
    if alpha_mult >= 0 and i_syn.size != n:
        raise ValueError("intmath.lif_step: i_syn size differs from v (current filter on)")
    if refractory > 0 and refrac.size != n:
        raise ValueError("intmath.lif_step: refrac size differs from v (refractory on)")
    st, sm, ss = _stride(threshold, n), _stride(leak_mult, n), _stride(leak_shift, n)
    count = 0
    if alpha_mult < 0 and refractory <= 0:
        # the common case without filter or refractory period: a branch-free loop
        vr = np.int64(v_reset)
        for k in range(n):
            th = np.int64(threshold[k * st])
            vv = sat32(round_shift(np.int64(v[k]) * leak_mult[k * sm], leak_shift[k * ss]) + np.int64(i_in[k]))
            fire = vv >= th
            after = vr if reset_zero else sat32(vv - th)
            v[k] = after if fire else vv
            s_out[k] = 1 if fire else 0
            count += 1 if fire else 0
        return count
    for k in range(n):
        cur = np.int64(i_in[k])
        if alpha_mult >= 0:
            cur = sat32(round_shift(np.int64(i_syn[k]) * alpha_mult, alpha_shift) + cur)
            i_syn[k] = cur
        if refractory > 0 and refrac[k] > 0:
            refrac[k] -= 1
            s_out[k] = 0
            continue
        th = np.int64(threshold[k * st])
        vv = sat32(round_shift(np.int64(v[k]) * leak_mult[k * sm], leak_shift[k * ss]) + cur)
        if vv >= th:
            s_out[k] = 1
            count += 1
            if reset_zero:
                vv = np.int64(v_reset)
            else:
                vv = sat32(vv - th)
            if refractory > 0:
                refrac[k] = refractory
        else:
            s_out[k] = 0
        v[k] = vv
    return count


@njit(cache=True)
def _stride(p, n):
    """0 for a one-value parameter array, 1 for one value per neuron (index k * stride)."""
    if p.size == 1:
        return 0
    if p.size != n:
        raise ValueError("intmath: a per-neuron parameter needs one value per neuron")
    return 1


@njit(cache=True)
def alif_step(i_in, v, a, threshold, leak_mult, leak_shift, adapt_mult, adapt_shift, rho_mult, rho_shift,
              adapt_inc, reset_zero, v_reset, s_out):
    """One tick of q.ALIF (adaptive threshold) for every neuron; returns the spike count:

        v' = sat32(round_shift(v * leak_mult, leak_shift) + I)
        th = sat32(threshold + round_shift(a * adapt_mult, adapt_shift))
        s = v' >= th;  v = sat32(v' - th) (or v_reset) where s, else v'
        a = sat32(round_shift(a * rho_mult, rho_shift) + adapt_inc * s)

    v and a int32 in place; the seven parameters are int64 arrays of size 1 or n."""
    n = v.size
    if i_in.size != n or s_out.size != n or a.size != n:
        raise ValueError("intmath.alif_step: i_in, v, a and s_out sizes differ")
    st, sm, ss = _stride(threshold, n), _stride(leak_mult, n), _stride(leak_shift, n)
    bm, bs, rm, rs = _stride(adapt_mult, n), _stride(adapt_shift, n), _stride(rho_mult, n), _stride(rho_shift, n)
    vr = np.int64(v_reset)
    count = 0
    for k in range(n):
        ak = np.int64(a[k])
        vv = sat32(round_shift(np.int64(v[k]) * leak_mult[k * sm], leak_shift[k * ss]) + np.int64(i_in[k]))
        th = sat32(threshold[k * st] + round_shift(ak * adapt_mult[k * bm], adapt_shift[k * bs]))
        fire = vv >= th
        after = vr if reset_zero else sat32(vv - th)
        v[k] = after if fire else vv
        s_out[k] = 1 if fire else 0
        a[k] = sat32(round_shift(ak * rho_mult[k * rm], rho_shift[k * rs]) + (np.int64(adapt_inc) if fire else 0))
        count += 1 if fire else 0
    return count


@njit(cache=True)
def leaky_integrate(i_in, v, leak_mult, leak_shift):
    """q.LI and q.MembraneReadout: v = sat32(round_shift(v * leak_mult, leak_shift) + I), in
    place (the readout's caller emits v at the window's end and zeroes it). leak_mult and
    leak_shift are int64 arrays of size 1 or one value per neuron."""
    _same_size(i_in, v)
    sm, ss = _stride(leak_mult, v.size), _stride(leak_shift, v.size)
    for k in range(v.size):
        v[k] = sat32(round_shift(np.int64(v[k]) * leak_mult[k * sm], leak_shift[k * ss]) + np.int64(i_in[k]))


@njit(cache=True)
def rate_encoder_step(q, acc, full_scale, s_out):
    """One tick of q.RateEncoder: x = clamp(q, 0, D); acc += x; s = acc >= D; acc -= D s.
    acc (int32, in place) starts at D // 2 after reset. Returns the spike count."""
    n = acc.size
    if q.size != n or s_out.size != n:
        raise ValueError("intmath.rate_encoder_step: q, acc and s_out sizes differ")
    d = np.int64(full_scale)
    count = 0
    for k in range(n):
        a = np.int64(acc[k]) + clamp(q[k], 0, d)
        if a >= d:
            a -= d
            s_out[k] = 1
            count += 1
        else:
            s_out[k] = 0
        acc[k] = a
    return count


@njit(cache=True)
def latency_encoder_step(q, full_scale, window, t, s_out):
    """Tick t (counted from reset) of q.LatencyEncoder: a spike where x = clamp(q, 0, D) > 0
    and t mod W equals latency_phase(x, D, W). Returns the spike count."""
    _same_size(q, s_out)
    d = np.int64(full_scale)
    phase = np.int64(t) % np.int64(window)
    count = 0
    for k in range(q.size):
        x = clamp(q[k], 0, d)
        if x > 0 and latency_phase(x, d, window) == phase:
            s_out[k] = 1
            count += 1
        else:
            s_out[k] = 0
    return count
