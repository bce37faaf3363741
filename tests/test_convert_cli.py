"""``tianrt convert`` / ``tianrt quantize`` on model files."""
import numpy as np

import tianrt as tr
from tianrt.cli import main

from convert_fixtures import trained_mlp


def test_convert_and_quantize_commands(tmp_path, capsys):
    m, x, y = trained_mlp()
    ann = tr.save(m.to_graph(), tmp_path / "ann.tnr")
    np.savez(tmp_path / "cal.npz", x=x)
    assert main(["convert", str(ann), "--calibration", str(tmp_path / "cal.npz"), "-T", "8", "--layers", "1:",
                 "-o", str(tmp_path / "snn.tnr")]) == 0
    assert "spiking dense2, dense3; ANN dense1" in capsys.readouterr().out
    snn = tr.load(tmp_path / "snn.tnr")
    assert snn.metadata["conversion"]["T"] == 8 and type(snn["dense1"]) is tr.ann.Dense
    assert main(["quantize", str(tmp_path / "snn.tnr"), "--calibration", str(tmp_path / "cal.npz"),
                 "-o", str(tmp_path / "q.tnr")]) == 0
    q = tr.load(tmp_path / "q.tnr")
    assert all(e.node.op.startswith(("q.", "graph.")) for e in q.entries.values())
    out = tr.Runtime(q).run({"x": x}, ticks=8)["y"][-1]
    assert (out.argmax(1) == y).mean() >= m.accuracy(x, y) - 0.05


def test_convert_command_errors_name_the_problem(tmp_path, capsys):
    m, x, _ = trained_mlp()
    ann = tr.save(m.to_graph(), tmp_path / "ann.tnr")
    np.savez(tmp_path / "bad.npz", x=x[:, :3])
    assert main(["convert", str(ann), "--calibration", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "s.tnr")]) == 1
    assert "calibration data for `x` has shape (240, 3), expected (N, 16)" in capsys.readouterr().err
    assert main(["convert", str(ann), "--calibration", str(tmp_path / "none.npz"), "-o", str(tmp_path / "s.tnr")]) == 1
    assert "cannot read calibration data" in capsys.readouterr().err
    np.savez(tmp_path / "cal.npz", x=x)
    assert main(["convert", str(ann), "--calibration", str(tmp_path / "cal.npz"), "-T", "0",
                 "-o", str(tmp_path / "s.tnr")]) == 1
    assert "T must be an integer number of ticks >= 1, got 0" in capsys.readouterr().err
