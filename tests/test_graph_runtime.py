"""Graph building and validation errors; Runtime conventions (step/run/batch/state)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr


def hybrid(window=4, seed=0):
    g = tr.Graph(name="hy")
    x = g.input("x", (1, 6, 6))
    h = g.add(tr.ann.Conv2d(1, 2, 3, padding=1, seed=seed), x)
    h = g.add(tr.ann.ReLU(), h)
    h = g.add(tr.ann.Flatten(), h)
    s = g.add(tr.bridge.RateEncoder(), h)
    s = g.add(tr.snn.Dense(72, 5, seed=seed + 1), s, name="syn")
    s = g.add(tr.snn.LIF(beta=0.9, threshold=0.5), s, name="lif")
    g.output("count", g.add(tr.bridge.SpikeCount(window=window), s))
    g.output("spikes", s)
    return g


# -- validation -------------------------------------------------------------------------------

def test_spike_into_tensor_names_both_nodes_and_the_bridge():
    g = tr.Graph()
    s = g.add(tr.snn.LIF(), g.add(tr.snn.Dense(4, 4), g.input("s", (4,), domain="spike")), name="lif1")
    with pytest.raises(tr.DomainError) as e:
        g.add(tr.ann.Dense(4, 2), s, name="dense2")
    msg = str(e.value)
    assert "`lif1`" in msg and "`dense2`" in msg and "SpikeCount(window=" in msg


def test_tensor_into_spike_suggests_an_encoder():
    g = tr.Graph()
    x = g.input("x", (4,))
    with pytest.raises(tr.DomainError, match=r"`x`.*`syn1`.*RateEncoder"):
        g.add(tr.snn.Dense(4, 2), x, name="syn1")


def test_current_into_spike_only_decoder_suggests_a_neuron():
    g = tr.Graph()
    i = g.add(tr.snn.Dense(4, 2), g.input("s", (4,), domain="spike"), name="syn")
    with pytest.raises(tr.DomainError, match=r"`syn`.*`count`.*LIF"):
        g.add(tr.bridge.SpikeCount(window=2), i, name="count")


def test_shape_error_names_node_and_input():
    g = tr.Graph()
    x = g.input("img", (1, 4, 4))
    with pytest.raises(tr.ShapeError, match=r"`fc` fed by `img` \(1, 4, 4\).*Flatten"):
        g.add(tr.ann.Dense(16, 2), x, name="fc")
    with pytest.raises(tr.ShapeError, match=r"`conv`.*3 input channels"):
        g.add(tr.ann.Conv2d(3, 2, 3), x, name="conv")


def test_arity_duplicates_and_foreign_handles():
    g, h = tr.Graph(), tr.Graph()
    x = g.input("x", (2,))
    with pytest.raises(tr.GraphError, match="two or more"):
        g.add(tr.ann.Add(), x)
    relu = tr.ann.ReLU()
    g.add(relu, x)
    with pytest.raises(tr.GraphError, match="already in graph"):
        g.add(relu, x)
    with pytest.raises(tr.GraphError, match="another graph"):
        h.add(tr.ann.ReLU(), x)
    with pytest.raises(tr.GraphError, match="already has a node named 'x'"):
        g.input("x", (2,))
    with pytest.raises(tr.GraphError, match="not a node"):
        g.add(tr.ann.ReLU(), "nope")


def test_dangling_delay_and_missing_outputs():
    g = tr.Graph()
    x = g.input("x", (2,), domain="spike")
    d = g.delay((2,), "spike")
    g.output("y", g.add(tr.ann.Concat(), x, d))
    with pytest.raises(tr.GraphError, match=r"delay `delay1` is dangling"):
        g.build()
    with pytest.raises(tr.GraphError, match="carries spike"):
        g.connect(d, g.add(tr.snn.Dense(2, 2), x))
    g2 = tr.Graph()
    g2.input("x", (1,))
    with pytest.raises(tr.GraphError, match="no outputs"):
        g2.build()


def test_cycle_without_delay_is_rejected():
    g = hybrid()
    # only reachable by editing entries (as a corrupt file would): make syn read lif
    g.entries["syn"].inputs = ["lif"]
    with pytest.raises(tr.GraphError, match="cycle through.*delay"):
        g.build()


def test_summary_table_lists_every_node():
    text = hybrid().summary(file=open("/dev/null", "w"))
    for word in ("conv1", "ann.Conv2d", "tensor", "spike", "current", "tick", "on event", "1x6x6", "count <- "):
        assert word in text


def test_sequential_helper():
    g = tr.Sequential(tr.ann.Dense(3, 4), tr.ann.ReLU(), tr.ann.Dense(4, 2), input_shape=(3,))
    assert list(g.inputs) == ["x"] and list(g.outputs) == ["y"]
    assert tr.Runtime(g).step({"x": [1, 2, 3]})["y"].shape == (2,)


# -- runtime conventions ------------------------------------------------------------------------

@settings(derandomize=True, deadline=None, max_examples=15)
@given(seed=st.integers(0, 1000), T=st.integers(1, 12), batch=st.sampled_from([None, 1, 3]))
def test_run_equals_stepping(seed, T, batch):
    rng = np.random.default_rng(seed)
    clip = rng.random((T,) + ((batch,) if batch else ()) + (1, 6, 6)).astype(np.float32)
    g = hybrid(window=3, seed=seed)
    outs = tr.Runtime(g).run({"x": clip})
    rt = tr.Runtime(g)
    stepped = {"count": [], "spikes": []}
    for t in range(T):
        for k, v in rt.step({"x": clip[t]}).items():
            stepped[k].append(v)
    for k in stepped:
        assert len(outs[k]) == len(stepped[k])
        if stepped[k]:
            np.testing.assert_array_equal(outs[k], np.stack(stepped[k]))
    assert outs.ticks["spikes"].tolist() == list(range(T))


def test_run_with_ticks_holds_the_value():
    g = hybrid(window=4)
    frame = np.random.default_rng(0).random((1, 6, 6)).astype(np.float32)
    held = tr.Runtime(g).run({"x": frame}, ticks=8)
    every = tr.Runtime(g).run({"x": np.repeat(frame[None], 8, axis=0)})
    np.testing.assert_array_equal(held["count"], every["count"])
    assert held.ticks["count"].tolist() == [3, 7]
    assert held["count"].shape == (2, 5) and held["spikes"].shape == (8, 5)


def test_batch_axis_sizes_state_and_matches_single_runs():
    g = hybrid()
    rng = np.random.default_rng(3)
    frames = rng.random((4, 1, 6, 6)).astype(np.float32)
    batched = tr.Runtime(g).run({"x": frames}, ticks=8)["count"]
    assert batched.shape == (2, 4, 5)
    for b in range(4):
        single = tr.Runtime(g).run({"x": frames[b]}, ticks=8)["count"]
        np.testing.assert_array_equal(batched[:, b], single)


def test_state_checkpoint_restores_a_running_stream():
    g = hybrid(window=5)
    rng = np.random.default_rng(7)
    clip = rng.random((12, 1, 6, 6)).astype(np.float32)
    rt = tr.Runtime(g)
    rt.run({"x": clip[:6]})
    snap = rt.state()
    rest = rt.run({"x": clip[6:]})
    rt2 = tr.Runtime(g)
    rt2.load_state(snap)
    again = rt2.run({"x": clip[6:]})
    np.testing.assert_array_equal(rest["count"], again["count"])
    assert rest.ticks["count"].tolist() == again.ticks["count"].tolist() == [9]
    rt.reset()
    assert rt.tick == 0


def test_poisson_state_is_part_of_the_checkpoint():
    g = tr.Graph()
    g.output("s", g.add(tr.bridge.PoissonEncoder(seed=5), g.input("x", (50,))))
    rt = tr.Runtime(g)
    rt.run({"x": np.full(50, 0.5)}, ticks=3)
    snap = rt.state()
    a = rt.step()["s"]
    rt.load_state(snap)
    assert np.array_equal(rt.step()["s"], a)


def test_input_errors_are_clear():
    rt = tr.Runtime(hybrid())
    with pytest.raises(tr.InputError, match="no input 'cam'.*x"):
        rt.step({"cam": np.zeros((1, 6, 6))})
    with pytest.raises(tr.InputError, match=r"shape \(6, 6\), expected \(1, 6, 6\)"):
        rt.step({"x": np.zeros((6, 6))})
    bad = np.zeros((1, 6, 6))
    bad[0, 2, 3] = np.nan
    with pytest.raises(tr.InputError, match=r"NaN or inf at index \(0, 2, 3\);"):
        rt.step({"x": bad})
    rt.step({"x": np.zeros((2, 1, 6, 6))})
    with pytest.raises(tr.InputError, match="batch size 3 differs"):
        rt.step({"x": np.zeros((3, 1, 6, 6))})
    g = tr.Graph()
    g.output("y", g.add(tr.snn.IF(), g.input("s", (2,), domain="spike")))
    with pytest.raises(tr.InputError, match="must be 0 or 1"):
        tr.Runtime(g).step({"s": [0.5, 1]})
    g2 = tr.Graph()
    a, b = g2.input("a", (1,)), g2.input("b", (1,))
    g2.output("y", g2.add(tr.ann.Add(), a, b))
    with pytest.raises(tr.InputError, match="different numbers of ticks"):
        tr.Runtime(g2).run({"a": np.zeros((3, 1)), "b": np.zeros((4, 1))})
    with pytest.raises(tr.InputError, match="leading time axis"):
        tr.Runtime(g2).run({"a": 1.0, "b": 2.0})


def test_multi_rate_inputs_hold_their_last_value():
    g = tr.Graph()
    a, b = g.input("a", (1,)), g.input("b", (1,))
    g.output("y", g.add(tr.ann.Add(), a, b))
    rt = tr.Runtime(g)
    assert rt.step({"a": [1.0]})["y"].tolist() == [1.0]  # b not yet seen: zeros
    assert rt.step({"b": [10.0]})["y"].tolist() == [11.0]  # a held
    assert rt.step() == {}
    assert rt.step({"a": [2.0]})["y"].tolist() == [12.0]


def test_unknown_backend():
    with pytest.raises(tr.BackendError, match="unknown backend 'gpu'"):
        tr.Runtime(hybrid(), backend="gpu")
