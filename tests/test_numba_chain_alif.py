"""ALIF layers with scalar parameters join the fused chain (one kernel call per tick, and
the one-call streaming step): equal to the reference and to the unfused ALIF op, bit for
bit with dyadic weights, at batch 1 (active-row lists) and batch > 1, mixed with LIF
layers, across a reset and a checkpoint."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tianrt as tr
from test_numba_backend import assert_same, dyadic
from test_numba_reset import same, steps


def alif_stack(rng, sizes, kinds, reset):
    g = tr.Graph(name="alif_stack")
    h = g.input("x", shape=(sizes[0],), domain="spike")
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = g.add(tr.snn.Dense(a, b, weight=dyadic(rng, (b, a)) * 2, bias=dyadic(rng, (b,), -0.1, 0.2)), h,
                  name=f"syn{i}")
        if kinds[i]:
            n = tr.snn.ALIF(beta=0.875, threshold=0.75, adapt=0.25, rho=0.5, reset=reset)
        else:
            n = tr.snn.LIF(beta=0.875, threshold=1.0, reset=reset)
        h = g.add(n, h, name=f"n{i}")
        g.output(f"s{i}", h)
        if kinds[i]:
            g.output(f"v{i}", g.probe(h, "v"))
    return g


@settings(derandomize=True, deadline=None, max_examples=10)
@given(seed=st.integers(0, 10_000), n_layers=st.integers(1, 3), reset=st.sampled_from(["subtract", "zero"]),
       batch=st.sampled_from([None, 3]))
def test_alif_in_the_fused_chain(seed, n_layers, reset, batch):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(3, 40, size=n_layers + 1)]
    kinds = [bool(k) for k in rng.integers(0, 2, size=n_layers)]
    kinds[0] = True
    g = alif_stack(rng, sizes, kinds, reset)
    shape = (10,) + ((batch,) if batch else ()) + (sizes[0],)
    x = (rng.random(shape) < 0.5).astype(np.float32)
    fused = tr.Runtime(g, "numba")
    assert "syn0" in [o.name for o in fused._impl.ops] and type(fused._impl.ops[0]).__name__ == "ChainOp"
    ref = tr.Runtime(g, "reference").run({"x": x})
    assert_same(ref, fused.run({"x": x}))
    assert_same(ref, tr.Runtime(g, "numba", fuse=False).run({"x": x}))
    # the one-call streaming step, across a reset and a checkpoint
    fused.reset()
    a = steps(fused, {"x": x}, batch is not None)
    fresh = tr.Runtime(g, "numba")
    fresh.run({"x": x[:4]})
    ck = fresh.state()
    fused.reset()
    fused.load_state(ck)
    same(steps(fused, {"x": x[4:]}, False), a[4:])
