"""``tianrt import`` and ``tianrt export`` on model files: NIR out and back in bit-identically,
ONNX in, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import tianrt as tr
from tianrt.cli import main

pytest.importorskip("nir")
onnx = pytest.importorskip("onnx")


def test_export_then_import_nir_round_trip(tmp_path, capsys):
    g = tr.Graph(name="cli-nir")
    x = g.input("x", (3,))
    s = g.add(tr.bridge.RateEncoder(), g.add(tr.ann.ReLU(), x))
    s = g.add(tr.snn.LIF(beta=0.9, threshold=0.8), g.add(tr.snn.Dense(3, 2, seed=1), s))
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), s))
    tr.save(g, tmp_path / "m.tnr")
    assert main(["export", str(tmp_path / "m.tnr"), "-o", str(tmp_path / "m.nir")]) == 0
    err = capsys.readouterr().err
    assert "`relu1` (ann.ReLU)" in err and "snnTorch" in err and "reset by subtraction" in err
    assert main(["export", str(tmp_path / "m.tnr"), "-o", str(tmp_path / "s.nir"), "--strict"]) == 1
    assert "strict" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(tmp_path / "back.tnr")]) == 0
    g2 = tr.load(tmp_path / "back.tnr")
    xv = np.array([[0.2, 0.9, 0.5]], np.float32)
    a, b = tr.Runtime(g).run({"x": xv}, ticks=16), tr.Runtime(g2).run({"x": xv}, ticks=16)
    assert np.array_equal(a["count"], b["count"]) and a["count"].sum() > 0


def test_import_onnx(tmp_path, capsys):
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.eye(2, 3, dtype=np.float32), "w")
    gr = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])],
                           "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], initializer=[w])
    onnx.save(helper.make_model(gr), str(tmp_path / "tiny.onnx"))
    assert main(["import", str(tmp_path / "tiny.onnx"), "-o", str(tmp_path / "tiny.tnr")]) == 0
    assert "inputs x, outputs y" in capsys.readouterr().out
    out = tr.Runtime(tr.load(tmp_path / "tiny.tnr")).run({"x": np.array([[1, -2, 3]], np.float32)}, ticks=1)["y"]
    assert out[-1].tolist() == [[1, 0]]
    (tmp_path / "m.pt").write_bytes(b"")
    assert main(["import", str(tmp_path / "m.pt"), "-o", str(tmp_path / "x.tnr")]) == 1
    assert ".onnx" in capsys.readouterr().err
