"""The live status report (issue 20 item 10): percentiles over the last STATUS_WINDOW
values, exact against numpy, so that building a status line costs the same at any time."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tianrt.stream.metrics import STATUS_WINDOW, WINDOW, Stat


@settings(derandomize=True, deadline=None, max_examples=25)
@given(n=st.sampled_from([1, 5, STATUS_WINDOW - 1, STATUS_WINDOW, STATUS_WINDOW + 7, WINDOW - 3,
                          WINDOW + 11, 2 * WINDOW + STATUS_WINDOW // 2]), seed=st.integers(0, 5))
def test_recent_percentiles_match_numpy(n, seed):
    xs = np.random.default_rng(seed).random(n)
    s = Stat()
    for x in xs:
        s.add(float(x))
    live, full = s.summary(STATUS_WINDOW), s.summary()
    assert live["count"] == full["count"] == n and live["max"] == full["max"] == xs.max()
    np.testing.assert_allclose([live["p50"], live["p99"]], np.percentile(xs[-STATUS_WINDOW:], (50, 99)))
    np.testing.assert_allclose([full["p50"], full["p99"]], np.percentile(xs[-WINDOW:], (50, 99)))
