"""End to end through a pseudo-terminal: Runtime(backend="chip", port="auto") starts a
firmware_sim process, uploads the compiled image over the serial protocol and drives it;
its outputs equal the numba backend's integer mode bit for bit."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tianrt as tr
from tianrt.chip import ChipSpec

from chip_graphs import SMALL, TEMPLATES, inputs

SPEC = ChipSpec(**{**SMALL, "mesh_rows": 12, "mesh_cols": 13})


@settings(derandomize=True, deadline=None, max_examples=3)
@given(template=st.sampled_from(["mlp", "recurrent", "spike_input"]), seed=st.integers(0, 2 ** 31 - 1))
def test_chip_over_pty_equals_numba_integer_mode(template, seed):
    rng = np.random.default_rng(seed)
    g, shapes = TEMPLATES[template](rng)
    xs = inputs(rng, shapes, g, 2)
    clip = inputs(rng, shapes, g, 2, ticks=5)
    nb = tr.Runtime(g, backend="numba")
    with tr.Runtime(g, backend="chip", port="auto", spec=SPEC) as chip:
        for a, b in ((nb.run(xs, ticks=7), chip.run(xs, ticks=7)), (nb.run(clip), chip.run(clip))):
            for k in a:
                assert np.array_equal(a.ticks[k], b.ticks[k]) and a[k].dtype == b[k].dtype
                assert np.array_equal(a[k], b[k]), k
        nb.reset(), chip.reset()
        for t in range(3):  # streaming, one round trip per tick
            a, b = nb.step(xs if t == 0 else {}), chip.step(xs if t == 0 else {})
            assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
        c = chip.counters()
        assert c["ticks"] > 0 and c["packets"] > 0 and c["cycles"] > 0 and c["energy_pj"] > 0
