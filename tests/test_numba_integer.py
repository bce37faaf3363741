"""The numba backend's integer (chip) mode: bit for bit equal to the reference integer mode
and to the pure-Python oracle (tests/int_oracle.py) on random q-graphs, saturation
included (int_graphs pushes biases, gains and thresholds to the int32 limits)."""
import numpy as np
import pytest
from hypothesis import given, settings

import tianrt as tr
from int_graphs import FAMILIES, int_graph_cases
from test_int_reference import assert_matches_oracle

Q = tr.q


def assert_bit_equal(a, b):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, (k, a[k].dtype, b[k].dtype)
        assert np.array_equal(a.ticks[k], b.ticks[k]), k
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_numba_integer_mode_equals_reference_bit_for_bit(family):
    @settings(derandomize=True, deadline=None, max_examples=25)
    @given(int_graph_cases(families=(family,)))
    def check(case):
        g, inputs = case
        ref = tr.Runtime(g, "reference").run(inputs)
        got = tr.Runtime(g, "numba").run(inputs)
        assert_bit_equal(ref, got)
        # and stepping from a mid-stream checkpoint of the reference continues identically
        T = inputs["x"].shape[0]
        if T >= 4:
            half = {"x": inputs["x"][: T // 2]}
            rest = {"x": inputs["x"][T // 2:]}
            r = tr.Runtime(g, "reference")
            r.run(half)
            n = tr.Runtime(g, "numba")
            n.load_state(r.state())
            assert_bit_equal(r.run(rest), n.run(rest))

    check()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_numba_integer_mode_equals_the_oracle(family):
    @settings(derandomize=True, deadline=None, max_examples=6)
    @given(int_graph_cases(families=(family,)))
    def check(case):
        assert_matches_oracle(*case, backend="numba")

    check()


def test_integer_overflow_saturates_on_numba():
    g = tr.Graph()
    s = g.input("s", (3,), domain="spike")
    w = np.full((2, 3), 127)
    i = g.add(Q.SynDense(3, 2, weight=w * np.array([[1], [-1]]), bias=[2 ** 31 - 200, -(2 ** 31) + 200]), s)
    g.output("i", i)
    g.output("v", g.add(Q.LI(leak_mult=1, leak_shift=0), i))
    out = tr.Runtime(g, "numba").run({"s": np.ones((3, 3), np.float32)})
    assert out["i"].dtype == np.int32
    assert out["i"].tolist() == [[2 ** 31 - 1, -(2 ** 31)]] * 3
    assert out["v"].tolist() == [[2 ** 31 - 1, -(2 ** 31)]] * 3
