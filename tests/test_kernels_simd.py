"""The explicit-SIMD kernels (kernels/simd.py) against the reference backend: the 3x3
convolution with its ReLU and 2x2 pool epilogues (exact on dyadic values, within the
stated float tolerance otherwise, on shapes with vector blocks and tails and odd channel
counts), the vectorised pool against the scalar one (bit for bit, NaN included), the CSR
synapse's vector scan (any layout), and a W2-shaped graph through the numba backend."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tianrt as tr
from tianrt.backends.reference import conv2d as ref_conv
from tianrt.backends.reference import maxpool2d as ref_maxpool
from tianrt.kernels import conv, synapse
from tianrt.kernels.simd import LANES

SETTINGS = settings(derandomize=True, deadline=None, max_examples=30)


def dyadic(rng, shape):
    return (np.round(rng.uniform(-1, 1, size=shape) * 64) / 64).astype(np.float32)


def run_conv3x3(x, wt, b, p, relu=True, pool=True):
    batch, c, h, w = x.shape
    o = wt.shape[0]
    ho, wo = h + 2 * p - 2, w + 2 * p - 2
    out = np.full((batch, o, ho, wo), np.nan, np.float32)
    rl = np.full_like(out, np.nan) if relu else out
    pl = np.full((batch, o, ho // 2, wo // 2), np.nan, np.float32) if pool else out
    xp, wide = conv.conv3x3_scratch(c, o, h, w, p, p)
    for _ in range(2):  # the scratch is reused: its padding must stay zero
        conv.conv3x3_wide(x, wt, b, p, p, xp, wide, out, rl, relu, pl, relu and pool)
    return out, rl, pl


@SETTINGS
@given(seed=st.integers(0, 9999), batch=st.integers(1, 2), c=st.integers(1, 12), o=st.integers(1, 9),
       h=st.integers(1, 14), w=st.integers(1, 40), p=st.integers(0, 1), relu=st.booleans())
def test_conv3x3_equals_the_reference_exactly_on_dyadic_values(seed, batch, c, o, h, w, p, relu):
    if h + 2 * p < 3 or w + 2 * p < 3:
        return
    rng = np.random.default_rng(seed)
    x, wt, b = dyadic(rng, (batch, c, h, w)), dyadic(rng, (o, c, 3, 3)), dyadic(rng, (o,))
    want = ref_conv(x, wt, b, (1, 1), (p, p))  # exact: few dyadic terms
    out, rl, pl = run_conv3x3(x, wt, b, p, relu=relu)
    assert np.array_equal(out, want)
    if relu:
        assert np.array_equal(rl, np.maximum(want, 0))
        if min(want.shape[2:]) >= 2:
            assert np.array_equal(pl, ref_maxpool(rl, (2, 2), (2, 2), (0, 0)))


@SETTINGS
@given(seed=st.integers(0, 9999), c=st.integers(1, 20), o=st.integers(1, 7), h=st.integers(3, 12),
       w=st.integers(3, 35), p=st.integers(0, 1))
def test_conv3x3_within_the_float_tolerance(seed, c, o, h, w, p):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((o, c, 3, 3)) * 0.3).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    want = ref_conv(x, wt, b, (1, 1), (p, p))
    out, rl, _ = run_conv3x3(x, wt, b, p, pool=False)
    # multiply-adds may be fused (one rounding, not two) and the order differs from einsum's
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert np.array_equal(rl, np.maximum(out, 0))


def test_conv3x3_rejects_arrays_that_are_not_c_contiguous():
    x = np.zeros((1, 1, 4, 4), np.float32)
    wt, b = np.zeros((1, 1, 3, 3), np.float32), np.zeros(1, np.float32)
    bad = np.zeros((1, 1, 4, 4), np.float32).transpose(0, 1, 3, 2)
    xp, wide = conv.conv3x3_scratch(1, 1, 4, 4, 1, 1)
    try:
        conv.conv3x3_wide(x, wt, b, 1, 1, xp, wide, bad, bad, False, bad, False)
    except Exception as exc:  # numba raises the kernel's ValueError
        assert "C-contiguous" in str(exc)
    else:
        raise AssertionError("a transposed output was accepted")


@SETTINGS
@given(seed=st.integers(0, 9999), planes=st.integers(1, 4), h=st.integers(2, 9), w=st.integers(2, 70),
       nans=st.booleans())
def test_vector_pool_equals_the_scalar_pool_bit_for_bit(seed, planes, h, w, nans):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, planes, h, w)).astype(np.float32)
    if nans:  # the comparisons' order decides which NaN / value survives: same as the scalar loop
        x[rng.random(x.shape) < 0.1] = np.nan
    want = np.zeros((1, planes, h // 2, w // 2), np.float32)
    conv._maxpool2x2(x, want)
    got = np.full_like(want, 7.0)
    conv._maxpool2x2_flat(x.reshape(-1), got.reshape(-1), planes, h, w, h // 2, w // 2)
    assert np.array_equal(got, want, equal_nan=True)


@SETTINGS
@given(seed=st.integers(0, 9999), n_in=st.integers(1, 4 * LANES + 3), n_out=st.integers(1, 3 * LANES + 5),
       batch=st.integers(1, 3), density=st.floats(0.0, 0.2), strided=st.booleans())
def test_csr_vector_scan_equals_the_dense_sum(seed, n_in, n_out, batch, density, strided):
    rng = np.random.default_rng(seed)
    xs = (rng.random((batch, 2 * n_in)) < density).astype(np.float32) * dyadic(rng, (batch, 2 * n_in))
    x = xs[:, ::2] if strided else np.ascontiguousarray(xs[:, ::2])  # strided: the scalar scan
    wt = dyadic(rng, (n_in, n_out)) * (rng.random((n_in, n_out)) < 0.3)
    b = dyadic(rng, (n_out,))
    indptr, idx, data = synapse.to_csr(wt)
    out = np.full((batch, n_out), np.nan, np.float32)
    ev = synapse.accumulate_csr(x, indptr, idx, data, b, out)
    assert np.array_equal(out, (x.astype(np.float64) @ wt + b).astype(np.float32))
    assert ev == sum(np.count_nonzero(wt[x[i] != 0]) for i in range(batch))


def test_w2_shaped_graph_through_the_numba_backend():
    """Conv-ReLU-pool with vector rows and a tail (37 columns), an odd channel count, GAP,
    dense: every value the reference holds, at batch 1 and 2."""
    rng = np.random.default_rng(5)
    g = tr.Graph(name="w2ish")
    x = g.input("img", shape=(2, 9, 37))
    h = g.chain(x, tr.ann.Conv2d(2, 4, 3, padding=1, weight=dyadic(rng, (4, 2, 3, 3)), bias=dyadic(rng, (4,))),
                tr.ann.ReLU(), tr.ann.MaxPool2d(2),
                tr.ann.Conv2d(4, 5, 3, padding=1, weight=dyadic(rng, (5, 4, 3, 3)), bias=dyadic(rng, (5,))),
                tr.ann.ReLU(), tr.ann.GlobalAvgPool2d(), tr.ann.Dense(5, 3, seed=1))
    g.output("y", h)
    for batch in (1, 2):
        img = dyadic(rng, (batch, 2, 9, 37))
        ref, rt = tr.Runtime(g, "reference"), tr.Runtime(g, "numba", conv_mode="direct")
        np.testing.assert_allclose(rt.step({"img": img})["y"], ref.step({"img": img})["y"], rtol=1e-5, atol=1e-6)
        a, b = rt.state(), ref.state()
        convs = [e for e in a if e.endswith("/__value__") and not e.startswith(("gap", "dense", "img"))]
        assert len(convs) == 5  # conv1, relu1, pool1, conv2, relu2
        for k in convs:  # two dyadic layers: the sums are exact, so the values are identical
            assert np.array_equal(a[k], b[k]), k
