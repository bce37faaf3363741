"""tianrt.kernels float kernels on their own: synaptic accumulation (event, dense, auto,
CSR, the fused chain's hand-back), convolution forms, pooling, the input check."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tianrt.backends.reference import avgpool2d as ref_avgpool
from tianrt.backends.reference import conv2d as ref_conv
from tianrt.backends.reference import maxpool2d as ref_maxpool
from tianrt.kernels import codec, conv, neuron, synapse

SETTINGS = settings(derandomize=True, deadline=None, max_examples=25)


def dyadic(rng, shape):
    return (np.round(rng.uniform(-1, 1, size=shape) * 64) / 64).astype(np.float32)


@SETTINGS
@given(seed=st.integers(0, 9999), n_in=st.integers(1, 70), n_out=st.integers(1, 70), batch=st.integers(1, 4),
       density=st.floats(0.0, 1.0), currents=st.booleans())
def test_event_dense_auto_and_csr_equal_numpy(seed, n_in, n_out, batch, density, currents):
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, n_in)) < density).astype(np.float32)
    if currents:  # synapses also take (multi-bit) currents: the event loop multiplies
        x *= dyadic(rng, x.shape)
    wt = dyadic(rng, (n_in, n_out))
    b = dyadic(rng, (n_out,))
    want = x.astype(np.float64) @ wt + b  # exact: dyadic values, few terms
    outs = []
    for mode in (synapse.EVENT, synapse.DENSE, synapse.AUTO):
        out = np.full((batch, n_out), np.nan, np.float32)
        ev = synapse.accumulate(x, wt, b, out, mode, float(rng.random()))
        assert ev == np.count_nonzero(x) * n_out
        outs.append(out)
        assert np.array_equal(out, want.astype(np.float32))
    sparse = wt * (rng.random(wt.shape) < 0.2)
    indptr, idx, data = synapse.to_csr(sparse)
    out = np.zeros((batch, n_out), np.float32)
    ev = synapse.accumulate_csr(x, indptr, idx, data, b, out)
    assert np.array_equal(out, (x.astype(np.float64) @ sparse + b).astype(np.float32))
    assert ev == sum(np.count_nonzero(sparse[x[i] != 0]) for i in range(batch))
    acc = outs[0].copy()
    synapse.accumulate_add(x, wt, acc, synapse.AUTO, 0.5)
    assert np.array_equal(acc, (2 * (x.astype(np.float64) @ wt) + b).astype(np.float32))


def test_auto_caller_modes_hand_back_dense_work():
    x = np.ones(8, np.float32)
    wb = np.zeros(8 * 3 + 3, np.float32)
    out = np.full(3, 7.0, np.float32)
    args = (x, 0, 8, 1, wb, 0, wb, 24, out, 0, 3)
    assert synapse.accumulate_flat(*args, synapse.DENSE_CALLER, 0.5) == synapse.HANDED_BACK
    assert synapse.accumulate_flat(*args, synapse.AUTO_CALLER, 0.5) == synapse.HANDED_BACK  # 100 % > 50 %
    assert out.tolist() == [7.0, 7.0, 7.0]  # nothing written when handed back
    x[2:] = 0
    assert synapse.accumulate_flat(*args, synapse.AUTO_CALLER, 0.5) == 2 * 3  # 25 %: event loop
    assert out.tolist() == [0.0, 0.0, 0.0]


def test_chain_step_reports_the_layer_to_finish_with_blas():
    rng = np.random.default_rng(0)
    n_in, n_out, batch = 6, 4, 2
    w = dyadic(rng, (n_in, n_out))
    wb = np.concatenate([w.reshape(-1), np.zeros(n_out, np.float32)])
    ip = np.array([[n_in, n_out, 0, n_in * n_out, 0, synapse.DENSE_CALLER, 0, 0, 0, batch]], np.int64)
    fp = np.array([[0.5, 1.0, 0.0, 0.0, 0.5]])
    st_ = np.zeros((4, batch * n_out), np.float32)
    refrac = np.zeros(batch * n_out, np.int32)
    x0 = np.ones(batch * n_in, np.float32)
    assert neuron.snn_chain_step(x0, wb, ip, fp, st_, refrac, 0, False) == (0, 0)
    st_[neuron.CUR] = 2.0  # the caller's BLAS result; the kernel continues with the neurons
    assert neuron.snn_chain_step(x0, wb, ip, fp, st_, refrac, 0, True) == (0, 1)
    assert st_[neuron.SPK].tolist() == [1.0] * (batch * n_out)
    assert st_[neuron.V].tolist() == [1.0] * (batch * n_out)  # 2 - threshold (subtract)


@SETTINGS
@given(seed=st.integers(0, 9999), c=st.integers(1, 3), o=st.integers(1, 5), h=st.integers(3, 9),
       w=st.integers(3, 9), k=st.integers(1, 3), s=st.integers(1, 2), p=st.integers(0, 2))
def test_conv_forms_match_the_reference(seed, c, o, h, w, k, s, p):
    rng = np.random.default_rng(seed)
    x = dyadic(rng, (2, c, h, w))
    wt = dyadic(rng, (o, c, k, k))
    b = dyadic(rng, (o,))
    want = ref_conv(x, wt, b, (s, s), (p, p))
    out = np.zeros_like(want)
    conv.conv2d_direct(x, wt, b, s, s, p, p, out)
    assert np.array_equal(out, want)
    out2 = np.zeros_like(want)
    x_spk = (x > 0).astype(np.float32)
    conv.conv2d_scatter(x_spk, wt, b, s, s, p, p, out2)
    assert np.array_equal(out2, ref_conv(x_spk, wt, b, (s, s), (p, p)))
    if s == 1:
        hp, wp = h + 2 * p, w + 2 * p
        xpad = np.zeros((c, hp * wp + k), np.float32)
        wide = np.zeros((o, (hp - k + 1) * wp), np.float32)
        out3 = np.zeros_like(want)
        conv.conv2d_wide(x, wt, b, p, p, xpad, wide, out3)
        assert np.array_equal(out3, want)
        cols = np.zeros((c * k * k, (hp - k + 1) * wp), np.float32)
        out4 = np.zeros_like(want)
        for i in range(2):
            conv.im2col_wide(x, i, p, p, k, k, xpad, cols)
            conv.unwide_bias((wt.reshape(o, -1).astype(np.float64) @ cols).astype(np.float32), b, wp, out4, i)
        assert np.array_equal(out4, want)
        if k == 3 and h + 2 * p >= 3 and w + 2 * p >= 3:
            xp3, wide3 = conv.conv3x3_scratch(c, o, h, w, p, p)
            out5, relu5 = np.full(want.shape, np.nan, np.float32), np.full(want.shape, np.nan, np.float32)
            for _ in range(2):  # the scratch is reused: its padding must stay zero
                pool5 = np.full((2, o, want.shape[2] // 2, want.shape[3] // 2), np.nan, np.float32)
                conv.conv3x3_wide(x, wt, b, p, p, xp3, wide3, out5, relu5, True, pool5, True)
                assert np.array_equal(out5, want) and np.array_equal(relu5, np.maximum(want, 0))
                if min(want.shape[2:]) >= 2:
                    assert np.array_equal(pool5, ref_maxpool(relu5, (2, 2), (2, 2), (0, 0)))
            out6 = np.zeros(want.shape, np.float32)
            conv.conv3x3_wide(x, wt, b, p, p, xp3, wide3, out6, out6, False, out6, False)
            assert np.array_equal(out6, want)


@SETTINGS
@given(seed=st.integers(0, 9999), k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1))
def test_pooling_matches_the_reference(seed, k, s, p):
    if p * 2 > k:
        return  # PyTorch's rule: padding at most half the kernel
    rng = np.random.default_rng(seed)
    x = dyadic(rng, (2, 3, 7, 6))
    want = ref_maxpool(x, (k, k), (s, s), (p, p))
    out = np.zeros_like(want)
    conv.maxpool2d(x, k, k, s, s, p, p, out)
    assert np.array_equal(out, want)
    want = ref_avgpool(x, (k, k), (s, s), (p, p))
    out = np.zeros_like(want)
    conv.avgpool2d(x, k, k, s, s, p, p, out)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)


def test_maxpool_2x2_fast_path():
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 10)).astype(np.float32)
    out = np.zeros((2, 3, 4, 5), np.float32)
    conv.maxpool2d(x, 2, 2, 2, 2, 0, 0, out)
    assert np.array_equal(out, ref_maxpool(x, (2, 2), (2, 2), (0, 0)))


@pytest.mark.parametrize("bad, spike, code", [
    (np.nan, False, codec.NOT_FINITE), (np.inf, True, codec.NOT_FINITE), (-np.inf, False, codec.NOT_FINITE),
    (0.5, True, codec.NOT_BINARY), (0.5, False, codec.OK), (1.0, True, codec.OK)])
def test_input_check_codes_and_no_copy_on_error(bad, spike, code):
    src = np.zeros(37, np.float32)
    src[29] = bad
    dst = np.full(37, 9.0, np.float32)
    assert codec.check_copy(src, dst, spike) == code
    if code == codec.OK:
        assert np.array_equal(dst, src)
    else:
        assert (dst == 9.0).all()
