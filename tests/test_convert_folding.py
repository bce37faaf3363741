"""Property tests: average pooling folded into the next synapse is exact, for any pooling
window before a Dense and for tiling pools before a Conv2d."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tianrt as tr


def _net(c, h, w, pool, after):
    g = tr.Graph(name="fold")
    x = g.input("x", (1, h, w))
    x = g.chain(x, tr.ann.Conv2d(1, c, 3, padding=1, seed=1), tr.ann.ReLU(), pool, *after)
    g.output("y", x)
    return g


def _pooled_reference(pool, weight_node, s):
    ref = tr.Sequential(pool.copy(), *( [tr.ann.Flatten()] if isinstance(weight_node, tr.ann.Dense) else []),
                        weight_node.copy(), input_shape=s.shape[1:])
    return tr.Runtime(ref).run({"x": s}, ticks=1)["y"][-1]


@settings(derandomize=True, deadline=None, max_examples=15)
@given(c=st.integers(1, 3), h=st.integers(3, 7), w=st.integers(3, 7), k=st.integers(1, 3),
       s=st.integers(1, 3), p=st.integers(0, 1), seed=st.integers(0, 1000))
def test_pool_then_dense_fold_is_exact(c, h, w, k, s, p, seed):
    if p * 2 > k or (h + 2 * p - k) < 0 or (w + 2 * p - k) < 0:
        return
    pool = tr.ann.AvgPool2d(k, s, p)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    dense = tr.ann.Dense(c * ho * wo, 3, seed=seed)
    g = _net(c, h, w, pool, [tr.ann.Flatten(), dense])
    rng = np.random.default_rng(seed)
    x = rng.random((8, 1, h, w)).astype(np.float32)
    snn = tr.convert(g, {"x": x}, T=2, method="max", per_channel=False)
    lam = snn.metadata["conversion"]["lambda"]["conv1"]
    spikes = (rng.random((4, c, h, w)) < 0.5).astype(np.float32)
    got = spikes.reshape(4, -1) @ (snn["dense1"].weight / lam).T + snn["dense1"].bias
    assert np.allclose(got, _pooled_reference(pool, g["dense1"], spikes), atol=1e-4)


@settings(derandomize=True, deadline=None, max_examples=12)
@given(c=st.integers(1, 3), q=st.integers(2, 3), n=st.integers(1, 3), k=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 1), seed=st.integers(0, 1000))
def test_tiling_pool_then_conv_fold_is_exact(c, q, n, k, stride, pad, seed):
    h = w = q * (n + 1)
    conv = tr.ann.Conv2d(c, 2, k, stride=stride, padding=pad, seed=seed)
    if (h // q + 2 * pad - k) < 0:
        return
    g = _net(c, h, w, tr.ann.AvgPool2d(q), [conv, tr.ann.ReLU(), tr.ann.Flatten()])
    g2 = tr.Graph(name="fold2")
    x2 = g2.chain(g2.input("x", (1, h, w)), *[e.node.copy() for n_, e in g.entries.items() if n_ not in ("x",)])
    shape = g2.entries[x2.name].shape
    g2.output("y", g2.add(tr.ann.Dense(shape[0], 2, seed=seed + 1), x2))
    rng = np.random.default_rng(seed)
    x = rng.random((8, 1, h, w)).astype(np.float32)
    snn = tr.convert(g2, {"x": x}, T=2, method="max", per_channel=False)
    lam = snn.metadata["conversion"]["lambda"]
    folded = snn["conv2"]
    assert folded.kernel_size == (k * q, k * q) and folded.stride == (stride * q,) * 2
    spikes = (rng.random((3, c, h, w)) < 0.5).astype(np.float32)
    w_eff = folded.weight * lam["conv2"] / lam["conv1"]
    node = tr.ann.Conv2d(c, 2, folded.kernel_size, folded.stride, folded.padding, weight=w_eff,
                         bias=folded.bias * lam["conv2"])
    got = tr.Runtime(tr.Sequential(node, input_shape=(c, h, w))).run({"x": spikes}, ticks=1)["y"][-1]
    assert np.allclose(got, _pooled_reference(tr.ann.AvgPool2d(q), g["conv2"], spikes), atol=1e-4)
