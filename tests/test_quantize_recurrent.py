"""tr.quantize on recurrent spiking graphs (snn.Recurrent fed back through a spike delay):
the integer graph tracks the float one and runs bit for bit on the reference, numba and
the chip."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr

T = 48


def recurrent_graph(rng, neuron, n_in=12, n=20, current_input=False):
    g = tr.Graph(name="rec")
    x = g.input("x", (n_in,))
    s = g.add(tr.bridge.DirectCurrent() if current_input else tr.bridge.RateEncoder(), x)
    fb = g.delay((n,), "spike")
    i = g.add(tr.snn.Recurrent(n_in, n, weight=rng.uniform(-0.2, 0.6, (n, n_in)),
                               weight_rec=rng.normal(0, 0.25, (n, n)), bias=rng.uniform(-0.05, 0.05, n)),
              s, fb, name="rsyn")
    h = g.add(neuron, i, name="neurons")
    g.connect(fb, h)
    g.output("count", g.add(tr.bridge.SpikeCount(window=T), h))
    g.output("spikes", h)
    return g


@pytest.mark.parametrize("neuron", [tr.snn.LIF(beta=0.9, threshold=1.0),
                                    tr.snn.ALIF(beta=0.9, threshold=1.0, adapt=0.2, rho=0.9, reset="zero")],
                         ids=["lif", "alif"])
def test_quantized_recurrent_snn_tracks_float_and_is_bit_exact(neuron):
    rng = np.random.default_rng(4)
    g = recurrent_graph(rng, neuron.copy())
    cal = rng.random((32, 12)).astype(np.float32)
    q = tr.quantize(g, calibration={"x": cal}, ticks=T)
    ops = [e.node.op for e in q.entries.values()]
    assert "q.SynRecurrent" in ops and "graph.Delay" in ops
    xs = rng.random((6, 12)).astype(np.float32)
    f = tr.Runtime(g).run({"x": xs}, ticks=T)["count"][-1]
    i = tr.Runtime(q).run({"x": xs}, ticks=T)["count"][-1]
    assert f.sum() > 100  # the recurrent layer is active
    assert np.abs(f - i).mean() <= 1.0 and abs(f.sum() - i.sum()) <= 0.05 * f.sum()
    ref = tr.Runtime(q).run({"x": xs}, ticks=T)
    nb = tr.Runtime(q, "numba").run({"x": xs}, ticks=T)
    with tr.Runtime(q, "chip", port="inproc") as chip:
        ch = chip.run({"x": xs}, ticks=T)
    for k in ref:
        assert np.array_equal(ref[k], nb[k]) and np.array_equal(ref[k], ch[k]), k


@pytest.mark.parametrize("neuron", [tr.snn.LIF(beta=0.9, threshold=1.0),
                                    tr.snn.ALIF(beta=0.9, threshold=1.0, adapt=0.2, rho=0.9, reset="zero")],
                         ids=["lif", "alif"])
def test_a_current_fed_recurrent_layer_rescales_its_feed_forward_product(neuron):
    """int8 current x int8 weights beside 0/1 spikes x int8 weights: the feed-forward weights
    keep their own scale per row (127 levels) and their product is rescaled to the membrane's
    unit; the integer graph tracks the float one and is bit-exact on the reference, numba and
    the chip, on one core per tile and with the fan-in split (partial sums and a merge)."""
    from tianrt.chip import ChipSpec, compile as chip_compile
    from tianrt.chip.image_format import unpack

    small = ChipSpec(mesh_rows=8, mesh_cols=8, axons_per_core=24, neurons_per_core=16, weight_bytes_per_core=384)
    for n_in, where in ((12, "partial"), (40, "merge")):  # on small cores: the feed-forward sum rescaled in
        rng = np.random.default_rng(4)                    # the partial core holding it, or in the merges
        g = recurrent_graph(rng, neuron.copy(), n_in=n_in, current_input=True)
        q = tr.quantize(g, calibration={"x": rng.random((32, n_in)).astype(np.float32)}, ticks=T)
        n = q["rsyn"]
        assert n.rescaled and np.abs(n.weight.astype(int)).max(axis=1).min() == 127  # every row: 127 levels
        xs = rng.random((6, n_in)).astype(np.float32)
        f = tr.Runtime(g).run({"x": xs}, ticks=T)["count"][-1]
        ref = tr.Runtime(q).run({"x": xs}, ticks=T)
        i = ref["count"][-1]
        assert f.sum() > 100 and np.abs(f - i).mean() <= 1.0 and abs(f.sum() - i.sum()) <= 0.02 * f.sum()
        nb = tr.Runtime(q, "numba").run({"x": xs}, ticks=T)
        for spec in (None, small):
            with tr.Runtime(q, "chip", port="inproc", spec=spec) as chip:
                ch = chip.run({"x": xs}, ticks=T)
            for k in ref:
                assert np.array_equal(ref[k], nb[k]) and np.array_equal(ref[k], ch[k]), (k, spec)
        cores = [c for c in unpack(chip_compile(q, small)[0]).meta["cores"] if c["layer"] == "rsyn"]
        assert {c["role"] for c in cores if "rescale" in c["dendrite"]} == {where}
        assert any("rescale" in c["dendrite"] for c in unpack(chip_compile(q)[0]).meta["cores"])  # one core


def test_spike_fed_weights_far_smaller_than_the_recurrent_ones_are_rescaled_too():
    """Spikes in, but feed-forward weights 100x smaller than the recurrent ones: in a shared
    unit they would keep one level; they get their own scale instead."""
    rng = np.random.default_rng(5)
    g = recurrent_graph(rng, tr.snn.LIF(beta=0.9, threshold=1.0))
    g["rsyn"].weight = g["rsyn"].weight * 0.01
    q = tr.quantize(g, calibration={"x": rng.random((8, 12)).astype(np.float32)}, ticks=T)
    assert q["rsyn"].rescaled and np.abs(q["rsyn"].weight.astype(int)).max() == 127
    spike_fed = tr.quantize(recurrent_graph(np.random.default_rng(5), tr.snn.LIF(beta=0.9, threshold=1.0)),
                            calibration={"x": rng.random((8, 12)).astype(np.float32)}, ticks=T)
    assert not spike_fed["rsyn"].rescaled  # similar sizes: one accumulator, as before


def test_a_feed_forward_product_beyond_a_multipliers_reach_is_refused_naming_the_node():
    rng = np.random.default_rng(4)
    g = recurrent_graph(rng, tr.snn.LIF(beta=0.9), current_input=True)
    cal = {"x": rng.random((8, 12)).astype(np.float32)}
    g["rsyn"].weight_rec = g["rsyn"].weight_rec * 1e-9
    with pytest.raises(tr.GraphError, match=r"`rsyn`.*feed-forward weights.*times its recurrent ones.*within \d+x"):
        tr.quantize(g, calibration=cal, ticks=T)
    g["rsyn"].weight_rec = g["rsyn"].weight_rec * 1e3  # within reach, but a threshold beyond int32's room
    with pytest.raises(tr.GraphError, match=r"`rsyn`.*recurrent weights.*so small.*threshold"):
        tr.quantize(g, calibration=cal, ticks=T)


@settings(derandomize=True, deadline=None, max_examples=200)
@given(acc=st.integers(-(2 ** 40), 2 ** 40) | st.sampled_from([-(2 ** 31) - 1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31]),
       m=st.integers(0, 2 ** 15 - 1), n=st.integers(0, 62))
def test_rescale_is_one_formula_in_numpy_numba_and_the_oracle(acc, m, n):
    """rescale(acc, m, n) = round_shift(sat32(acc) * m, n): qmath (reference backend),
    tianrt.kernels (numba and the chip) and the pure-Python oracle agree."""
    import int_oracle as O
    from tianrt import qmath
    from tianrt.kernels import intmath

    want = O.round_shift(O.sat32(acc) * m, n)
    assert int(qmath.rescale(np.int64(acc), m, n)) == want
    assert int(intmath.rescale(np.int64(acc), m, n)) == want
    out = np.zeros(1, np.int64)
    intmath.acc_add_rescaled(np.array([acc], np.int64), np.array([m], np.int32), np.array([n], np.int32), out)
    assert int(out[0]) == want


def test_only_spike_delays_are_quantized():
    g = tr.Graph()
    x = g.input("x", (3,))
    d = g.delay((3,), "current")
    c = g.add(tr.ann.Add(), g.add(tr.bridge.DirectCurrent(), x), d)
    g.connect(d, c)
    g.output("y", g.add(tr.bridge.MembraneReadout(window=2), c))
    with pytest.raises(tr.GraphError, match="delays of spikes"):
        tr.quantize(g, calibration={"x": np.ones((2, 3), np.float32)})


def test_a_current_graph_input_is_quantized_as_an_int8_current():
    """A current input (e.g. a population code) goes through q.Quantize on the host and stays
    a current; the integer graph tracks the float one and runs bit for bit on the chip."""
    rng = np.random.default_rng(6)
    g = tr.Graph(name="cur_in")
    x = g.input("code", (16,), domain="current")
    s = g.add(tr.snn.LIF(beta=0.9, threshold=1.0), g.add(tr.snn.Dense(16, 10, weight=rng.uniform(-0.3, 0.5, (10, 16))), x))
    g.output("count", g.add(tr.bridge.SpikeCount(window=T), s))
    cal = rng.random((32, 16)).astype(np.float32)
    q = tr.quantize(g, calibration={"code": cal}, ticks=T)
    assert q.entries["code_quant"].domain == "current" and q.entries["code_quant"].numeric == "int"
    xs = rng.random((5, 16)).astype(np.float32)
    f = tr.Runtime(g).run({"code": xs}, ticks=T)["count"][-1]
    i = tr.Runtime(q, "numba").run({"code": xs}, ticks=T)["count"][-1]
    assert f.sum() > 50 and np.abs(f - i).max() <= 2
    with tr.Runtime(q, "chip", port="inproc") as chip:
        assert np.array_equal(chip.run({"code": xs}, ticks=T)["count"][-1], i)


def feature_graph(rng):
    """A sensor vector whose features differ 100-fold in range (an angle beside a speed)."""
    g = tr.Graph(name="features")
    x = g.input("obs", (4,))
    s = g.add(tr.snn.Dense(4, 12, weight=rng.normal(0, 1, (12, 4)) * [4.0, 3.0, 2.0, 0.05]),
              g.add(tr.bridge.DirectCurrent(), x))
    g.output("count", g.add(tr.bridge.SpikeCount(window=T), g.add(tr.snn.LIF(beta=0.95), s)))
    return g, (rng.normal(0, 1, (400, 4)) * [0.03, 0.05, 0.1, 6.0]).astype(np.float32)


def test_features_of_very_different_ranges_get_one_input_scale_each(monkeypatch):
    import tianrt.quantization as Q
    rng = np.random.default_rng(8)
    g, obs = feature_graph(rng)
    x = obs[::20]
    f = tr.Runtime(g).run({"obs": x}, ticks=T)["count"][-1]
    q = tr.quantize(g, calibration={"obs": obs})
    assert q["obs_quant"].scale.shape == (4,)
    err = np.abs(tr.Runtime(q).run({"obs": x}, ticks=T)["count"][-1] - f).mean()
    with tr.Runtime(q, "chip", port="inproc") as chip:  # the host quantises per feature too
        assert np.array_equal(chip.run({"obs": x}, ticks=T)["count"], tr.Runtime(q, "numba").run(
            {"obs": x}, ticks=T)["count"])
    monkeypatch.setattr(Q, "FEATURE_SCALE_SPREAD", float("inf"))  # one scale for the vector
    q1 = tr.quantize(g, calibration={"obs": obs})
    assert np.ndim(q1["obs_quant"].scale) == 0
    err1 = np.abs(tr.Runtime(q1).run({"obs": x}, ticks=T)["count"][-1] - f).mean()
    assert err < 0.5 * err1, (err, err1)


def test_images_of_format_1_2_still_load_and_a_bad_rescale_record_is_refused():
    """Image format 1.3 adds the optional ``rescale`` of mac/merge dendrites: a 1.2 image (no
    rescale anywhere) still loads; a rescale record that does not fit its core is refused
    with a message naming the field."""
    import hashlib

    from tianrt.chip import compile as chip_compile, image_format as F
    from tianrt.firmware_sim.checks import EngineError
    from tianrt.firmware_sim.engine import Engine

    rng = np.random.default_rng(4)
    cal = {"x": rng.random((8, 12)).astype(np.float32)}
    old = bytearray(chip_compile(tr.quantize(recurrent_graph(rng, tr.snn.LIF(beta=0.9)), cal, ticks=T))[0])
    old[10:12] = (2).to_bytes(2, "little")  # a 1.2 image
    old[F.CHECKSUM_OFFSET:F.CHECKSUM_OFFSET + 32] = b"\0" * 32
    old[F.CHECKSUM_OFFSET:F.CHECKSUM_OFFSET + 32] = hashlib.sha256(old).digest()
    assert F.unpack(bytes(old)).version == (1, 2)
    assert Engine().load_image(bytes(old))["cores_used"] >= 1
    img = F.unpack(chip_compile(tr.quantize(recurrent_graph(rng, tr.snn.LIF(beta=0.9), current_input=True),
                                            cal, ticks=T))[0])
    core = next(c for c in img.meta["cores"] if "rescale" in c["dendrite"])
    for bad, msg in (({"axons": core["n_axons"] + 1}, "rescale axons"), ({"mult": core["dendrite"]["weight"]},
                                                                         "rescale mult")):
        rescale = core["dendrite"]["rescale"]
        saved = dict(rescale)
        rescale.update(bad)
        with pytest.raises(EngineError, match=msg):
            Engine().load_image(F.pack(img.meta, [np.array(a) for a in img.arrays]))
        rescale.clear(), rescale.update(saved)


def test_a_rescaled_recurrent_synapse_survives_a_model_file(tmp_path):
    rng = np.random.default_rng(4)
    g = recurrent_graph(rng, tr.snn.LIF(beta=0.9), current_input=True)
    q = tr.quantize(g, calibration={"x": rng.random((8, 12)).astype(np.float32)}, ticks=T)
    tr.save(q, tmp_path / "q.tnr")
    r = tr.load(tmp_path / "q.tnr")
    assert np.array_equal(r["rsyn"].ff_mult, q["rsyn"].ff_mult) and np.array_equal(r["rsyn"].ff_shift, q["rsyn"].ff_shift)
    xs = rng.random((3, 12)).astype(np.float32)
    assert np.array_equal(tr.Runtime(r).run({"x": xs}, ticks=T)["count"], tr.Runtime(q).run({"x": xs}, ticks=T)["count"])
    with pytest.raises(tr.GraphError, match="ff_mult and ff_shift go together"):
        tr.q.SynRecurrent(2, 2, ff_mult=[1, 1])
