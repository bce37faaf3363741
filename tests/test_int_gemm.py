"""Exact integer layers on float BLAS (tianrt.ops.exact.exact_matmul / conv_acc, the numba
backend's intgemm.ExactGemm): bit for bit equal to the pure-Python oracle on both
sides of the float32 / float64 / int64 bounds, the bound logic itself, and whole graphs at
batch > 1 on both backends."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int_oracle as O
import tianrt as tr
from tianrt.backends import numba as NB
from tianrt.ops import exact as R
from tianrt.backends.numba import intgemm as NI
from tianrt.backends.numba.intgemm import ExactGemm

SETTINGS = settings(derandomize=True, deadline=None, max_examples=40)
I32_MIN, I32_MAX = O.INT32_MIN, O.INT32_MAX
XKINDS = ["spike", "int8", "int32"]  # float32 path, float32/float64, float64 (near the limits)


def _x(rng, shape, kind):
    if kind == "spike":
        return (rng.random(shape) < 0.4).astype(np.float32)
    if kind == "int8":
        return rng.integers(-128, 127, size=shape, endpoint=True).astype(np.int32)
    x = rng.choice(np.array([I32_MIN, I32_MIN + 1, I32_MAX - 1, I32_MAX, 0, 1, -1], np.int64), size=shape)
    return np.where(rng.random(shape) < 0.5, x, rng.integers(I32_MIN, I32_MAX, size=shape)).astype(np.int32)


def _bias(rng, n):
    return rng.choice(np.array([I32_MIN, -7, 0, 5, I32_MAX], np.int64), size=n).astype(np.int32)


def _requant(rng, n):
    m = rng.integers(0, 2 ** 15 - 1, size=n, endpoint=True).astype(np.int32)
    s = rng.integers(0, 40, size=n, endpoint=True).astype(np.int32)
    lo, hi = sorted(rng.integers(-128, 128, size=2).tolist())
    return m, s, lo, hi


# -- the bound ---------------------------------------------------------------------------------

def test_bound_picks_the_narrowest_exact_dtype():
    f = R.exact_float_dtype
    assert f(127 * 9, 1) is np.float32
    assert f(2 ** 24 - 1, 1) is np.float32 and f(1, 2 ** 24 - 1) is np.float32
    assert f(2 ** 24, 1) is np.float64 and f(2 ** 12, 2 ** 12) is np.float64
    assert f(2 ** 53 - 1, 1) is np.float64
    assert f(2 ** 53, 1) is None and f(127 * 70000, 2 ** 31) is None
    assert f(0, 2 ** 31) is np.float32 and f(10 ** 6, 0) is np.float32


def test_weight_and_input_bounds():
    w = np.array([[1, -2, 3], [-127, 127, -128]], np.int8)
    assert R.weight_bound(w) == 382
    assert R.weight_bound(w.reshape(2, 3, 1, 1)) == 382
    assert R.weight_bound(np.zeros((0, 3), np.int8)) == 0
    assert R.input_bound(np.array([I32_MIN, 5], np.int32)) == 2 ** 31  # no int32 abs overflow
    assert R.input_bound(np.array([3, I32_MAX], np.int32)) == I32_MAX
    assert R.input_bound(np.zeros((2, 0), np.int32)) == 0
    assert R.input_bound(np.array([0.0, 1.0], np.float32)) == 1
    from tianrt.kernels import intmath as im
    for a in (np.array([I32_MIN, 5], np.int32), np.array([0, 1], np.float32), np.zeros(0, np.int32),
              np.array([-3, 2], np.int32)):
        assert im.max_abs(a) == R.input_bound(a)


def test_float32_is_inexact_just_past_its_bound_and_the_exact_path_is_not():
    # 2^24 + 1 is the first integer float32 cannot hold: the bound must send this to float64
    w = np.full((1, 2), 127, np.int8)
    x = np.array([[2 ** 24 // 127 + 1, 1]], np.int32)  # 127 * 132105 + 127 = 2^24 + 1 + 126
    want = 127 * int(x[0, 0]) + 127
    assert R.exact_float_dtype(R.weight_bound(w), R.input_bound(x)) is np.float64
    assert int((x.astype(np.float32) @ w.astype(np.float32).T)[0, 0]) != want
    assert R.exact_matmul(x, w).tolist() == [[want]]


def test_float64_is_inexact_past_its_bound_and_the_int64_fallback_is_exact():
    # partial sums beyond 2^53 that cancel back into int32: float64 loses them, int64 does not
    n = 40000
    w = np.full((2, n), 127, np.int8)
    w[1, ::2] = -127
    x = np.empty((2, n), np.int32)
    x[:, : n // 2], x[:, n // 2:] = I32_MAX, -I32_MAX
    x[:, 7] += -3
    x[1, -1] = 12345
    bias = np.array([9, I32_MIN], np.int32)
    want = [O.dense_acc(row, w.tolist(), bias.tolist()) for row in x.tolist()]
    assert R.exact_float_dtype(R.weight_bound(w), R.input_bound(x)) is None
    assert R.dense_acc(x, w, bias).tolist() == want
    out = np.zeros((2, 2), np.int32)
    gemm = ExactGemm(x, w, bias, out)
    assert gemm() is False  # refused: the caller runs the int64 kernel
    assert not out.any()
    # the reference's int64 fallback for convolutions too (fan-in C * kh * kw = 40000)
    wc = w.reshape(2, n // 4, 2, 2)
    xc = x.reshape(2, n // 4, 2, 2)
    want_c = [O.conv_acc(s, wc.tolist(), bias.tolist(), (1, 1), (0, 0)) for s in xc.tolist()]
    assert R.conv_acc(xc, wc, bias, (1, 1), (0, 0)).tolist() == want_c


# -- layers against the oracle -----------------------------------------------------------------

def _gemm_engines():
    """Yield True with ExactGemm on numba's gemm_nt (the size limit raised), then False with
    it on BLAS (the limit at 0); the limit is restored after."""
    saved = NI.SMALL_GEMM
    try:
        for limit, small in ((1 << 40, True), (0, False)):
            NI.SMALL_GEMM = limit
            yield small
    finally:
        NI.SMALL_GEMM = saved

@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(2, 4), st.integers(1, 40), st.integers(1, 9),
       st.sampled_from(XKINDS), st.booleans())
def test_exact_dense_matches_oracle(seed, B, n_in, n_out, xkind, rq):
    rng = np.random.default_rng(seed)
    x = _x(rng, (B, n_in), xkind)
    w = rng.integers(-128, 127, size=(n_out, n_in), endpoint=True).astype(np.int8)
    bias = _bias(rng, n_out)
    acc = [O.dense_acc(row, w.tolist(), bias.tolist()) for row in x.astype(np.int64).tolist()]
    assert R.dense_acc(x, w, bias).tolist() == acc
    assert R.dense_acc_int64(x, w, bias).tolist() == acc
    m, s, lo, hi = _requant(rng, n_out)
    want = [[O.requant(a, int(m[o]), int(s[o]), lo, hi) for o, a in enumerate(r)] for r in acc] if rq else acc
    for small in _gemm_engines():  # numba's gemm_nt and BLAS
        out = np.zeros((B, n_out), np.int32)
        gemm = ExactGemm(x, w, bias, out, requant=(m, s, lo, hi) if rq else None)
        assert gemm.small is small and gemm() is True
        assert out.tolist() == want


@SETTINGS
@given(st.integers(0, 2 ** 31), st.integers(2, 3), st.integers(1, 3), st.integers(1, 4), st.integers(3, 7),
       st.integers(3, 7), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
       st.integers(0, 1), st.integers(0, 1), st.sampled_from(XKINDS), st.booleans())
def test_exact_conv_matches_oracle(seed, B, C, O_, H, W, kh, kw, sh, sw, ph, pw, xkind, rq):
    rng = np.random.default_rng(seed)
    x = _x(rng, (B, C, H, W), xkind)
    w = rng.integers(-128, 127, size=(O_, C, kh, kw), endpoint=True).astype(np.int8)
    bias = _bias(rng, O_)
    acc = [O.conv_acc(s, w.tolist(), bias.tolist(), (sh, sw), (ph, pw)) for s in x.astype(np.int64).tolist()]
    assert R.conv_acc(x, w, bias, (sh, sw), (ph, pw)).tolist() == acc
    assert R.conv_acc_int64(x, w, bias, (sh, sw), (ph, pw)).tolist() == acc
    m, s, lo, hi = _requant(rng, O_)
    want = [[O.emap(lambda a, o=o: O.requant(a, int(m[o]), int(s[o]), lo, hi), plane)
             for o, plane in enumerate(smp)] for smp in acc] if rq else acc
    for small in _gemm_engines():
        out = np.zeros((B, O_) + np.array(acc).shape[2:], np.int32)
        gemm = ExactGemm(x, w, bias, out, conv=(sh, sw, ph, pw), requant=(m, s, lo, hi) if rq else None)
        assert gemm.small is small and gemm() is True
        assert out.tolist() == want


def test_float64_buffers_are_made_once_and_reused():
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 127, size=(3, 5), endpoint=True).astype(np.int8)
    x = np.zeros((2, 5), np.int32)
    out = np.zeros((2, 3), np.int32)
    g = ExactGemm(x, w, np.zeros(3, np.int32), out)
    for v in (1, 2 ** 30, 3, 2 ** 30):
        x[:] = rng.integers(-v, v, size=x.shape, endpoint=True)
        assert g()
        assert out.tolist() == [O.dense_acc(r, w.tolist(), [0, 0, 0]) for r in x.tolist()]
    assert sorted(np.dtype(d).name for d in g._bufs) == ["float32", "float64"]


# -- whole graphs at batch > 1 -----------------------------------------------------------------

def _cnn(rng, gain):
    g = tr.Graph()
    x = g.input("x", (2, 6, 5))
    q = g.add(tr.q.Quantize(1 / 64), x)
    c = g.add(tr.q.Conv2d(2, 4, 3, padding=1, weight=rng.integers(-127, 127, (4, 2, 3, 3)),
                          bias=rng.integers(-900, 900, 4), multiplier=rng.integers(2 ** 14, 2 ** 15, 4),
                          shift=np.full(4, 16), lo=0, hi=127), q)
    i = g.add(tr.q.DirectCurrent(gain), c)
    s = g.add(tr.q.SynConv2d(4, 3, 3, stride=2, padding=1, weight=rng.integers(-127, 127, (3, 4, 3, 3)),
                             bias=[I32_MAX, -5, I32_MIN]), i)
    s = g.add(tr.q.LIF(threshold=5000, leak_mult=29491, leak_shift=15), s)
    f = g.add(tr.ann.Flatten(), s)
    d = g.add(tr.q.SynDense(3 * 3 * 3, 5, weight=rng.integers(-127, 127, (5, 27)), bias=rng.integers(-50, 50, 5)), f)
    g.output("c", c)
    g.output("i", d)
    g.output("v", g.add(tr.q.LIF(threshold=100, leak_mult=1, leak_shift=0), d))
    return g


@pytest.mark.parametrize("gain", [3, 2 ** 20, I32_MAX])  # float32, float64, float64 with saturated currents
def test_graph_at_batch_equals_oracle_and_int_kernels(gain):
    rng = np.random.default_rng(gain % 1000)
    g = _cnn(rng, gain)
    T, B = 4, 3
    x = rng.normal(0, 1.5, size=(T, B, 2, 6, 5)).astype(np.float32)
    ref = tr.Runtime(g, "reference").run({"x": x})
    fast, blas = [tr.Runtime(g, "numba", synapse_mode="dense").run({"x": x}) for _ in _gemm_engines()]
    try:
        NB.NumbaBackend.int_gemm = False
        slow = tr.Runtime(g, "numba").run({"x": x})
    finally:
        NB.NumbaBackend.int_gemm = True
    for k in ("c", "i", "v"):
        assert np.array_equal(ref[k], fast[k]) and np.array_equal(ref[k], slow[k]), k
        assert np.array_equal(ref[k], blas[k]), k
    for b in range(B):
        want = O.OracleRuntime(g).run([{"x": x[t, b]} for t in range(T)])
        for k, events in want.items():
            assert ref[k][:, b].tolist() == [v for _, v in events], k
