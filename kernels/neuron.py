"""Neuron updates (LIF/IF with optional current filter and refractory period, LI) and the
fused spiking chain: synaptic accumulation + LIF + spike emission for a stack of layers in
one call.

float32 arithmetic in the order of docs/semantics.md (charge, fire, reset), no fast-math: the
elementwise results are bit-identical to the numpy reference given the same input current.
"""
import numpy as np
from ._jit import njit

from .codec import check_values
from .synapse import accumulate_flat, accumulate_list, active_list


@njit(cache=True)
def _lif_plain(cur, v, spk, beta, thr, v_reset, reset_zero):
    # the common case without filter or refractory period, branch-free so that it vectorises
    one, zero = np.float32(1.0), np.float32(0.0)
    if reset_zero:
        for k in range(v.size):
            vn = beta * v[k] + cur[k]
            s = vn >= thr
            v[k] = v_reset if s else vn
            spk[k] = one if s else zero
    else:
        for k in range(v.size):
            vn = beta * v[k] + cur[k]
            s = vn >= thr
            v[k] = vn - thr if s else vn
            spk[k] = one if s else zero


@njit(cache=True, inline="always")
def _lif_rule(i, isyn_k, vo, ref_k, beta, thr, v_reset, alpha, has_alpha, refractory, reset_zero):
    """One neuron of a LIF tick on scalars (filter, refractory period, charge, fire, reset):
    the one place of the rule for the loops below. Returns (filtered current, membrane,
    refractory counter, spike). Scalars only: with the arrays passed in (as before), the
    loops ran 30-100x slower (W3's 4000 neurons: 400 us a tick instead of 2)."""
    if has_alpha:
        i = alpha * isyn_k + i
        isyn_k = i
    vn = beta * vo + i
    active = True
    if refractory > 0 and ref_k != 0:
        vn = vo
        ref_k -= 1
        active = False
    s = active and vn >= thr
    if s:
        if refractory > 0:
            ref_k = refractory
        vn = v_reset if reset_zero else vn - thr
    return isyn_k, vn, ref_k, s


@njit(cache=True)
def _lif_refractory(cur, v, refrac, spk, beta, thr, v_reset, refractory, reset_zero):
    """Refractory period without current filter (CUBA), in a loop of its own."""
    one, zero = np.float32(1.0), np.float32(0.0)
    for k in range(v.size):
        _, vn, r, s = _lif_rule(cur[k], zero, v[k], refrac[k], beta, thr, v_reset, zero, False, refractory,
                                reset_zero)
        v[k] = vn
        refrac[k] = r
        spk[k] = one if s else zero


@njit(cache=True)
def _lif_general(cur, v, isyn, refrac, spk, beta, sb, thr, st, v_reset, alpha, has_alpha, refractory,
                 reset_zero):
    """Every case; beta / thr are float32 arrays read at k * sb / k * st (stride 0: one value)."""
    one, zero = np.float32(1.0), np.float32(0.0)
    for k in range(v.size):
        ik = isyn[k] if has_alpha else zero
        rk = refrac[k] if refractory > 0 else np.int32(0)
        ik, vn, rk, s = _lif_rule(cur[k], ik, v[k], rk, beta[k * sb], thr[k * st], v_reset, alpha, has_alpha,
                                  refractory, reset_zero)
        if has_alpha:
            isyn[k] = ik
        if refractory > 0:
            refrac[k] = rk
        v[k] = vn
        spk[k] = one if s else zero


@njit(cache=True)
def lif_block(cur, v, isyn, refrac, spk, beta, thr, v_reset, alpha, has_alpha, refractory, reset_zero):
    """One LIF tick on flat arrays of equal size (``isyn``/``refrac`` are touched only when
    the filter / refractory period is on). Scalars must already be float32."""
    if not has_alpha and refractory == 0:
        _lif_plain(cur, v, spk, beta, thr, v_reset, reset_zero)
        return
    if not has_alpha:
        _lif_refractory(cur, v, refrac, spk, beta, thr, v_reset, refractory, reset_zero)
        return
    _lif_general(cur, v, isyn, refrac, spk, np.full(1, beta, np.float32), 0, np.full(1, thr, np.float32), 0,
                 v_reset, alpha, has_alpha, refractory, reset_zero)


@njit(cache=True)
def lif_update(cur, v, isyn, refrac, spk, beta, thr, v_reset, alpha, has_alpha, refractory, reset_zero):
    """One LIF tick on flat float32 arrays (``isyn``/``refrac`` may be size-0 when unused)."""
    lif_block(cur, v, isyn, refrac, spk, np.float32(beta), np.float32(thr), np.float32(v_reset),
              np.float32(alpha), has_alpha, refractory, reset_zero)


@njit(cache=True)
def _stride(p, n):
    """0 for a one-value parameter array, 1 for one value per neuron (index k * stride)."""
    if p.size == 1:
        return 0
    if p.size != n:
        raise ValueError("neuron: a per-neuron parameter needs one value per neuron")
    return 1


@njit(cache=True)
def lif_update_per_neuron(cur, v, isyn, refrac, spk, beta, thr, v_reset, alpha, has_alpha, refractory,
                          reset_zero):
    """lif_update with ``beta`` and ``thr`` float32 arrays of size 1 or one per neuron."""
    sb, st = _stride(beta, v.size), _stride(thr, v.size)
    _lif_general(cur, v, isyn, refrac, spk, beta, sb, thr, st, np.float32(v_reset), np.float32(alpha), has_alpha,
                 refractory, reset_zero)


@njit(cache=True)
def alif_update(cur, v, a, spk, beta, thr, adapt, rho, v_reset, reset_zero):
    """One tick of snn.ALIF on flat float32 arrays; beta, thr (theta_0), adapt (b) and rho
    are float32 arrays of size 1 or one per neuron:

        v' = beta v + I;  theta = thr + adapt a;  s = v' >= theta
        v = v' - theta s  (or v_reset where s);  a = rho a + s
    """
    n = v.size
    sb, st, sa, sr = _stride(beta, n), _stride(thr, n), _stride(adapt, n), _stride(rho, n)
    vr = np.float32(v_reset)
    for k in range(n):
        ak = a[k]
        vn = beta[k * sb] * v[k] + cur[k]
        theta = thr[k * st] + adapt[k * sa] * ak
        s = vn >= theta
        if s:
            vn = vr if reset_zero else vn - theta
        v[k] = vn
        spk[k] = np.float32(1.0) if s else np.float32(0.0)
        a[k] = rho[k * sr] * ak + (np.float32(1.0) if s else np.float32(0.0))


@njit(cache=True)
def li_update(cur, v, beta, out):
    """Leaky integrator v = beta v + I (float32); writes v to ``out`` too."""
    b32 = np.float32(beta)
    for k in range(v.size):
        vn = b32 * v[k] + cur[k]
        v[k] = vn
        out[k] = vn


# integer parameters of a chain layer (columns of ``ip``) and float ones (``fp``)
N_IN, N_OUT, W_OFF, B_OFF, O_OFF, MODE, RESET_ZERO, REFRACTORY, HAS_ALPHA, BATCH, KIND = range(11)
BETA, THR, V_RESET, ALPHA, CROSSOVER, ADAPT, RHO = range(7)
# neuron of a chain layer (column KIND): LIF / IF, or ALIF (its ``a`` in row ISYN, scalar parameters)
KIND_LIF, KIND_ALIF = 0, 1
# rows of the chain's float32 state block ``st``
CUR, V, ISYN, SPK = range(4)


@njit(cache=True)
def snn_chain_step(x0, wb, ip, fp, st, refrac, start, have_current):
    """One tick of a stack of (dense synapse -> LIF) layers, from layer ``start`` on. ``wb``
    holds every layer's transposed weights and biases (offsets ip[l, W_OFF], ip[l, B_OFF]);
    layer l reads ``x0`` (l = 0) or layer l-1's spikes and writes current, membrane,
    filtered current and spikes to rows CUR, V, ISYN, SPK of ``st`` at columns
    ip[l, O_OFF] (a block of batch * n_out). With ``have_current`` layer ``start``'s current
    is already in place (computed by the caller). Few arguments on purpose: each array
    argument costs ~0.1 us of dispatch per call.

    Returns (synaptic events, layer): layer = number of layers when the tick is done, or the
    layer whose dense sum is handed back to the caller (modes AUTO_CALLER / DENSE_CALLER);
    the caller computes that layer's current and calls again with have_current=True."""
    ev = 0
    cur, v, isyn, spk = st[CUR], st[V], st[ISYN], st[SPK]
    n_layers = ip.shape[0]
    if start == 0 and not have_current and _batch1(ip, refrac):
        return _chain_batch1(x0, wb, ip, fp, st, refrac, -1), n_layers
    for l in range(start, ip.shape[0]):
        n_in, n_out, ooff, batch = ip[l, N_IN], ip[l, N_OUT], ip[l, O_OFF], ip[l, BATCH]
        if not (have_current and l == start):
            if l == 0:
                e = accumulate_flat(x0, 0, n_in, batch, wb, ip[l, W_OFF], wb, ip[l, B_OFF], cur, ooff,
                                    n_out, ip[l, MODE], fp[l, CROSSOVER])
            else:
                e = accumulate_flat(spk, ip[l - 1, O_OFF], n_in, batch, wb, ip[l, W_OFF], wb, ip[l, B_OFF],
                                    cur, ooff, n_out, ip[l, MODE], fp[l, CROSSOVER])
            if e < 0:
                return ev, l
            ev += e
        hi = ooff + batch * n_out
        if ip[l, KIND] == KIND_ALIF:
            _alif_block(cur[ooff:hi], v[ooff:hi], isyn[ooff:hi], spk[ooff:hi], fp[l], ip[l, RESET_ZERO] != 0)
        else:
            lif_block(cur[ooff:hi], v[ooff:hi], isyn[ooff:hi], refrac[ooff:hi], spk[ooff:hi],
                      np.float32(fp[l, BETA]), np.float32(fp[l, THR]), np.float32(fp[l, V_RESET]),
                      np.float32(fp[l, ALPHA]), ip[l, HAS_ALPHA] != 0, ip[l, REFRACTORY], ip[l, RESET_ZERO] != 0)
    return ev, ip.shape[0]


@njit(cache=True)
def _alif_block(cur, v, a, spk, f, reset_zero):
    """alif_update's rule with the scalar parameters of chain layer row ``f`` of ``fp``
    (as float32, like alif_update's parameter arrays): bit-identical to it."""
    beta, thr, adapt, rho = np.float32(f[BETA]), np.float32(f[THR]), np.float32(f[ADAPT]), np.float32(f[RHO])
    vr, one, zero = np.float32(f[V_RESET]), np.float32(1.0), np.float32(0.0)
    for k in range(v.size):
        ak = a[k]
        vn = beta * v[k] + cur[k]
        theta = thr + adapt * ak
        s = vn >= theta
        if s:
            vn = vr if reset_zero else vn - theta
        v[k] = vn
        spk[k] = one if s else zero
        a[k] = rho * ak + (one if s else zero)


@njit(cache=True)
def _batch1(ip, refrac):
    """The batch-1 path applies: batch 1 and the index scratch present past the counters."""
    n = ip.shape[0]
    return n > 0 and ip[0, BATCH] == 1 and refrac.size > ip[n - 1, O_OFF] + ip[n - 1, N_OUT]


@njit(cache=True)
def _chain_batch1(x0, wb, ip, fp, st, refrac, m0):
    """snn_chain_step at batch 1: each layer's active inputs are listed once (the input by
    active_list, the others by the previous layer's LIF pass, as it emits) in the tail of
    ``refrac`` past the counters (``m0`` >= 0: the input's list is already there, with m0
    entries), and the event loop visits only those rows. The same
    float32 operations in the same order as the general path: bit-identical."""
    cur, v, isyn, spk = st[CUR], st[V], st[ISYN], st[SPK]
    n_layers = ip.shape[0]
    total = ip[n_layers - 1, O_OFF] + ip[n_layers - 1, N_OUT]
    idx = refrac[total:]
    m = active_list(x0, 0, ip[0, N_IN], idx) if m0 < 0 else m0
    ev = 0
    one, zero = np.float32(1.0), np.float32(0.0)
    for l in range(n_layers):
        n_in, n_out, ooff = ip[l, N_IN], ip[l, N_OUT], ip[l, O_OFF]
        if l == 0:
            ev += accumulate_list(x0, 0, idx, m, n_in, wb, ip[l, W_OFF], wb, ip[l, B_OFF], cur, ooff, n_out,
                                  ip[l, MODE], fp[l, CROSSOVER])
        else:
            ev += accumulate_list(spk, ip[l - 1, O_OFF], idx, m, n_in, wb, ip[l, W_OFF], wb, ip[l, B_OFF],
                                  cur, ooff, n_out, ip[l, MODE], fp[l, CROSSOVER])
        hi = ooff + n_out
        beta, thr, v_reset = np.float32(fp[l, BETA]), np.float32(fp[l, THR]), np.float32(fp[l, V_RESET])
        if ip[l, KIND] == KIND_ALIF:
            _alif_block(cur[ooff:hi], v[ooff:hi], isyn[ooff:hi], spk[ooff:hi], fp[l], ip[l, RESET_ZERO] != 0)
            if l + 1 < n_layers:
                m = active_list(spk, ooff, n_out, idx)
        elif ip[l, HAS_ALPHA] == 0 and ip[l, REFRACTORY] == 0:
            # _lif_plain, listing the spikes for the next layer as they are emitted
            ob = np.uint64(ooff)
            m = 0
            if ip[l, RESET_ZERO] != 0:
                for k in range(np.uint64(n_out)):
                    vn = beta * v[ob + k] + cur[ob + k]
                    s = vn >= thr
                    v[ob + k] = v_reset if s else vn
                    spk[ob + k] = one if s else zero
                    idx[m] = k
                    m += s
            else:
                for k in range(np.uint64(n_out)):
                    vn = beta * v[ob + k] + cur[ob + k]
                    s = vn >= thr
                    v[ob + k] = vn - thr if s else vn
                    spk[ob + k] = one if s else zero
                    idx[m] = k
                    m += s
        else:
            lif_block(cur[ooff:hi], v[ooff:hi], isyn[ooff:hi], refrac[ooff:hi], spk[ooff:hi], beta, thr,
                      v_reset, np.float32(fp[l, ALPHA]), ip[l, HAS_ALPHA] != 0, ip[l, REFRACTORY],
                      ip[l, RESET_ZERO] != 0)
            if l + 1 < n_layers:
                m = active_list(spk, ooff, n_out, idx)
    return ev


@njit(cache=True)
def snn_chain_tick(x0, wb, ip, fp, st, refrac):
    """snn_chain_step for a chain that never hands a layer back (batch 1): one tick, returns
    the synaptic events (the form a compiled tick calls)."""
    ev, _ = snn_chain_step(x0, wb, ip, fp, st, refrac, 0, False)
    return ev


@njit(cache=True)
def snn_chain_step_input(src, x0, wb, ip, fp, st, refrac):
    """check_copy of a spike input into ``x0``, then snn_chain_step from layer 0, in one call
    (the streaming step of a graph that is one fused chain). Returns (check code, synaptic
    events, layer) — nothing runs unless the check code is codec.OK."""
    code = check_values(src, True)
    if code != 0:
        return code, 0, 0
    if _batch1(ip, refrac):  # copy and list the active inputs in one pass
        n_layers = ip.shape[0]
        idx = refrac[ip[n_layers - 1, O_OFF] + ip[n_layers - 1, N_OUT]:]
        m = 0
        for j in range(src.size):
            xv = src[j]
            x0[j] = xv
            idx[m] = j
            m += xv != 0
        return code, _chain_batch1(x0, wb, ip, fp, st, refrac, m), n_layers
    for j in range(src.size):
        x0[j] = src[j]
    ev, l = snn_chain_step(x0, wb, ip, fp, st, refrac, 0, False)
    return code, ev, l
