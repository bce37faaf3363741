"""tianrt.kernels.intmath layer kernels against the pure-Python oracle, bit for bit, on
hypothesis-drawn shapes and values (including accumulators pushed past the int32 limits)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int_oracle as O
from tianrt.kernels import intmath as im

I32_MIN, I32_MAX = O.INT32_MIN, O.INT32_MAX
SETTINGS = settings(derandomize=True, deadline=None, max_examples=60)


def _ints(rng, shape, lo, hi, dtype=np.int32):
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def _bias(rng, n, extreme):
    """Small biases, or biases at the int32 limits so that sums saturate."""
    if extreme:
        return rng.choice(np.array([I32_MIN, I32_MIN + 100, I32_MAX - 100, I32_MAX], np.int64),
                          size=n).astype(np.int32)
    return _ints(rng, n, -5000, 5000)


def _requant_params(rng, n):
    return _ints(rng, n, 0, 2 ** 15 - 1), _ints(rng, n, 0, 30)


# -- dense and synaptic accumulation ----------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(1, 4), st.integers(1, 40), st.integers(1, 12),
       st.booleans(), st.sampled_from(["int8", "int32"]))
def test_dense_and_event_driven_synapses_match_oracle(seed, B, n_in, n_out, extreme, xkind):
    rng = np.random.default_rng(seed)
    x = _ints(rng, (B, n_in), -128, 127) if xkind == "int8" else _ints(rng, (B, n_in), I32_MIN, I32_MAX)
    x[rng.random((B, n_in)) < 0.4] = 0  # some inactive inputs for the event-driven path
    w = _ints(rng, (n_out, n_in), -128, 127, np.int8)
    bias = _bias(rng, n_out, extreme)
    mult, shift = _requant_params(rng, n_out)
    lo, hi = sorted(rng.integers(-128, 128, size=2).tolist())
    wl, bl = w.tolist(), bias.tolist()
    want_acc = [O.dense_acc(row, wl, bl) for row in x.tolist()]
    want_y = [[O.requant(a, int(mult[o]), int(shift[o]), lo, hi) for o, a in enumerate(r)] for r in want_acc]

    acc = np.zeros((B, n_out), np.int32)
    im.dense_acc(x, w, bias, acc)
    assert acc.tolist() == want_acc
    y = np.zeros((B, n_out), np.int32)
    im.dense(x, w, bias, mult, shift, lo, hi, y)
    assert y.tolist() == want_y
    flat = np.zeros(B * n_out, np.int32)
    im.requant_channels(acc.reshape(-1), mult, shift, lo, hi, 1, flat)
    assert flat.reshape(B, n_out).tolist() == want_y

    wt = np.ascontiguousarray(w.T)
    ev = np.zeros((B, n_out), np.int32)
    scratch = np.zeros(n_out, np.int64)
    active = im.syn_dense_events(x, wt, bias, ev, scratch)
    assert ev.tolist() == want_acc
    assert active == int(np.count_nonzero(x))


@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(1, 3), st.integers(1, 30), st.integers(1, 10),
       st.floats(0.0, 1.0), st.booleans())
def test_spike_events_match_oracle_for_any_spike_dtype(seed, B, n_in, n_out, density, extreme):
    rng = np.random.default_rng(seed)
    s = (rng.random((B, n_in)) < density)
    w = _ints(rng, (n_out, n_in), -128, 127, np.int8)
    wr = _ints(rng, (n_out, n_out), -128, 127, np.int8)
    r = (rng.random((B, n_out)) < density)
    bias = _bias(rng, n_out, extreme)
    want = [O.dense_acc(row, w.tolist(), bias.tolist()) for row in s.astype(int).tolist()]
    for dtype in (np.float32, np.uint8):
        out = np.zeros((B, n_out), np.int32)
        im.syn_dense_events(s.astype(dtype), np.ascontiguousarray(w.T), bias, out, np.zeros(n_out, np.int64))
        assert out.tolist() == want
    # recurrent: one saturation after the exact sum of both projections and the bias
    want_rec = []
    wl, wrl, bl = w.tolist(), wr.tolist(), bias.tolist()
    for xs, rs in zip(s.astype(int).tolist(), r.astype(int).tolist()):
        want_rec.append([O.sat32(sum(wl[o][j] * xs[j] for j in range(n_in))
                                 + sum(wrl[o][j] * rs[j] for j in range(n_out)) + bl[o]) for o in range(n_out)])
    out = np.zeros((B, n_out), np.int32)
    im.syn_recurrent_events(s.astype(np.float32), r.astype(np.float32), np.ascontiguousarray(w.T),
                            np.ascontiguousarray(wr.T), bias, out, np.zeros(n_out, np.int64))
    assert out.tolist() == want_rec
    # index-list events (routed spike packets) give the same accumulators
    acc = np.zeros(n_out, np.int64)
    im.acc_set_bias(acc, bias)
    im.acc_add_index_events(np.flatnonzero(s[0]).astype(np.int64), np.ascontiguousarray(w.T), acc)
    row = np.zeros(n_out, np.int32)
    im.acc_store_sat32(acc, row)
    assert row.tolist() == want[0]


def test_saturation_not_wrap_in_accumulators():
    w = np.full((2, 4), 127, np.int8)
    w[1] = -128
    x = np.full((1, 4), 127, np.int32)
    bias = np.array([I32_MAX - 10, I32_MIN + 10], np.int32)
    acc = np.zeros((1, 2), np.int32)
    im.dense_acc(x, w, bias, acc)
    assert acc.tolist() == [[I32_MAX, I32_MIN]]
    ev = np.zeros((1, 2), np.int32)
    im.syn_dense_events(x, np.ascontiguousarray(w.T), bias, ev, np.zeros(2, np.int64))
    assert ev.tolist() == [[I32_MAX, I32_MIN]]
    # a sum that passes the limit and comes back is exact: saturation applies once, at the end
    w2 = np.array([[127, -128]], np.int8)
    out = np.zeros((1, 1), np.int32)
    im.dense_acc(np.array([[127, 127]], np.int32), w2, np.array([I32_MAX - 100], np.int32), out)
    assert out.tolist() == [[I32_MAX - 100 - 127]]


def test_kernels_reject_mismatched_shapes():
    w = np.zeros((3, 4), np.int8)
    with pytest.raises(ValueError, match="dense_acc"):
        im.dense_acc(np.zeros((1, 5), np.int32), w, np.zeros(3, np.int32), np.zeros((1, 3), np.int32))
    with pytest.raises(ValueError, match="acc_add_events"):
        im.syn_dense_events(np.zeros((1, 5), np.float32), w, np.zeros(4, np.int32),
                            np.zeros((1, 4), np.int32), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="output shape"):
        im.maxpool2d(np.zeros((1, 1, 4, 4), np.int32), 2, 2, 2, 2, 0, 0, np.zeros((1, 1, 3, 3), np.int32))
    with pytest.raises(ValueError, match="presynaptic index"):
        im.acc_add_index_events(np.array([7], np.int64), np.ascontiguousarray(w.T), np.zeros(3, np.int64))


# -- convolution and pooling ------------------------------------------------------------------

conv_cfg = st.tuples(st.integers(0, 2 ** 31), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),
                     st.integers(3, 7), st.integers(3, 7), st.integers(1, 3), st.integers(1, 3),
                     st.integers(1, 2), st.integers(1, 2), st.integers(0, 1), st.integers(0, 1), st.booleans())


@SETTINGS
@given(conv_cfg)
def test_conv2d_matches_oracle(cfg):
    seed, B, C, O_, H, W, kh, kw, sh, sw, ph, pw, extreme = cfg
    rng = np.random.default_rng(seed)
    x = _ints(rng, (B, C, H, W), -128, 127)
    w = _ints(rng, (O_, C, kh, kw), -128, 127, np.int8)
    bias = _bias(rng, O_, extreme)
    mult, shift = _requant_params(rng, O_)
    lo, hi = sorted(rng.integers(-128, 128, size=2).tolist())
    ho, wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    want_acc = [O.conv_acc(s, w.tolist(), bias.tolist(), (sh, sw), (ph, pw)) for s in x.tolist()]
    acc = np.zeros((B, O_, ho, wo), np.int32)
    im.conv2d_acc(x, w, bias, sh, sw, ph, pw, acc)
    assert acc.tolist() == want_acc
    want_y = [[O.emap(lambda a: O.requant(a, int(mult[o]), int(shift[o]), lo, hi), plane)
               for o, plane in enumerate(sample)] for sample in want_acc]
    y = np.zeros_like(acc)
    im.conv2d(x, w, bias, mult, shift, sh, sw, ph, pw, lo, hi, y)
    assert y.tolist() == want_y
    flat = np.zeros(acc.size, np.int32)
    im.requant_channels(acc.reshape(-1), mult, shift, lo, hi, ho * wo, flat)
    assert flat.reshape(acc.shape).tolist() == want_y
    # event-driven (scatter) form on the same integer inputs and on sparse spikes
    ev = np.zeros_like(acc)
    scratch = np.zeros((O_, ho, wo), np.int64)
    assert im.conv2d_events_acc(x, w, bias, sh, sw, ph, pw, ev, scratch) == int(np.count_nonzero(x))
    assert ev.tolist() == want_acc
    spikes = (rng.random(x.shape) < 0.3).astype(np.float32)
    im.conv2d_events_acc(spikes, w, bias, sh, sw, ph, pw, ev, scratch)
    assert ev.tolist() == [O.conv_acc(v, w.tolist(), bias.tolist(), (sh, sw), (ph, pw))
                           for v in spikes.astype(int).tolist()]


@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(1, 2), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7),
       st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.booleans())
def test_pooling_matches_oracle(seed, B, C, H, W, kh, kw, s, p, wide):
    rng = np.random.default_rng(seed)
    kh, kw = min(kh, H), min(kw, W)
    p = min(p, kh // 2, kw // 2)
    x = _ints(rng, (B, C, H, W), I32_MIN, I32_MAX) if wide else _ints(rng, (B, C, H, W), -128, 127)
    m, n = int(rng.integers(0, 2 ** 15)), int(rng.integers(0, 40))
    ho, wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    xs = x.tolist()
    out = np.zeros((B, C, ho, wo), np.int32)
    im.maxpool2d(x, kh, kw, s, s, p, p, out)
    assert out.tolist() == [O.pool(v, (kh, kw), (s, s), (p, p), -128, max) for v in xs]
    im.avgpool2d(x, kh, kw, s, s, p, p, m, n, out)
    assert out.tolist() == [O.pool(v, (kh, kw), (s, s), (p, p), 0,
                                   lambda win: O.requant(O.sat32(sum(win)), m, n, -128, 127)) for v in xs]
    g = np.zeros((B, C), np.int32)
    im.global_avgpool(x, m, n, g)
    assert g.tolist() == [[O.requant(O.sat32(sum(O.flatten(pl))), m, n, -128, 127) for pl in v] for v in xs]


# -- elementwise ------------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(1, 30), st.integers(-(2 ** 31), 2 ** 31 - 1))
def test_elementwise_kernels_match_oracle(seed, n, gain):
    rng = np.random.default_rng(seed)
    x = _ints(rng, n, I32_MIN, I32_MAX) if seed % 2 else _ints(rng, n, -200, 200)
    y = _ints(rng, n, -128, 127)
    table = _ints(rng, 256, -128, 127, np.int8)
    lo, hi = sorted(rng.integers(-128, 128, size=2).tolist())
    out = np.zeros(n, np.int32)
    im.clamp_array(x, lo, hi, out)
    assert out.tolist() == [O.clamp(v, lo, hi) for v in x.tolist()]
    im.lookup(x, table, out)
    assert out.tolist() == [int(table[O.clamp(v, -128, 127) + 128]) for v in x.tolist()]
    im.direct_current(x, gain, out)
    assert out.tolist() == [O.sat32(v * gain) for v in x.tolist()]
    m1, m2, sh = int(rng.integers(0, 2 ** 15)), int(rng.integers(0, 2 ** 15)), int(rng.integers(0, 20))
    acc = np.zeros(n, np.int64)
    im.add_scaled(x, m1, acc)
    im.add_scaled(y, m2, acc)
    im.requant_array(acc, 1, sh, lo, hi, out)
    assert out.tolist() == [O.requant(a * m1 + b * m2, 1, sh, lo, hi) for a, b in zip(x.tolist(), y.tolist())]


# -- neurons and encoders over many ticks -------------------------------------------------------

lif_cfg = st.fixed_dictionaries({
    "seed": st.integers(0, 2 ** 31), "n": st.integers(1, 12), "T": st.integers(1, 25),
    "threshold": st.one_of(st.integers(1, 3000), st.sampled_from([1, I32_MAX])),
    "leak_mult": st.integers(0, 2 ** 15 - 1), "leak_shift": st.integers(0, 20),
    "alpha": st.one_of(st.none(), st.tuples(st.integers(0, 2 ** 15 - 1), st.integers(0, 20))),
    "reset": st.sampled_from(["subtract", "zero"]), "v_reset": st.integers(-1000, 1000),
    "refractory": st.integers(0, 3), "extreme": st.booleans()})


def _a(v):
    """A one-value parameter array, as the neuron kernels take their per-neuron parameters."""
    return np.full(1, v, np.int64)


@SETTINGS
@given(lif_cfg)
def test_lif_and_leaky_integrator_match_oracle_over_ticks(c):
    rng = np.random.default_rng(c["seed"])
    n, T = c["n"], c["T"]
    cur = _ints(rng, (T, n), I32_MIN, I32_MAX) if c["extreme"] else _ints(rng, (T, n), -500, 2000)
    am, ash = c["alpha"] if c["alpha"] is not None else (-1, 0)
    node = type("QLIF", (), dict(threshold=c["threshold"], leak_mult=c["leak_mult"], leak_shift=c["leak_shift"],
                                 alpha_mult=None if c["alpha"] is None else am, alpha_shift=ash,
                                 reset=c["reset"], v_reset=c["v_reset"], refractory=c["refractory"]))
    v = np.zeros(n, np.int32)
    i_syn = np.zeros(n if am >= 0 else 0, np.int32)
    refrac = np.zeros(n if c["refractory"] else 0, np.int32)
    li = np.zeros(n, np.int32)
    ov, oi, orf, oli = [0] * n, [0] * n, [0] * n, [0] * n
    s = np.zeros(n, np.float32)
    for t in range(T):
        count = im.lif_step(cur[t], v, i_syn, refrac, _a(c["threshold"]), _a(c["leak_mult"]), _a(c["leak_shift"]), am, ash,
                            c["reset"] == "zero", c["v_reset"], c["refractory"], s)
        spikes = []
        for k in range(n):
            ov[k], oi[k], orf[k], sk = O.lif_neuron(node, ov[k], oi[k], orf[k], int(cur[t, k]))
            spikes.append(sk)
        assert s.tolist() == spikes and count == sum(spikes)
        assert v.tolist() == ov
        if am >= 0:
            assert i_syn.tolist() == oi
        if c["refractory"]:
            assert refrac.tolist() == orf
        im.leaky_integrate(cur[t], li, _a(c["leak_mult"]), _a(c["leak_shift"]))
        oli = [O.leaky(a, int(b), c["leak_mult"], c["leak_shift"]) for a, b in zip(oli, cur[t].tolist())]
        assert li.tolist() == oli


def test_lif_membrane_saturates_at_int32_max():
    v = np.array([I32_MAX - 5], np.int32)
    s = np.zeros(1, np.uint8)
    e = np.zeros(0, np.int32)
    im.lif_step(np.array([1000], np.int32), v, e, e, _a(I32_MAX), _a(1), _a(0), -1, 0, False, 0, 0, s)
    assert s.tolist() == [1] and v.tolist() == [0]  # saturated at INT32_MAX, fired, subtracted
    v = np.array([I32_MIN + 5], np.int32)
    im.lif_step(np.array([-1000], np.int32), v, e, e, _a(10), _a(1), _a(0), -1, 0, False, 0, 0, s)
    assert s.tolist() == [0] and v.tolist() == [I32_MIN]


@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(1, 127), st.integers(1, 20), st.integers(1, 40))
def test_encoders_match_oracle(seed, D, W, T):
    rng = np.random.default_rng(seed)
    q = _ints(rng, 16, -140, 140)
    q[:4] = [0, D, D - 1, 1]
    acc = np.full(q.size, D // 2, np.int32)
    oacc = [D // 2] * q.size
    s = np.zeros(q.size, np.float32)
    total = np.zeros(q.size, np.int64)
    for t in range(T):
        im.rate_encoder_step(q, acc, D, s)
        pairs = [O.rate_neuron(D, a, v) for a, v in zip(oacc, q.tolist())]
        oacc = [p[0] for p in pairs]
        assert s.tolist() == [p[1] for p in pairs] and acc.tolist() == oacc
        total += s.astype(np.int64)
        im.latency_encoder_step(q, D, W, t, s)
        assert s.tolist() == [O.latency_spike(D, W, v, t) for v in q.tolist()]
    assert total.tolist() == [im.rate_spike_count(v, D, T) for v in q.tolist()]
