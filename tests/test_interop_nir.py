"""NIR export/import (tr.interop): lossless tianrt -> NIR -> tianrt round trips on random
graphs of every mappable node, NIR graphs written here after the NIR spec's examples
checked against spike trains computed by hand, the discretisation both ways, and the
notes an export gives about peers."""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tianrt as tr

nir = pytest.importorskip("nir")
pytest.importorskip("h5py")

F32 = np.float32


def _same_graph(a: tr.Graph, b: tr.Graph):
    assert a.dt == b.dt and a.outputs == b.outputs
    assert set(a.entries) == set(b.entries)
    for name, e in a.entries.items():
        f = b.entries[name]
        assert e.node.op == f.node.op, name
        assert e.node.config() == f.node.config(), name
        assert e.inputs == f.inputs and e.source == f.source, name
        for k, arr in e.node.arrays().items():
            assert np.array_equal(arr, f.node.arrays()[k]) and arr.dtype == f.node.arrays()[k].dtype, (name, k)


def _run(g, inputs, **kw):
    return tr.Runtime(g, backend="reference").run(inputs, **kw)


def _roundtrip(g, tmp_path):
    p = tmp_path / "m.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tr.interop.InteropWarning)
        tr.interop.write_nir(g, p)
    return tr.interop.read_nir(p)


def _random_snn(rng) -> tr.Graph:
    """A random spiking graph drawn from every node with a NIR counterpart."""
    dt = float(rng.choice([1e-3, 1e-4, 0.5]))
    g = tr.Graph(dt=dt, name="rnd")
    conv = bool(rng.integers(2))
    if conv:
        h = g.input("x", (2, 6, 6), domain="spike")
        h = g.add(tr.snn.Conv2d(2, 3, int(rng.choice([1, 3])), stride=int(rng.integers(1, 3)),
                                padding=int(rng.integers(0, 2)), seed=int(rng.integers(99))), h)
        h = g.add(_neuron(rng, first=True), h)
        h = g.add(tr.ann.Flatten(), h)
    else:
        h = g.input("x", (7,), domain=str(rng.choice(["spike", "current"])))
    n = g.entries[h.name].shape[0]
    m = int(rng.integers(2, 6))
    if rng.integers(2):  # a recurrent layer: synapse with a one-tick delay of its neuron
        fb = g.delay((m,), "spike")
        r = g.add(tr.snn.Recurrent(n, m, seed=int(rng.integers(99))), h, fb)
        h = g.add(_neuron(rng), r)
        g.connect(fb, h)
    else:
        h = g.add(tr.snn.Dense(n, m, bias=rng.normal(0, 0.2, m), seed=int(rng.integers(99))), h)
        h = g.add(_neuron(rng), h)
    g.output("s", h)
    k = int(rng.integers(1, 4))
    ro = g.add(tr.snn.LI(beta=float(rng.choice([1.0, 0.9, 0.5])), v_init=float(rng.choice([0.0, 0.25]))),
               g.add(tr.snn.Dense(m, k, seed=3), h))
    g.output("v", ro)
    return g


def _neuron(rng, first=False):
    kind = int(rng.integers(4))
    thr = float(rng.choice([0.5, 1.0, 0.3]))
    common = dict(threshold=thr, reset=str(rng.choice(["subtract", "zero"])),
                  refractory=int(rng.choice([0, 0, 2])), v_init=float(rng.choice([0.0, 0.1])))
    if common["reset"] == "zero":
        common["v_reset"] = float(rng.choice([0.0, -0.2]))
    if kind == 0:
        return tr.snn.IF(**common)
    if kind == 1:
        return tr.snn.LIF(beta=float(rng.uniform(0.5, 0.99)), **common)
    if kind == 2:
        return tr.snn.LIF(beta=float(rng.uniform(0.5, 0.99)), alpha=float(rng.uniform(0.2, 0.9)), **common)
    return tr.snn.LIF(beta=0.0, threshold=thr, reset="zero")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1))
def test_roundtrip_random_snn_bit_identical(seed):
    rng = np.random.default_rng(seed)
    g = _random_snn(rng)
    with tempfile.TemporaryDirectory() as d:
        g2 = _roundtrip(g, Path(d))
        nir.read(Path(d) / "m.nir")  # no extension nodes: the reference reader takes it
    _same_graph(g, g2)
    shape = g.entries["x"].shape
    x = rng.random((40, 3) + shape).astype(F32)
    if g.entries["x"].domain == "spike":
        x = (x < 0.5).astype(F32)
    a, b = _run(g, {"x": x}), _run(g2, {"x": x})
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_roundtrip_hybrid_with_extension_nodes(tmp_path):
    g = tr.Graph(dt=1e-3, name="hybrid")
    cam = g.input("camera", (1, 8, 8), rate_hz=30)
    x = g.add(tr.ann.Conv2d(1, 3, 3, padding=1, seed=1), cam)
    x = g.add(tr.ann.BatchNorm(3, weight=[1, 2, 0.5], running_mean=[0.1, 0, -0.1], running_var=[1, 2, 3]), x)
    x = g.add(tr.ann.ReLU(), x)
    x = g.add(tr.ann.MaxPool2d(2), x)
    x = g.add(tr.ann.AvgPool2d(2), x)
    x = g.add(tr.ann.Flatten(), x)
    x = g.add(tr.ann.Dense(12, 12, seed=2), x)
    x = g.add(tr.ann.Sigmoid(), x)
    s = g.add(tr.bridge.RateEncoder(scale=0.9), x)
    c = g.add(tr.bridge.DirectCurrent(gain=0.5), x)
    i = g.add(tr.ann.Add(), g.add(tr.snn.Dense(12, 4, seed=3), s), g.add(tr.snn.Dense(12, 4, seed=4), c))
    s = g.add(tr.snn.LIF(beta=0.9), i)
    cat = g.add(tr.ann.Concat(), s, g.add(tr.snn.IF(), g.add(tr.snn.Dense(4, 2, seed=5), s)))
    g.output("y", g.add(tr.bridge.SpikeCount(window=8), s))
    g.output("m", g.add(tr.bridge.MembraneReadout(window=4, mean=True), i))
    g.output("cat", cat)
    with pytest.warns(tr.interop.InteropWarning, match="Sinabs") as rec:
        tr.interop.write_nir(g, tmp_path / "h.nir")
    msg = " ".join(str(w.message) for w in rec)
    for name in ("relu1", "maxpool1", "bn1", "rate1", "count1", "membrane1", "add1", "concat1", "sigmoid1"):
        assert f"`{name}`" in msg
    with pytest.raises(Exception):  # the reference reader refuses the extension nodes
        nir.read(tmp_path / "h.nir")
    g2 = tr.interop.read_nir(tmp_path / "h.nir")
    _same_graph(g, g2)
    assert g2.metadata == g.metadata and g2.name == g.name
    frame = np.random.default_rng(0).random((2, 1, 8, 8)).astype(F32)
    a, b = _run(g, {"camera": frame}, ticks=16), _run(g2, {"camera": frame}, ticks=16)
    for k in a:
        assert np.array_equal(a[k], b[k]) and np.array_equal(a.ticks[k], b.ticks[k]), k
    with pytest.raises(tr.interop.InteropError, match="strict"):
        tr.interop.to_nir(g, strict=True)


def test_pure_snn_export_is_read_by_the_reference_reader(tmp_path):
    g = tr.Graph(dt=1e-3)
    h = g.input("x", (4,), domain="spike")
    h = g.add(tr.snn.LIF(beta=0.75, threshold=1.0, reset="zero"), g.add(tr.snn.Dense(4, 3, seed=0), h))
    g.output("s", h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain zero-reset LIF network exports without notes
        notes = tr.interop.write_nir(g, tmp_path / "p.nir")
    assert notes == []
    ng = nir.read(tmp_path / "p.nir")
    lif = ng.nodes["lif1"]
    assert isinstance(lif, nir.LIF) and isinstance(ng.nodes["syn1"], nir.Affine)
    # discretisation, tianrt -> NIR: tau = dt / (1 - beta), r = tau / dt, v_leak = 0,
    # v_threshold = the float32 just below the threshold (NIR fires on v > v_threshold)
    np.testing.assert_allclose(lif.tau, 1e-3 / 0.25, rtol=1e-6)
    np.testing.assert_allclose(lif.r, 4.0, rtol=1e-6)
    assert np.all(lif.v_leak == 0) and np.all(lif.v_threshold == np.nextafter(F32(1), F32(0)))


def test_tianrt_neurons_read_back_from_nir_parameters_alone(tmp_path):
    """Drop tianrt's metadata: the NIR parameters alone give the same spikes (zero reset)."""
    rng = np.random.default_rng(5)
    g = tr.Graph(dt=1e-3)
    h = g.input("x", (5,), domain="spike")
    h = g.add(tr.snn.LIF(beta=0.8, threshold=0.6, reset="zero", v_reset=-0.1), g.add(tr.snn.Dense(5, 6, seed=1), h))
    h = g.add(tr.snn.LIF(beta=0.7, alpha=0.4, threshold=0.4, reset="zero"), g.add(tr.snn.Dense(6, 4, seed=2), h))
    h = g.add(tr.snn.IF(threshold=0.5, reset="zero"), g.add(tr.snn.Dense(4, 3, seed=3), h))
    g.output("s", h)
    ng, _ = tr.interop.to_nir(g)
    for node in ng.nodes.values():
        node.metadata = {}
    ng.metadata = {}
    g2 = tr.interop.read_nir(ng, dt=1e-3)
    x = (rng.random((60, 8, 5)) < 0.5).astype(F32)
    a, b = _run(g, {"x": x})["s"], _run(g2, {"x": x})["s"]
    assert a.sum() > 20 and np.array_equal(a, b)


# -- NIR graphs written after the NIR spec's examples, against hand-computed spike trains --

def _euler_lif(I, tau, r, v_leak, thr, v_reset, dt):
    """NIR LIF, forward Euler: v += dt/tau * (v_leak - v + r I); spike when v > thr; v = v_reset."""
    v, out = 0.0, []
    for i in I:
        v = v + dt / tau * (v_leak - v + r * i)
        s = v > thr
        out.append(int(s))
        if s:
            v = v_reset
    return out


def test_nir_lif_example_hand_computed():
    # Input -> Affine -> LIF -> Output, as in the NIR documentation's first example
    dt = 1e-3
    w = np.array([[1.0], [0.5]], F32)
    par = dict(tau=np.full(2, 5e-3, F32), r=np.full(2, 5.0, F32), v_threshold=np.full(2, 1.0, F32))
    for v_leak, v_reset in ((0.0, 0.0), (0.25, -0.5)):
        lif = nir.LIF(v_leak=np.full(2, v_leak, F32), v_reset=np.full(2, v_reset, F32), **par)
        ng = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([1])), "fc": nir.Affine(w, np.zeros(2, F32)),
                                 "lif": lif, "out": nir.Output(output_type=np.array([2]))},
                          edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")])
        g = tr.interop.read_nir(ng, dt=dt)
        x = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1], F32).reshape(-1, 1)
        s = _run(g, {"in": x})["out"]
        for j in range(2):
            assert s[:, j].tolist() == _euler_lif(w[j, 0] * x[:, 0], 5e-3, 5.0, v_leak, 1.0, v_reset, dt), (v_leak, j)
        if v_leak == 0:
            # by hand: beta = 1 - dt/tau = 0.8, gain dt*r/tau = 1; neuron 0:
            # v = 1 (not > 1), 1.8 spike -> 0, 0, 1, 1.8 spike -> 0, 1, 0.8, 0.64, 1.512 spike, 1, 1.8 spike
            assert s[:, 0].tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0]
        assert s[:, 1].sum() > 0


def test_nir_if_tie_at_threshold_does_not_fire():
    # IF with r = 1/dt: v += I; NIR fires on v > v_threshold, so v == threshold stays silent
    ng = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([1])),
                             "if": nir.IF(r=np.array([1000.0], F32), v_threshold=np.array([1.0], F32)),
                             "o": nir.Output(output_type=np.array([1]))},
                      edges=[("i", "if"), ("if", "o")])
    g = tr.interop.read_nir(ng, dt=1e-3, input_domain="current")
    x = np.array([0.5, 0.5, 0.25, 0.5, 0.5, 0.5], F32).reshape(-1, 1)
    # v: 0.5, 1.0 (tie: no spike), 1.25 spike -> 0, 0.5, 1.0 (tie), 1.5 spike
    assert _run(g, {"i": x})["o"][:, 0].tolist() == [0, 0, 1, 0, 0, 1]


def test_nir_threshold_scale_and_sumpool():
    ng = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([1, 4, 4])),
                             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                   padding=np.array([0, 0])),
                             "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0),
                             "scale": nir.Scale(scale=np.array([1.0, 0.5, 2.0, 1.0], F32)),
                             "thr": nir.Threshold(threshold=np.array([1.5] * 4, F32)),
                             "o": nir.Output(output_type=np.array([4]))},
                      edges=[("i", "pool"), ("pool", "flat"), ("flat", "scale"), ("scale", "thr"), ("thr", "o")])
    g = tr.interop.read_nir(ng)
    x = np.zeros((1, 1, 4, 4), F32)
    x[0, 0, :2, :2] = [[1, 1], [0, 0]]    # pool sum 2 -> x1 = 2 > 1.5
    x[0, 0, :2, 2:] = [[1, 1], [1, 1]]    # 4 -> x0.5 = 2 > 1.5
    x[0, 0, 2:, :2] = [[1, 0], [0, 0]]    # 1 -> x2 = 2 > 1.5
    x[0, 0, 2:, 2:] = [[1, 0], [0, 0]]    # 1 -> x1 = 1, silent
    assert _run(g, {"i": x})["o"][0].tolist() == [1, 1, 1, 0]


def test_nir_recurrent_subgraph_and_delay_hand_computed():
    # snnTorch's RLeaky export: a subgraph input -> lif, lif -> w_rec -> lif, lif -> output;
    # the cycle is read with a one-tick delay. Then a NIR Delay of 2 ticks.
    dt = 1e-3
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                              "lif": nir.LIF(tau=np.full(2, 2e-3, F32), r=np.full(2, 2.0, F32),
                                             v_leak=np.zeros(2, F32), v_threshold=np.full(2, 0.9, F32)),
                              "w_rec": nir.Linear(weight=np.array([[0, 0], [1.0, 0]], F32)),
                              "output": nir.Output(output_type=np.array([2]))},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                       type_check=False)
    ng = nir.NIRGraph(nodes={"x": nir.Input(input_type=np.array([1])),
                             "fc": nir.Affine(np.array([[1.0], [0.0]], F32), np.zeros(2, F32)),
                             "rnn": sub, "d": nir.Delay(delay=np.full(2, 2e-3, F32)),
                             "y": nir.Output(output_type=np.array([2])), "z": nir.Output(output_type=np.array([2]))},
                      edges=[("x", "fc"), ("fc", "rnn.input"), ("rnn.output", "y"), ("rnn.output", "d"), ("d", "z")],
                      type_check=False)
    g = tr.interop.read_nir(ng, dt=dt)
    x = np.array([1, 0, 0, 0, 1, 0, 0], F32).reshape(-1, 1)
    out = _run(g, {"x": x})
    # beta = 0.5, gain 1. n0: v = 1 > 0.9 spikes at 0 and 4. n1 gets w_rec * s0 one tick later:
    # v = 1 at ticks 1 and 5 -> spikes there.
    assert out["y"].tolist() == [[1, 0], [0, 1], [0, 0], [0, 0], [1, 0], [0, 1], [0, 0]]
    z = np.zeros((7, 2))
    z[out.ticks["z"]] = out["z"]  # a delay has no value before its first tick
    assert z.tolist() == [[0, 0], [0, 0], [1, 0], [0, 1], [0, 0], [0, 0], [1, 0]]


def test_nir_cubalif_hand_computed():
    # snnTorch Synaptic export: tau_syn = dt/(1-alpha), tau_mem = dt/(1-beta), r = tau_mem/dt,
    # w_in = tau_syn/dt: I = alpha I + x; v = beta v + I; spike v > thr -> v_reset
    dt, alpha, beta = 1e-3, 0.5, 0.75
    ts, tm = dt / (1 - alpha), dt / (1 - beta)
    node = nir.CubaLIF(tau_syn=np.array([ts], F32), tau_mem=np.array([tm], F32), r=np.array([tm / dt], F32),
                       v_leak=np.zeros(1, F32), v_threshold=np.array([1.0], F32), w_in=np.array([ts / dt], F32))
    ng = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([1])), "n": node,
                             "o": nir.Output(output_type=np.array([1]))}, edges=[("i", "n"), ("n", "o")])
    g = tr.interop.read_nir(ng, dt=dt)
    x = [1, 0, 0, 1, 1, 0, 0, 0]
    I = v = 0.0
    want = []
    for xi in x:
        I = alpha * I + xi
        v = beta * v + I
        want.append(int(v > 1.0))
        v = 0.0 if v > 1.0 else v
    assert _run(g, {"i": np.array(x, F32).reshape(-1, 1)})["o"][:, 0].tolist() == want
    assert sum(want) >= 1


def test_nir_import_errors_name_the_node(tmp_path):
    conv1 = nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3), F32), stride=1, padding=0, dilation=1, groups=1,
                       bias=np.zeros(2, F32))
    ng = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([1, 8])), "c": conv1,
                             "o": nir.Output(output_type=np.array([2, 6]))}, edges=[("i", "c"), ("c", "o")])
    with pytest.raises(tr.interop.InteropError, match="Conv1d `c`"):
        tr.interop.read_nir(ng)
    lif = nir.LIF(tau=np.array([1e-4], F32), r=np.ones(1, F32), v_leak=np.zeros(1, F32), v_threshold=np.ones(1, F32))
    ng = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([1])), "n": lif,
                             "o": nir.Output(output_type=np.array([1]))}, edges=[("i", "n"), ("n", "o")])
    with pytest.raises(tr.interop.InteropError, match="`n`.*dt"):
        tr.interop.read_nir(ng, dt=1e-3)
    with pytest.raises(tr.interop.InteropError, match="no such file"):
        tr.interop.read_nir(tmp_path / "missing.nir")


def test_interop_doc_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "interop.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for b in blocks:
        exec(compile(b, "docs/interop.md", "exec"), {})


def test_per_neuron_parameters_round_trip_through_nir(tmp_path):
    """One beta and threshold per neuron: NIR holds them as arrays; back bit-identical."""
    g = tr.Graph(name="pn")
    x = g.input("x", (5,), domain="spike")
    h = g.add(tr.snn.Dense(5, 4, seed=2), x)
    beta = np.array([0.5, 0.75, 0.9, 0.99], F32)
    h = g.add(tr.snn.LIF(beta=beta, threshold=np.array([0.25, 0.5, 1.0, 2.0], F32), reset="zero"), h, name="lif")
    g.output("s", h)
    g2 = _roundtrip(g, tmp_path)
    assert np.array_equal(g2["lif"].beta, beta) and g2["lif"].threshold.shape == (4,)
    xs = (np.random.default_rng(0).random((30, 5)) < 0.5).astype(F32)
    assert np.array_equal(_run(g, {"x": xs})["s"], _run(g2, {"x": xs})["s"])
