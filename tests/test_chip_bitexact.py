"""The chip (compiled image on the firmware_sim engine, in process) equals the numba
backend's integer mode and the integer reference backend bit for bit on random hybrid
integer graphs, including fan-in/fan-out splits, convolutions, pooling, converter cores
and recurrence. (tests/test_chip_e2e.py does the same through a pty.)"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tianrt as tr
from tianrt.chip import ChipSpec

from chip_graphs import SMALL, TEMPLATES, inputs

SPEC = ChipSpec(**SMALL)


def same(a, b):
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a.ticks[k], b.ticks[k]), k
        assert a[k].dtype == b[k].dtype, (k, a[k].dtype, b[k].dtype)
        assert np.array_equal(a[k], b[k]), (k, np.argwhere(a[k] != b[k])[:5])


@settings(derandomize=True, deadline=None, max_examples=40)
@given(template=st.sampled_from(sorted(TEMPLATES)), seed=st.integers(0, 2 ** 31 - 1),
       batch=st.sampled_from([None, 2]), held=st.booleans())
def test_chip_equals_integer_reference(template, seed, batch, held):
    rng = np.random.default_rng(seed)
    g, shapes = TEMPLATES[template](rng)
    ticks = int(rng.integers(3, 9))
    ref = tr.Runtime(g, backend="reference")
    nb = tr.Runtime(g, backend="numba")
    chip = tr.Runtime(g, backend="chip", port="inproc", spec=SPEC)
    xs = inputs(rng, shapes, g, batch, None if held else ticks)
    if held:
        c = chip.run(xs, ticks=ticks)
        same(nb.run(xs, ticks=ticks), c)
        same(ref.run(xs, ticks=ticks), c)
    else:
        c = chip.run(xs)
        same(nb.run(xs), c)
        same(ref.run(xs), c)
    # streaming: a new value at one tick only, then more ticks
    ref.reset(), chip.reset()
    x1 = inputs(rng, shapes, g, batch)
    for t in range(4):
        a, b = ref.step(x1 if t in (0, 2) else {}), chip.step(x1 if t in (0, 2) else {})
        assert sorted(a) == sorted(b)
        for k in a:
            assert np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype, k


def test_quantized_converted_model_runs_bit_exact():
    """A shipped float model, converted to an SNN and quantized by tr.quantize, compiles
    and runs on the chip exactly as on the numba backend's integer mode."""
    from pathlib import Path
    g = tr.load(Path(__file__).resolve().parents[1] / "demos" / "data" / "digits_mlp.tnr")
    (inp, spec_in), = g.inputs.items()
    x = np.random.default_rng(0).random((40,) + spec_in.shape).astype(np.float32)
    qg = tr.quantize(tr.convert(g, calibration={inp: x}, T=6), calibration={inp: x})
    a = tr.Runtime(qg, backend="numba").run({inp: x[:8]}, ticks=6)
    chip = tr.Runtime(qg, backend="chip", port="inproc")
    b = chip.run({inp: x[:8]}, ticks=6)
    same(a, b)
    assert chip.counters()["syn_events"] > 0


def test_counters_only_on_the_chip_and_no_state_readback():
    g, shapes = TEMPLATES["spike_input"](np.random.default_rng(1))
    with pytest.raises(tr.BackendError, match="no hardware counters"):
        tr.Runtime(g, backend="reference").counters()
    chip = tr.Runtime(g, backend="chip", port="inproc", spec=SPEC)
    chip.run({"x": np.ones(shapes["x"], np.float32)}, ticks=3)
    c = chip.counters()
    assert c["ticks"] == 3 and c["syn_events"] > 0 and c["spikes"] >= 0
    with pytest.raises(tr.BackendError, match="cannot be read back"):
        chip.state()
