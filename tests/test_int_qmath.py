"""tianrt.qmath: real scales as fixed-point multipliers, symmetric weight/bias/threshold
quantisation, and the closed-form rate-encoder count."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int_oracle as O
from tianrt import qmath

SETTINGS = settings(derandomize=True, deadline=None, max_examples=300)


@SETTINGS
@given(st.floats(min_value=2.0 ** -48, max_value=2.0 ** 15 - 0.51, allow_nan=False))
def test_quantize_multiplier_is_normalised_and_accurate(scale):
    m, n = qmath.quantize_multiplier(scale)
    assert isinstance(m, int) and isinstance(n, int)
    assert 2 ** 14 <= m < 2 ** 15 and 0 <= n <= 62
    # m is the nearest integer to scale * 2**n (exact rational check)
    assert abs(Fraction(m) - Fraction(scale) * 2 ** n) <= Fraction(1, 2)
    assert abs(m * 2.0 ** -n - scale) <= scale * 2.0 ** -15
    assert qmath.multiplier_value(m, n) == m * 2.0 ** -n


def test_quantize_multiplier_edges():
    assert qmath.quantize_multiplier(0.0) == (0, 0)
    assert qmath.quantize_multiplier(1.0) == (2 ** 14, 14)
    assert qmath.quantize_multiplier(0.5) == (2 ** 14, 15)
    assert qmath.quantize_multiplier(0.75) == (3 * 2 ** 13, 15)
    assert qmath.quantize_multiplier(2 ** 15 - 1) == (2 ** 15 - 1, 0)
    # just below a power of two rounds up to 2**15 and renormalises
    m, n = qmath.quantize_multiplier(1.0 - 2.0 ** -20)
    assert (m, n) == (2 ** 14, 14)
    # below 2**-48 the multiplier cannot be normalised with n <= 62
    m, n = qmath.quantize_multiplier(2.0 ** -50)
    assert (m, n) == (2 ** 12, 62)
    assert qmath.quantize_multiplier(2.0 ** -70) == (0, 0)
    for bad in (2.0 ** 15, 1e9, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="quantize_multiplier"):
            qmath.quantize_multiplier(bad)


def test_a_quantized_multiplier_rescales_like_the_real_scale():
    # requant with (m, n) from a scale stays within one unit of round(acc * scale)
    rng = np.random.default_rng(3)
    for scale in (0.001, 0.0123, 0.37, 0.999, 1.5, 17.0):
        m, n = qmath.quantize_multiplier(scale)
        acc = rng.integers(-(2 ** 20), 2 ** 20, size=200)
        got = qmath.requant(acc, m, n, -(2 ** 31), 2 ** 31 - 1)
        assert np.all(np.abs(got - acc * scale) <= 0.5 + np.abs(acc) * scale * 2.0 ** -15 + 1e-9)
        assert got.tolist() == [O.requant(int(a), m, n, -(2 ** 31), 2 ** 31 - 1) for a in acc]


def test_per_channel_multipliers_and_requant_params():
    scales = np.array([[0.5, 0.001], [3.0, 0.0]])
    m, n = qmath.quantize_multipliers(scales)
    assert m.dtype == np.int32 and m.shape == (2, 2) and n.shape == (2, 2)
    for s, mm, nn in zip(scales.ravel(), m.ravel(), n.ravel()):
        assert (int(mm), int(nn)) == qmath.quantize_multiplier(s)
    m, n = qmath.requant_params(0.02, np.array([0.01, 0.04]), 0.1)
    assert np.allclose(qmath.multiplier_value(m, n), [0.002, 0.008], rtol=2.0 ** -15)
    with pytest.raises(ValueError, match="requant_params"):
        qmath.requant_params(0.02, 0.01, 0.0)


def test_quantize_leak():
    assert qmath.quantize_leak(1.0) == (1, 0)
    assert qmath.quantize_leak(0.0) == (0, 0)
    m, n = qmath.quantize_leak(0.9)
    assert abs(m * 2.0 ** -n - 0.9) < 0.9 * 2.0 ** -15 and n <= 62
    with pytest.raises(ValueError, match="beta"):
        qmath.quantize_leak(1.2)


def test_symmetric_weights_biases_and_thresholds():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 0.0, -0.0]])
    q, s = qmath.quantize_weights(w)
    assert s == 2.0 / 127 and q.dtype == np.int8
    assert q.tolist() == [[32, -64, 16], [0, 0, 0], [127, 0, 0]]  # 31.75 -> 32, 63.5 -> 64
    qc, sc = qmath.quantize_weights(w, axis=0)
    assert np.allclose(sc, [1 / 127, 1.0, 2 / 127])  # an all-zero row gets scale 1
    assert qc.tolist() == [[64, -127, 32], [0, 0, 0], [127, 0, 0]]  # 63.5 -> 64 (half away)
    assert qmath.quantize_weights(np.array([10.0, -10.0]), scale=0.01)[0].tolist() == [127, -127]
    b = qmath.quantize_bias(np.array([0.5, -0.5, 1e12, -1e12, 0.3]), 0.25)
    assert b.dtype == np.int32 and b.tolist() == [2, -2, 2 ** 31 - 1, -(2 ** 31), 1]
    assert qmath.quantize_threshold(1.0, 0.004) == 250
    assert qmath.quantize_threshold(1e-9, 1.0) == 1
    with pytest.raises(ValueError, match="threshold"):
        qmath.quantize_threshold(-1.0, 1.0)


@settings(derandomize=True, deadline=None, max_examples=200)
@given(st.integers(-300, 300), st.integers(1, 127), st.integers(0, 1000))
def test_rate_spike_count_is_round_half_up(q, d, t):
    x = min(max(q, 0), d)
    want = math.floor(Fraction(t * x, d) + Fraction(1, 2))
    assert int(qmath.rate_spike_count(q, d, t)) == want
