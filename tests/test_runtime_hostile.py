"""Hostile calls to the runtime (issue 12, items 7-12): every refused call raises a
TianrtError naming the input, argument or checkpoint field, and changes nothing (tick,
batch size, every state array); plus the semantics fixed on the way (delays present every
tick, spike inputs presented once by default, distinct default weights)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr
from hostile import allocation_cap, within

BACKENDS = ["reference", "numba"]


def fuzz_graph() -> tr.Graph:
    """A tensor and a spike input, an encoder, two synapses, a neuron with recurrence
    through a delay, and a decoder."""
    g = tr.Graph(name="fuzz")
    img = g.input("img", (4,))
    spk = g.input("spk", (6,), domain="spike")
    fb = g.delay((5,), "spike")
    c1 = g.add(tr.snn.Dense(4, 5), g.add(tr.bridge.RateEncoder(), img))
    c2 = g.add(tr.snn.Dense(11, 5), g.add(tr.ann.Concat(), spk, fb))
    x = g.add(tr.snn.LIF(beta=0.9, threshold=0.5), g.add(tr.ann.Add(), c1, c2))
    g.connect(fb, x)
    g.output("s", x)
    g.output("y", g.add(tr.bridge.SpikeCount(window=3), x))
    return g


def lif_graph(n=100) -> tr.Graph:
    g = tr.Graph(name="g")
    x = g.add(tr.snn.LIF(beta=0.9), g.add(tr.snn.Dense(n, 10), g.input("spk", (n,), domain="spike")))
    g.output("y", x)
    return g


def spikes(rng, shape):
    return (rng.random(shape) < 0.5).astype(np.float32)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def refused(rt, call, *args, match: str, **kw):
    """``call`` is refused with a TianrtError naming ``match``, and changes nothing."""
    before, tick = rt.state(), rt.tick
    with pytest.raises(tr.TianrtError) as info:
        getattr(rt, call)(*args, **kw)
    assert match in str(info.value), (match, str(info.value))
    assert rt.tick == tick and same_state(rt.state(), before), f"{call} changed the state: {info.value}"
    return str(info.value)


# -- item 7: a refused call changes nothing ------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_load_state_changes_nothing(backend):
    rng = np.random.default_rng(0)
    rt = tr.Runtime(lif_graph(), backend)
    rt.run({"spk": spikes(rng, (10, 100))})
    good = rt.state()
    assert rt.tick == 10 and np.any(good["lif1/v"] != 0)
    missing = {k: v for k, v in good.items() if k != "lif1/v"}
    refused(rt, "load_state", missing, match="lif1/v")
    refused(rt, "load_state", dict(good, __batch__=np.asarray(0)), match="__batch__")
    with allocation_cap(2 ** 20):  # refused before anything of that size is allocated
        refused(rt, "load_state", dict(good, __batch__=np.asarray(10 ** 9)), match="__batch__")
    refused(rt, "load_state", dict(good, __batched__=np.asarray(True), __batch__=np.asarray(2)),
            match="spk/__value__")
    rt.load_state(good)  # the good one still loads, and runs on
    assert rt.tick == 10 and same_state(rt.state(), good)


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_step_does_not_fix_the_batch(backend):
    g = fuzz_graph()
    rt = tr.Runtime(g, backend)
    with pytest.raises(tr.InputError, match="input `spk`"):
        rt.step({"img": np.zeros((8, 4)), "spk": np.full((8, 6), 0.5)})
    with pytest.raises(tr.InputError, match="disagree on the batch size"):
        rt.step({"img": np.zeros((8, 4)), "spk": np.zeros((3, 6))})
    out = rt.step({"img": np.zeros((2, 4)), "spk": np.zeros((2, 6))})  # any batch still fits
    assert out["s"].shape == (2, 5) and rt.tick == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_does_not_fix_the_batch(backend):
    rt = tr.Runtime(lif_graph(), backend)
    rt.reset()
    st = rt.state()  # the fresh state, described at batch 1
    assert int(st["__batch__"]) == 1 and not np.any(st["lif1/v"])
    out = rt.run({"spk": np.zeros((5, 8, 100), np.float32)})
    assert out["y"].shape == (5, 8, 10)


# -- item 8: values that used to pass or crash ---------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_values_are_refused_naming_what(backend):
    rng = np.random.default_rng(1)
    rt = tr.Runtime(lif_graph(), backend)
    rt.run({"spk": spikes(rng, (4, 100))})
    st = rt.state()
    nan = dict(st, **{"lif1/v": np.where(np.arange(10) == 3, np.nan, st["lif1/v"]).astype(np.float32)})
    assert "index (0, 3)" in refused(rt, "load_state", nan, match="`lif1/v` holds NaN")
    refused(rt, "load_state", dict(st, __tick__=np.asarray(-1)), match="`__tick__` is -1")
    refused(rt, "load_state", dict(st, __tick__=np.asarray(2.5)), match="__tick__")
    refused(rt, "load_state", [1, 2], match="load_state: takes a dict")
    for ticks in (float("nan"), 2.7, 0, -3, True, "3"):
        refused(rt, "run", {"spk": np.zeros(100)}, ticks=ticks, match="ticks")
    refused(rt, "step", np.zeros(100), match="inputs must be a dict")
    refused(rt, "run", np.zeros((3, 100)), match="inputs must be a dict")
    refused(rt, "step", {"spk": np.zeros(100, complex)}, match="`spk` holds complex")
    refused(rt, "step", {"spk": np.array(["a"] * 100)}, match="input `spk`")
    assert rt.run({"spk": np.zeros(100)}, ticks=np.int64(2))["y"].shape == (2, 10)


def test_per_neuron_parameters_of_the_wrong_shape_say_what_fits():
    g = tr.Graph()
    syn = g.add(tr.snn.Dense(10, 10), g.input("x", (10,), domain="spike"))
    with pytest.raises(tr.ShapeError, match=r"beta has shape \(7,\).*array of shape \(10,\)"):
        g.add(tr.snn.LIF(beta=np.full(7, 0.9)), syn)
    g.output("y", g.add(tr.snn.LIF(beta=np.full(10, 0.9)), syn))


# -- item 9 and (a), (b): positions and shapes in the caller's terms -----------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_positions_and_shapes_are_the_callers(backend):
    rt = tr.Runtime(lif_graph(), backend)
    a = np.zeros(100, np.float32)
    a[3] = np.nan
    refused(rt, "step", {"spk": a}, match="NaN or inf at index (3,);")
    b = np.zeros((2, 100), np.float32)
    b[1, 7] = np.inf
    refused(rt, "step", {"spk": b}, match="at sample 1, index (7,)")
    c = np.zeros((5, 100), np.float32)
    c[4, 9] = 2
    refused(rt, "run", {"spk": c}, match="got 2 at tick 4, index (9,)")
    c[0, 2] = np.nan  # on numba's fast path too, the first tick is reported as a tick
    refused(rt, "run", {"spk": c}, match="NaN or inf at tick 0, index (2,)")
    msg = refused(rt, "run", {"spk": np.zeros(100)}, match="without ticks=N axis 0 is time")
    assert "100 tick(s) of shape ()" in msg and "(100,)" in msg and "pass ticks=N" in msg
    refused(rt, "run", {"spk": np.zeros((3, 0, 100))}, match="a batch of 0 samples")
    refused(rt, "step", {"spk": np.zeros((0, 100))}, match="a batch of 0 samples")
    refused(rt, "run", {"spk": np.zeros((0, 100))}, match="0 ticks")
    assert rt.tick == 0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), data=st.data())
def test_a_bad_value_is_reported_where_the_caller_put_it(lead, data):
    """Any NaN or non-binary spike, in a value, a batch or a clip (with or without a batch
    axis), is reported at its own position in the caller's array."""
    shape = tuple(lead) + (2, 3)
    pos = tuple(data.draw(st.integers(0, n - 1)) for n in shape)
    bad = data.draw(st.sampled_from([np.nan, np.inf, 0.5, 2.0]))
    a = np.zeros(shape, np.float32)
    a[pos] = bad
    g = tr.Graph()
    g.output("y", g.input("s", (2, 3), domain="spike"))
    rt = tr.Runtime(g)
    clip = len(lead) == 2 or (len(lead) == 1 and data.draw(st.booleans()))
    words = (["tick", "sample"] if len(lead) == 2 else ["tick"]) if clip else ["sample"][:len(lead)]
    with pytest.raises(tr.InputError) as info:
        rt.run({"s": a}) if clip else rt.step({"s": a})
    where = ", ".join(f"{w} {i}" for w, i in zip(words, pos)) + ", index " if words else "index "
    assert f"at {where}{pos[len(words):]}" in str(info.value)
    assert rt.tick == 0


# -- item 10: distinct default weights -----------------------------------------------------------

def test_draws_defaults_differ_per_node_and_are_reproducible():
    def build(name="g", seed=None):
        g = tr.Graph(name=name, seed=seed)
        x = g.input("x", (4, 8, 8))
        a = g.add(tr.ann.Conv2d(4, 4, 3), x)
        b = g.add(tr.ann.Conv2d(4, 4, 3), a)
        s = g.add(tr.bridge.RateEncoder(), g.add(tr.ann.Flatten(), b))
        d1 = g.add(tr.snn.Dense(64, 64), s)
        d2 = g.add(tr.snn.Dense(64, 64), g.add(tr.snn.LIF(), d1))
        g.output("y", d2)
        return g
    g = build()
    assert not np.array_equal(g["conv1"].weight, g["conv2"].weight)
    assert not np.array_equal(g["syn1"].weight, g["syn2"].weight)
    assert np.array_equal(build()["syn2"].weight, g["syn2"].weight)  # same graph, same weights
    assert not np.array_equal(build(seed=5)["syn2"].weight, g["syn2"].weight)
    assert not np.array_equal(build(name="h")["syn2"].weight, g["syn2"].weight)
    # an explicit seed or explicit weights are kept as given
    g2 = tr.Graph()
    d = g2.add(tr.snn.Dense(4, 4, seed=3), g2.input("x", (4,), domain="spike"))
    assert np.array_equal(g2[d.name].weight, tr.snn.Dense(4, 4, seed=3).weight)
    w = np.eye(4, dtype=np.float32)
    e = g2.add(tr.snn.Dense(4, 4, weight=w), g2.input("z", (4,), domain="spike"))
    assert np.array_equal(g2[e.name].weight, w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_poisson_encoders_without_a_seed_differ(backend):
    g = tr.Graph()
    x = g.input("x", (20,))
    g.output("a", g.add(tr.bridge.PoissonEncoder(), x))
    g.output("b", g.add(tr.bridge.PoissonEncoder(), x))
    g.output("c", g.add(tr.bridge.PoissonEncoder(seed=7), x))
    out = tr.Runtime(g, backend).run({"x": np.full(20, 0.5)}, ticks=8)
    assert not np.array_equal(out["a"], out["b"])
    assert g["poisson3"].seed == 7 and tr.bridge.PoissonEncoder().seed == 0


def test_model_files_keep_the_drawn_weights(tmp_path):
    g = fuzz_graph()
    tr.save(g, tmp_path / "m.tnr")
    h = tr.load(tmp_path / "m.tnr")
    for name in ("syn1", "syn2"):
        assert np.array_equal(h[name].weight, g[name].weight) and h[name].seed == g[name].seed


# -- item 11: delays present every tick ----------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_spike_outputs_through_delays_are_present_every_tick(backend):
    g = tr.Graph()
    x = g.input("x", (2,), domain="spike")
    d1, d2 = g.delay((2,)), g.delay((2,))
    g.connect(d1, x)
    g.connect(d2, d1)
    g.output("x", x)
    g.output("a", d1)
    g.output("b", d2)
    out = tr.Runtime(g, backend).run({"x": np.ones((5, 2), np.float32)})
    for k in ("x", "a", "b"):
        assert out.ticks[k].tolist() == [0, 1, 2, 3, 4]
    assert out["a"][:, 0].tolist() == [0, 1, 1, 1, 1] and out["b"][:, 0].tolist() == [0, 0, 1, 1, 1]


def test_delay_outputs_on_the_chip_are_present_every_tick():
    from chip_graphs import SMALL
    from tianrt import q
    from tianrt.chip.spec import ChipSpec
    g = tr.Graph(name="d")
    x = g.input("x", (4,), domain="spike", hold=True)
    s = g.add(q.LIF(threshold=150), g.add(q.SynDense(4, 3, weight=np.full((3, 4), 100)), x))
    d = g.delay((3,), "spike")
    g.connect(d, s)
    g.output("d", d)
    want = tr.Runtime(g).run({"x": np.ones(4)}, ticks=4)
    assert want.ticks["d"].tolist() == [0, 1, 2, 3] and want["d"][:, 0].tolist() == [0, 1, 1, 1]
    with tr.Runtime(g, "chip", port="inproc", spec=ChipSpec(**SMALL)) as rt:
        got = rt.run({"x": np.ones(4)}, ticks=4)
    assert np.array_equal(got.ticks["d"], want.ticks["d"]) and np.array_equal(got["d"], want["d"])


# -- item 12: spike inputs presented once by default, or held ------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_spike_inputs_are_presented_once_unless_held(backend):
    for hold, want in ((None, [[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]]),
                       (False, [[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]]),
                       (True, [[1, 0, 1]] * 4)):
        g = tr.Graph()
        g.output("s", g.input("s", (3,), domain="spike", hold=hold))
        rt = tr.Runtime(g, backend)
        got = [rt.step({"s": [1, 0, 1]})["s"]] + [rt.step()["s"] for _ in range(3)]
        assert np.array(got).tolist() == want
        rt.reset()
        assert rt.run({"s": [1, 0, 1]}, ticks=4)["s"].tolist() == want


def test_hold_is_checked_summarised_and_saved(tmp_path):
    g = tr.Graph()
    with pytest.raises(tr.GraphError, match="input 'x': hold=False is for spike and current"):
        g.input("x", (3,), hold=False)
    with pytest.raises(tr.GraphError, match="input 's': input hold must be True"):
        g.input("s", (3,), domain="spike", hold="yes")
    a = g.input("a", (3,), domain="spike")
    b = g.input("b", (3,), domain="spike", hold=True)
    c = g.input("c", (3,), domain="current", hold=False)
    g.output("y", g.add(tr.ann.Concat(), a, b))
    g.output("c", c)
    assert "every tick, once" in g.summary(file=open("/dev/null", "w"))
    tr.save(g, tmp_path / "m.tnr")
    h = tr.load(tmp_path / "m.tnr")
    assert [h[k].hold for k in "abc"] == [False, True, False]


# -- the seeded fuzz test of runtime calls -------------------------------------------------------

def pick(rng, options):
    return options[int(rng.integers(0, len(options)))]


def hostile_calls(rng, rt, g):
    """One random call that must be refused: (method, args, kwargs, the name the error gives)."""
    specs = {"img": (4,), "spk": (6,)}
    batch = rt.state()["__batch__"]
    started = rt.tick > 0
    b = int(batch) if started else int(rng.integers(1, 4))
    name = str(rng.choice(["img", "spk"]))
    good = {"img": rng.random((b, 4)).astype(np.float32), "spk": spikes(rng, (b, 6))}
    kind = int(rng.integers(0, 16))
    if kind == 0:
        return "step", ({"imgg": good["img"]},), {}, "imgg"
    if kind == 1:
        bad = dict(good)
        bad[name] = rng.random((b,) + tuple(d + 1 for d in specs[name]))
        return "step", (bad,), {}, f"`{name}`"
    if kind == 2:
        bad = dict(good)
        a = bad[name].copy()
        a[tuple(int(rng.integers(0, n)) for n in a.shape)] = rng.choice([np.nan, np.inf, -np.inf])
        bad[name] = a
        return "step", (bad,), {}, f"`{name}`"
    if kind == 3:
        bad = dict(good, spk=np.full((b, 6), 0.5, np.float32))
        return "step", (bad,), {}, "`spk`"
    if kind == 4:
        return "step", (dict(good, **{name: good[name].astype(np.complex64)}),), {}, f"`{name}`"
    if kind == 5:
        return "step", (good[name] if rng.random() < 0.8 else pick(rng, [3, "img", [good]]),), {}, "dict"
    if kind == 6:
        bb = b + int(rng.integers(1, 3)) if started else 0
        return "step", ({name: np.zeros((bb,) + specs[name], np.float32)},), {}, f"`{name}`"
    if kind == 7:
        ticks = pick(rng, [0, -1, 2.5, float("nan"), float("inf"), "2", True, np.float32(3)])
        return "run", (good,), {"ticks": ticks}, "ticks"
    if kind == 8:
        T = int(rng.integers(2, 6))
        clip = {"img": rng.random((T, b, 4)).astype(np.float32), "spk": spikes(rng, (T, b, 6))}
        clip[name][int(rng.integers(1, T)), 0, 0] = np.nan
        return "run", (clip,), {}, f"`{name}`"
    if kind == 9:
        T = int(rng.integers(2, 6))
        return "run", ({"img": rng.random((T, b, 4)), "spk": spikes(rng, (T + 1, b, 6))},), {}, "ticks"
    if kind == 10:
        return "run", ({name: good[name][0]},), {}, f"`{name}`"
    st = rt.state()
    key = str(rng.choice(sorted(k for k in st if not k.startswith("__"))))
    if kind == 11:
        del st[key]
        return "load_state", (st,), {}, key
    if kind == 12:
        st[key] = np.zeros(np.shape(st[key]) + (2,), st[key].dtype)
        return "load_state", (st,), {}, key
    if kind == 13:
        field, values = pick(rng, [("__tick__", [-1, -5, 1.5, "3"]), ("__batch__", [-1, 0, 7, 1.5, 10 ** 9]),
                                   ("__batched__", [-1, 7, 1.5, 2])])
        st[field] = np.asarray(pick(rng, values))
        return "load_state", (st,), {}, field
    if kind == 14:
        floats = sorted(k for k in st if not k.startswith("__") and st[k].dtype.kind == "f" and st[k].size)
        key = str(rng.choice(floats))
        a = st[key].copy()
        a.flat[int(rng.integers(0, a.size))] = np.nan
        st[key] = a
        return "load_state", (st,), {}, key
    st["extra/field"] = np.zeros(3)
    return "load_state", (st,), {}, "extra/field"


@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzz_runtime_calls(backend):
    """Seeded and bounded: 200 hostile calls, each refused with a TianrtError naming the
    input, argument or field, none changing tick, batch or any state array."""
    rng = np.random.default_rng(12)
    g = fuzz_graph()
    rt = tr.Runtime(g, backend)
    rt.step({"img": np.zeros(4), "spk": np.zeros(6)})  # compile the kernels outside the cap
    with within(60), allocation_cap(16 * 2 ** 20):  # a checkpoint claiming 10**9 samples included
        for i in range(200):
            if rng.random() < 0.15:  # move to a new valid state now and then
                rt.reset()
                if rng.random() < 0.7:
                    b = int(rng.integers(1, 4))
                    rt.run({"img": rng.random((3, b, 4)), "spk": spikes(rng, (3, b, 6))})
            call, args, kw, name = hostile_calls(rng, rt, g)
            refused(rt, call, *args, match=name, **kw)
            if rt.tick == 0:  # a refusal left the fresh runtime free to take any batch size
                b = int(rng.integers(2, 4))
                assert rt.step({"img": np.zeros((b, 4)), "spk": np.zeros((b, 6))})["s"].shape == (b, 5)


def test_spike_inputs_once_or_held_agree_on_every_backend():
    """The chip backend presents a once-input's zeros from the host: the same spikes as the
    reference and numba, by step, by run(ticks=N) and by a clip."""
    from chip_graphs import SMALL, spike_input
    from tianrt.chip.spec import ChipSpec
    rng = np.random.default_rng(3)
    for hold in (False, True):
        g, shapes = spike_input(rng)
        g.entries["x"].node.hold = hold
        x = spikes(rng, shapes["x"])
        got = {}
        for backend, kw in (("reference", {}), ("numba", {}),
                            ("chip", dict(port="inproc", spec=ChipSpec(**SMALL)))):
            with tr.Runtime(g, backend, **kw) as rt:
                a = [rt.step({"x": x})["s"]] + [rt.step()["s"] for _ in range(3)]
                rt.reset()
                b = rt.run({"x": x}, ticks=4)["s"]
                rt.reset()
                c = rt.run({"x": np.stack([x, x])})["s"]
                d = [rt.step()["s"] for _ in range(2)]
                got[backend] = np.concatenate([np.array(a), b, c, np.array(d)])
        assert np.array_equal(got["reference"], got["numba"]) and np.array_equal(got["reference"], got["chip"])
        assert np.array_equal(got["reference"][:4], got["reference"][4:8])
