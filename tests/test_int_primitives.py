"""Integer primitives (sat32, round_shift, requant, round_half_away, quantize): the numba
kernels and the numpy helpers equal the pure-Python oracle, at the int32 limits and at
exact halves."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import int_oracle as O
from tianrt import qmath
from tianrt.kernels import intmath as im

I32_MIN, I32_MAX = O.INT32_MIN, O.INT32_MAX
SETTINGS = settings(derandomize=True, deadline=None, max_examples=200)

# values that stress the edges: the int32 limits, their neighbours, and ordinary numbers
int32s = st.one_of(st.sampled_from([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX]),
                   st.integers(I32_MIN, I32_MAX), st.integers(-300, 300))
wide = st.one_of(int32s, st.integers(-(2 ** 40), 2 ** 40),
                 st.sampled_from([I32_MAX + 1, I32_MIN - 1, 2 ** 62 - 1, -(2 ** 62) + 1]))
shifts = st.integers(0, 62)
mults = st.one_of(st.sampled_from([0, 1, 2 ** 14, 2 ** 15 - 1]), st.integers(0, 2 ** 15 - 1))


def test_sat32_saturates_at_the_int32_limits_instead_of_wrapping():
    for x, want in [(I32_MAX, I32_MAX), (I32_MAX + 1, I32_MAX), (2 ** 40, I32_MAX),
                    (I32_MIN, I32_MIN), (I32_MIN - 1, I32_MIN), (-(2 ** 40), I32_MIN), (-5, -5)]:
        assert O.sat32(x) == want
        assert im.sat32(x) == want
        assert int(qmath.sat32(x)) == want


@SETTINGS
@given(wide)
def test_sat32_matches_oracle(x):
    assert im.sat32(x) == O.sat32(x) == int(qmath.sat32(np.int64(x)))


def test_round_shift_rounds_exact_halves_away_from_zero():
    # x / 2**n exactly k + 1/2: away from zero, for both signs, small and large n
    for n in (1, 2, 7, 15, 31, 40):
        for k in (0, 1, 2, 5, 1000):
            x = (2 * k + 1) * 2 ** (n - 1)
            for sign in (1, -1):
                want = sign * (k + 1)
                assert O.round_shift(sign * x, n) == want
                assert im.round_shift(sign * x, n) == want
                assert int(qmath.round_shift(np.int64(sign * x), n)) == want
    # just below / above a half goes to the nearer integer
    assert im.round_shift(5, 1) == 3 and im.round_shift(-5, 1) == -3
    assert im.round_shift(6, 2) == 2 and im.round_shift(-6, 2) == -2   # 1.5 -> 2
    assert im.round_shift(5, 2) == 1 and im.round_shift(-5, 2) == -1   # 1.25 -> 1
    assert im.round_shift(7, 3) == 1 and im.round_shift(-7, 3) == -1   # 0.875 -> 1
    assert im.round_shift(3, 3) == 0 and im.round_shift(-3, 3) == 0    # 0.375 -> 0
    assert im.round_shift(-4, 3) == -1                                 # -0.5 -> -1


@SETTINGS
@given(st.integers(-(2 ** 62) + 1, 2 ** 62 - 1), shifts)
def test_round_shift_matches_oracle(x, n):
    want = O.round_shift(x, n)
    assert im.round_shift(x, n) == want
    assert int(qmath.round_shift(np.int64(x), n)) == want


@SETTINGS
@given(int32s, mults, shifts, st.integers(-128, 127), st.integers(-128, 127))
def test_requant_matches_oracle(acc, m, n, a, b):
    lo, hi = min(a, b), max(a, b)
    want = O.requant(acc, m, n, lo, hi)
    assert lo <= want <= hi
    assert im.requant(acc, m, n, lo, hi) == want
    assert int(qmath.requant(np.int64(acc), m, n, lo, hi)) == want


def test_requant_exact_half_and_extreme_accumulators():
    # 3 * 2**14 / 2**15 = 1.5 -> 2 ; -1.5 -> -2
    assert im.requant(3, 2 ** 14, 15, -128, 127) == 2
    assert im.requant(-3, 2 ** 14, 15, -128, 127) == -2
    # the largest products stay exact: int32 extremes times the largest multiplier
    for acc in (I32_MAX, I32_MIN):
        want = O.requant(acc, 2 ** 15 - 1, 40, -128, 127)
        assert im.requant(acc, 2 ** 15 - 1, 40, -128, 127) == want
        assert want == O.round_shift(acc * (2 ** 15 - 1), 40)  # not clamped, so really checked


@SETTINGS
@given(st.one_of(st.floats(-1e6, 1e6, allow_nan=False),
                 st.integers(-2000, 2000).map(lambda k: k / 2),  # exact halves
                 st.sampled_from([0.49999999999999994, -0.49999999999999994, 2.5, -2.5,
                                  0.5, -0.5, 1e15 + 0.5])))
def test_round_half_away_matches_exact_rational_rounding(y):
    want = O.round_half_away(y)
    assert im.round_half_away(y) == want
    assert int(qmath.round_half_away(y)) == want


def test_round_half_away_does_not_double_round():
    # floor(y + 0.5) would give 1 here: 0.49999999999999994 + 0.5 rounds up to 1.0
    assert im.round_half_away(0.49999999999999994) == 0
    assert int(qmath.round_half_away(0.49999999999999994)) == 0
    assert im.round_half_away(-2.5) == -3 and im.round_half_away(2.5) == 3


@SETTINGS
@given(st.lists(st.one_of(st.floats(width=32, allow_nan=False),
                          st.integers(-300, 300).map(lambda k: k / 2),
                          st.sampled_from([float("inf"), float("-inf"), float("nan"), 127.5, -128.5, 126.5])),
                min_size=1, max_size=20),
       st.sampled_from([1.0, 0.5, 1 / 64, 0.1, 3.7, 1e-30, 1e30]))
def test_quantize_matches_oracle_including_halves_and_huge_values(xs, scale):
    x = np.array(xs, np.float32)
    want = [O.quantize(float(v), scale) for v in x.tolist()]
    out = np.zeros(x.size, np.int32)
    im.quantize(x, scale, out)
    assert out.tolist() == want
    assert qmath.quantize(x, scale).tolist() == want


@SETTINGS
@given(st.lists(int32s, min_size=1, max_size=20), st.sampled_from([1.0, 1 / 127, 0.1, 3e-5, 7.0]))
def test_dequantize_matches_oracle(qs, scale):
    q = np.array(qs, np.int32)
    want = [O.dequantize(v, scale) for v in qs]
    out = np.zeros(q.size, np.float32)
    im.dequantize(q, scale, out)
    assert out.tolist() == want
    assert qmath.dequantize(q, scale).tolist() == want


def test_quantize_of_nan_and_infinities():
    x = np.array([np.nan, np.inf, -np.inf, 1e38, -1e38], np.float32)
    out = np.zeros(5, np.int32)
    im.quantize(x, 0.5, out)
    assert out.tolist() == [0, 127, -128, 127, -128]
    assert qmath.quantize(x, 0.5).tolist() == [0, 127, -128, 127, -128]
    assert [O.quantize(float(v), 0.5) for v in x.tolist()] == [0, 127, -128, 127, -128]
