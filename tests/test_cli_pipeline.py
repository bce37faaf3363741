"""The README's command-line pipeline: convert -> quantize -> compile -> run on numba and on
the emulated chip over a pty; the chip's scores equal the numba integer backend's."""
from pathlib import Path

import numpy as np

import tianrt as tr
from tianrt.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_convert_quantize_compile_and_run_on_the_chip(tmp_path, capsys):
    from sklearn.datasets import load_digits  # the demos extra, installed by dev.py

    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    np.savez(tmp_path / "cal.npz", x=x[:300])
    np.savez(tmp_path / "one.npz", x=x[1500])
    p = lambda name: str(tmp_path / name)  # noqa: E731
    model = str(ROOT / "demos" / "data" / "digits_mlp.tnr")
    assert main(["convert", model, "--calibration", p("cal.npz"), "-T", "16", "-o", p("snn.tnr")]) == 0
    assert main(["quantize", p("snn.tnr"), "--calibration", p("cal.npz"), "-o", p("q.tnr")]) == 0
    assert main(["compile", p("q.tnr"), "-o", p("q.img")]) == 0
    assert "cores" in capsys.readouterr().out and Path(p("q.img")).stat().st_size > 0
    for backend in ("numba", "chip"):
        assert main(["run", p("q.tnr"), "--input", p("one.npz"), "--ticks", "16", "--backend", backend,
                     "--output", p(f"{backend}.npz")]) == 0
    with np.load(p("numba.npz")) as a, np.load(p("chip.npz")) as b:
        assert np.array_equal(a["y"], b["y"]) and a["y__ticks"].tolist() == [15]
        assert int(a["y"][-1].argmax()) == d.target[1500]
    assert tr.load(p("q.tnr")).name.endswith("-int8")
