"""Runtime.advance (a step, then ticks without new inputs up to the next output in one call)
against the same ticks made one ``step`` at a time, its definition: outputs, the ticks they
came at, and checkpoints equal bit for bit -- on the reference backend, the numba backend's
per-op loop and its generated loop (``compiled=True``) -- and the streaming scheduler, which
hands the ticks between samples to ``advance``, against a hand-written step loop."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr
from test_numba_backend import dyadic

DECODERS = ("count", "sliding", "membrane", "first")


def decoder_graph(rng, encoder="direct", decoder="membrane", window=4, hold=True, front=False, observe=False):
    """input -> [ann.Dense -> ReLU] -> encoder -> snn.Dense -> LIF -> snn.Dense -> LIF -> decoder;
    ``hold=False``: a spike input presented at its tick only, straight into the first synapse."""
    g = tr.Graph(name="adv", dt=1e-3)
    x = g.input("x", shape=(5,), hold=hold, domain="tensor" if hold else "spike")
    h = x
    if front and hold:  # an op that runs only on a new input
        h = g.add(tr.ann.ReLU(), g.add(tr.ann.Dense(5, 5, weight=dyadic(rng, (5, 5)), bias=dyadic(rng, (5,))), h))
    enc = {"direct": tr.bridge.DirectCurrent(gain=1.5), "rate": tr.bridge.RateEncoder(),
           "latency": tr.bridge.LatencyEncoder(window=window), "poisson": tr.bridge.PoissonEncoder(seed=5)}[encoder]
    s = g.add(enc, h) if hold else x
    for n_in, n_out in ((5, 7), (7, 4)):
        s = g.add(tr.snn.LIF(beta=0.875, threshold=0.5),
                  g.add(tr.snn.Dense(n_in, n_out, weight=dyadic(rng, (n_out, n_in)) * 2, bias=dyadic(rng, (n_out,))), s))
    dec = {"count": tr.bridge.SpikeCount(window=window), "sliding": tr.bridge.SpikeCount(window=window, mode="sliding"),
           "membrane": tr.bridge.MembraneReadout(window=window, beta=0.75, mean=True),
           "first": tr.bridge.FirstSpike(window=window)}[decoder]
    g.output("y", g.add(dec, s))
    if observe:
        g.output("x_seen", x)
    return g


def by_steps(rt, chunks):
    """The definition: step(inputs), then step({}) until an output or the chunk's limit."""
    out = []
    for x, limit in chunks:
        o, n = rt.step({"x": x}), 1
        while not o and n < limit:
            o, n = rt.step({}), n + 1
        out.append((n, {k: np.array(v) for k, v in o.items()}))
    return out


def by_advance(rt, chunks):
    return [(n, {k: np.array(v) for k, v in o.items()}) for n, o in (rt.advance({"x": x}, limit) for x, limit in chunks)]


def same(a, b):
    assert [n for n, _ in a] == [n for n, _ in b]
    for (_, oa), (_, ob) in zip(a, b):
        assert set(oa) == set(ob)
        for k in oa:
            assert oa[k].dtype == ob[k].dtype and np.array_equal(oa[k], ob[k]), k


def same_state(a, b):
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def chunks_for(rng, n=12, window=4, hold=True):
    return [((rng.random(5) * 2 - 0.5 if hold else rng.random(5) < 0.5).astype(np.float32),
             int(rng.integers(1, 3 * window))) for _ in range(n)]


@settings(derandomize=True, deadline=None, max_examples=20)
@given(seed=st.integers(0, 10_000), encoder=st.sampled_from(["direct", "rate", "latency", "poisson"]),
       decoder=st.sampled_from(DECODERS), window=st.integers(1, 6), hold=st.booleans(), front=st.booleans(),
       observe=st.booleans(), backend=st.sampled_from(["reference", "numba"]))
def test_advance_is_steps(seed, encoder, decoder, window, hold, front, observe, backend):
    rng = np.random.default_rng(seed)
    g = decoder_graph(rng, encoder, decoder, window, hold, front, observe)
    chunks = chunks_for(rng, window=window, hold=hold)
    a, b = tr.Runtime(g, backend), tr.Runtime(g, backend)
    same(by_advance(a, chunks), by_steps(b, chunks))
    assert a.tick == b.tick
    same_state(a.state(), b.state())
    a.reset()
    b.reset()  # and again after a reset, with advance on the stepped one
    same(by_advance(b, chunks[:5]), by_steps(a, chunks[:5]))
    same_state(a.state(), b.state())


@pytest.mark.parametrize("encoder,decoder,hold,front,observe", [
    ("direct", "membrane", True, False, False),   # the bicycle's form: every tick in one generated call
    ("latency", "sliding", True, True, False),    # an op run on new inputs only: the first tick apart
    ("rate", "first", True, False, True),         # an observed input
    ("direct", "count", False, False, False),     # a spike input presented once
])
def test_generated_loop_is_steps(encoder, decoder, hold, front, observe):
    rng = np.random.default_rng(3)
    g = decoder_graph(rng, encoder, decoder, 5, hold, front, observe)
    chunks = chunks_for(rng, 16, window=5, hold=hold)
    comp, per_op = tr.Runtime(g, "numba", compiled=True), tr.Runtime(g, "numba")
    got = by_advance(comp, chunks)
    assert comp._impl.quiet is not None, "the generated loop was not built"
    assert comp._impl.quiet_first == (not front and hold and not observe)  # else the first tick apart
    same(got, by_steps(per_op, chunks))
    same_state(comp.state(), per_op.state())
    ck = per_op.state()  # a checkpoint and a reset keep the bound loop valid
    for rt in (comp, per_op):
        rt.reset()
        rt.load_state(ck)
    same(by_advance(comp, chunks[:6]), by_steps(per_op, chunks[:6]))
    same_state(comp.state(), per_op.state())


def test_advance_checks_like_step():
    g = decoder_graph(np.random.default_rng(1), window=5)  # the generated code of the first case above
    for opts in ({}, {"compiled": True}):
        rt = tr.Runtime(g, "numba", **opts)
        rt.advance({"x": np.zeros(5, np.float32)}, 4)
        rt.advance({"x": np.zeros(5, np.float32)}, 4)
        t = rt.tick
        with pytest.raises(tr.InputError, match="NaN"):
            rt.advance({"x": np.full(5, np.nan, np.float32)}, 8)
        with pytest.raises(tr.InputError):
            rt.advance({"nope": np.zeros(5, np.float32)}, 8)
        assert rt.tick == t  # a refused input runs nothing


def test_scheduler_hands_quiet_ticks_to_advance_and_keeps_its_report():
    """A 100 Hz simulation source into a graph ticking at 500 Hz with a 5-tick readout, as the
    bicycle (16 ticks at 1.6 kHz): the sink gets the values and ticks a hand-written step loop
    gives, latencies are measured on the tick of each output, and every tick counts in the
    step statistics."""
    rng = np.random.default_rng(7)
    g = decoder_graph(rng, "direct", "membrane", 5)
    g.dt = 1 / 500
    obs = rng.random((30, 5)).astype(np.float32)
    want = by_steps(tr.Runtime(g, "numba"), [(x, 5) for x in obs])
    for opts in ({}, {"compiled": True}):
        rt = tr.Runtime(g, "numba", **opts)
        calls = []
        inner = rt.advance
        rt.advance = lambda inputs, m: calls.append(m) or inner(inputs, m)
        k = iter(range(len(obs) + 1))
        src = tr.stream.SimulationSource(lambda t: obs[i] if (i := next(k)) < len(obs) else tr.stream.END,
                                         rate_hz=100.0, name="sim")
        s = tr.stream.Scheduler(rt)
        s.add_source(src, to="x")
        got = []
        s.add_sink("y", lambda v, t: got.append((round(t * 500), np.array(v))), deadline=1.0)
        rep = s.run(until_end=True)
        assert calls and max(calls) == 5  # one call per sample
        ticks = np.cumsum([n for n, _ in want]) - 1
        assert [t for t, _ in got] == list(ticks)
        for (_, v), (_, o) in zip(got, want):
            assert np.array_equal(v, o["y"])
        assert rep["step_s"]["count"] == rep["ticks"] == rt.tick
        lat = rep["outputs"]["y"]["latency_s"]
        assert lat["count"] == len(obs) and abs(lat["max"] - 4 / 500) < 1e-9  # sample at tick 5k, value at 5k+4


def test_scheduler_runs_long_gaps_in_pieces_and_misses_no_sample():
    """Samples seconds apart on a 1 ms tick: the ticks between them go to advance in pieces of
    at most LONGEST, and every sample lands on its own tick."""
    from tianrt.stream.tickloop import LONGEST

    g = tr.Graph(dt=1e-3, name="gaps")
    x = g.input("x", shape=(2,))
    g.output("y", g.add(tr.ann.Dense(2, 1, weight=[[1.0, -1.0]], bias=[0.0]), x))
    times = [0.0, 0.003, 1.5, 2.9, 4.2]
    rt = tr.Runtime(g, "numba")
    calls = []
    inner = rt.advance
    rt.advance = lambda inputs, m: calls.append(m) or inner(inputs, m)
    s = tr.stream.Scheduler(rt)
    s.add_source(tr.stream.ArraySource(np.arange(10.0).reshape(5, 2), times=times, name="x"), to="x")
    trace = s.add_sink("y", tr.stream.ArraySink())
    rep = s.run(seconds=5.0)
    assert trace.ticks.tolist() == [round(t * 1000) for t in times]
    assert np.allclose(trace.values[:, 0], -1.0)
    assert rep["sources"]["x"]["received"] == 5 and rep["ticks"] == 5000 == rt.tick
    assert max(calls) == LONGEST and rep["step_s"]["count"] == 5000
