"""The compiler refuses what a board would refuse (issue 13, items 2, 7 and 9): decoder
windows above the chip's, names the link cannot carry, a graph output reading a float graph
input, and it marks partial sums 64-bit ("wide") from the value range of the op that
produces the layer's input, not from an assumed int8."""
import numpy as np
import pytest

import tianrt as tr
from tianrt import q
from tianrt.chip import ChipSpec
from tianrt.chip.image_format import unpack
from tianrt.errors import TianrtError


def membrane_graph(rng, window=4):
    g = tr.Graph(name="wide")
    x = g.input("x", (40,), domain="spike")
    i = g.add(q.SynDense(40, 300, weight=rng.integers(-128, 128, (300, 40)), bias=np.zeros(300, int)), x)
    m = g.add(q.MembraneReadout(window=window), i)
    y = g.add(q.Dense(300, 3, weight=rng.integers(-128, 128, (3, 300)), bias=np.zeros(3, int),
                      multiplier=np.full(3, 1 << 14), shift=np.full(3, 30)), m)
    g.output("y", y)
    return g


def test_partial_sums_of_int32_tensors_are_wide():
    g = membrane_graph(np.random.default_rng(0))
    meta = unpack(tr.chip.compile(g, ChipSpec())[0]).meta
    psums = [b for b in meta["buffers"] if b["kind"] == "psum"]
    assert psums and all(b["wide"] for b in psums)
    partial = [c for c in meta["cores"] if c["role"] == "partial"]
    assert partial and all(c["wide_out"] for c in partial)
    # the emulator and the numba backend still agree bit for bit
    x = (np.random.default_rng(1).random((8, 40)) < 0.5).astype(np.float32)
    a = tr.Runtime(g, backend="numba").run({"x": x})
    b = tr.Runtime(g, backend="chip", port="inproc").run({"x": x})
    assert np.array_equal(a["y"], b["y"])


def test_partial_sums_of_int8_tensors_stay_narrow():
    rng = np.random.default_rng(2)
    g = tr.Graph(name="narrow")
    x = g.input("x", (300,))
    a = g.add(q.Quantize(0.1), x)
    y = g.add(q.Dense(300, 4, weight=rng.integers(-128, 128, (4, 300)), bias=np.zeros(4, int),
                      multiplier=np.full(4, 1 << 14), shift=np.full(4, 20)), a)
    g.output("y", y)
    meta = unpack(tr.chip.compile(g, ChipSpec())[0]).meta
    psums = [b for b in meta["buffers"] if b["kind"] == "psum"]
    assert psums and not any(b["wide"] for b in psums)


def test_spike_count_window_above_the_chip_limit_is_a_compile_error():
    g = tr.Graph(name="win")
    x = g.input("x", (4,), domain="spike")
    i = g.add(q.SynDense(4, 2, weight=np.ones((2, 4), int), bias=np.zeros(2, int)), x)
    s = g.add(q.LIF(threshold=2), i)
    g.output("c", g.add(tr.bridge.SpikeCount(window=70000), s))
    with pytest.raises(tr.chip.CompileError, match="window of 70000 ticks.*65536"):
        tr.chip.compile(g, ChipSpec())


@pytest.mark.parametrize("which", ["output", "input"])
def test_names_over_255_bytes_are_a_compile_error(which):
    long = "é" * 128      # 256 UTF-8 bytes
    g = tr.Graph(name="names")
    x = g.input(long if which == "input" else "x", (4,), domain="spike")
    i = g.add(q.SynDense(4, 2, weight=np.ones((2, 4), int), bias=np.zeros(2, int)), x)
    g.output(long if which == "output" else "y", g.add(q.LIF(threshold=2), i))
    with pytest.raises(tr.chip.CompileError, match=f"chip {which} name .* 256 UTF-8 bytes"):
        tr.chip.compile(g, ChipSpec())


def test_an_output_reading_a_float_input_directly_says_what_fits():
    g = tr.Graph(name="passthrough")
    x = g.input("x", (4,))
    a = g.add(q.Quantize(0.1), x)
    i = g.add(q.Dense(4, 2, weight=np.ones((2, 4), int), bias=np.zeros(2, int),
                      multiplier=np.full(2, 1 << 14), shift=np.full(2, 15)), a)
    g.output("y", i)
    g.output("raw", x)
    with pytest.raises(tr.chip.CompileError) as ex:
        tr.chip.compile(g, ChipSpec())
    msg = str(ex.value)
    assert "graph input `x`" in msg and "float" in msg and "internal order" not in msg
    assert isinstance(ex.value, TianrtError)


def test_named_spec_presets():
    assert ChipSpec.preset("default") == ChipSpec()
    sram = ChipSpec.preset("tianjic-sram")
    assert sram.weight_bytes_per_core == 22 * 1024 and sram.n_cores == 156
    with pytest.raises(tr.chip.SpecError, match="tianjic-sram"):
        ChipSpec.preset("nope")


def _lenet_like(rng, pool_pad=0):
    def conv(c_in, c_out):
        return q.Conv2d(c_in, c_out, 3, padding=1, weight=rng.integers(-128, 128, (c_out, c_in, 3, 3)),
                        bias=rng.integers(-500, 500, c_out), multiplier=rng.integers(1 << 13, 1 << 15, c_out),
                        shift=np.full(c_out, 18), lo=-20)
    g = tr.Graph(name="lenet-small")
    x = g.add(q.Quantize(0.05), g.input("x", (2, 12, 12)))
    x = g.add(q.MaxPool2d(2, padding=pool_pad), g.add(conv(2, 6), x))
    x = g.add(q.MaxPool2d(2), g.add(conv(6, 8), x))
    x = g.add(tr.ann.Flatten(), x)
    n = g.entries[x.name].shape[0]
    g.output("y", g.add(q.Dense(n, 5, weight=rng.integers(-128, 128, (5, n)), bias=np.zeros(5, int),
                                multiplier=np.full(5, 1 << 14), shift=np.full(5, 22)), x))
    return g


@pytest.mark.parametrize("pool_pad", [0, 1])
def test_pooling_folds_into_the_convolution_cores_bit_exactly(pool_pad):
    rng = np.random.default_rng(30 + pool_pad)
    g = _lenet_like(rng, pool_pad)
    spec = ChipSpec(mesh_rows=10, mesh_cols=10, axons_per_core=128, neurons_per_core=64)
    image, report = tr.chip.compile(g, spec)
    meta = unpack(image).meta
    pooling_cores = [c for c in meta["cores"] if c["dendrite"]["kind"] == "maxpool"]
    folded = [s for c in meta["cores"] for s in c["stages"] if s["op"] == "maxpool"]
    if pool_pad == 0:
        assert not pooling_cores and folded          # both pools ride on the conv cores
        assert {r["layer"] for r in report.to_dict()["layers"]} == {"qconv1", "qconv2", "qdense1"}
    else:
        assert pooling_cores                         # padded or odd-sized pools keep their own cores
    x = np.random.default_rng(1).normal(0, 3, (3, 2, 2, 12, 12)).astype(np.float32)
    a = tr.Runtime(g, backend="numba").run({"x": x})
    b = tr.Runtime(g, backend="chip", port="inproc", spec=spec).run({"x": x})
    assert np.array_equal(a["y"], b["y"]) and np.array_equal(a.ticks["y"], b.ticks["y"])


def test_lenet_size_cnn_fits_the_chip_with_folded_pooling():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_mapping import lenet
    g = lenet(np.random.default_rng(0))
    for spec in (ChipSpec(), ChipSpec.preset("tianjic-sram")):
        rep = tr.chip.compile(g, spec)[1].to_dict()
        assert rep["cores_used"] <= spec.n_cores == 156
