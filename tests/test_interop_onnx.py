"""ONNX import (tr.interop.read_onnx): an MLP and a small CNN written here with onnx.helper
agree with the ONNX reference evaluator (numpy) within 1e-5; the digits CNN exported to
ONNX, imported and converted stays within the digits demo's conversion bars; the imported
graph goes through convert, quantize and chip.compile; unknown ops are refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import tianrt as tr

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

F32 = np.float32


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, F32), name)


def _model(nodes, inits, in_shape, out_name="y", in_name="x"):
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N"])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def _tianrt(g, x):
    (name,) = g.inputs
    (out,) = g.outputs
    return tr.Runtime(g, backend="reference").run({name: x}, ticks=1)[out][-1]


def _check(m, x, tmp_path):
    p = tmp_path / "m.onnx"
    onnx.save(m, str(p))
    g = tr.interop.read_onnx(p)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    got = _tianrt(g, x)
    np.testing.assert_allclose(got, want.reshape(got.shape), atol=1e-5, rtol=1e-5)
    return g


def test_mlp_matches_the_onnx_reference(tmp_path):
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(0, 0.4, (12, 16)), rng.normal(0, 0.1, 16)
    w2, b2 = rng.normal(0, 0.4, (8, 16)), rng.normal(0, 0.1, 8)   # Gemm transB=1: (out, in)
    w3, b3 = rng.normal(0, 0.4, (8, 4)), rng.normal(0, 0.1, (1, 4))
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"], name="fc1"),
             helper.make_node("Add", ["h1", "b1"], ["h1b"], name="fc1_bias"),
             helper.make_node("Relu", ["h1b"], ["a1"], name="relu1"),
             helper.make_node("Gemm", ["a1", "w2", "b2"], ["h2"], name="fc2", transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Clip", ["h2", "zero", "six"], ["a2"], name="clip"),
             helper.make_node("Gemm", ["a2", "w3", "b3"], ["h3"], name="fc3"),
             helper.make_node("Sigmoid", ["h3"], ["s"], name="sig"),
             helper.make_node("Tanh", ["h3"], ["t"], name="tanh"),
             helper.make_node("Add", ["s", "t"], ["y"], name="sum")]
    inits = [_init("w1", w1), _init("b1", b1), _init("w2", w2), _init("b2", b2), _init("w3", w3), _init("b3", b3),
             _init("zero", 0.0), _init("six", 0.6)]
    x = rng.normal(0, 1, (20, 12)).astype(F32)
    g = _check(_model(nodes, inits, [12]), x, tmp_path)
    assert [e.node.op for e in g.entries.values()].count("ann.Dense") == 3
    assert "fc1_bias" not in g.entries  # the Add of a constant became fc1's bias


def _cnn_model(rng):
    c = lambda *s: rng.normal(0, 0.3, s)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "k1", "c1"], ["h1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["h1", "g", "be", "mu", "var"], ["n1"], name="bn1", epsilon=1e-3),
             helper.make_node("Relu", ["n1"], ["a1"], name="relu1"),
             helper.make_node("MaxPool", ["a1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "k2"], ["h2"], name="conv2", pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("Conv", ["p1", "k3", "c3"], ["h3"], name="conv3", kernel_shape=[1, 1]),
             helper.make_node("Add", ["h2", "h3"], ["h23"], name="res"),
             helper.make_node("Tanh", ["h23"], ["a2"], name="tanh"),
             helper.make_node("Concat", ["a2", "p1"], ["cat"], name="cat", axis=1),
             helper.make_node("AveragePool", ["cat"], ["p2"], name="pool2", kernel_shape=[3, 3], strides=[1, 1],
                              pads=[1, 1, 1, 1], count_include_pad=1),
             helper.make_node("GlobalAveragePool", ["p2"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]
    inits = [_init("k1", c(4, 2, 3, 3)), _init("c1", c(4)), _init("g", 1 + c(4)), _init("be", c(4)),
             _init("mu", c(4)), _init("var", 0.5 + rng.random(4)), _init("k2", c(5, 4, 3, 3)),
             _init("k3", c(5, 4, 1, 1)), _init("c3", c(5)), _init("wf", c(3, 9)), _init("bf", c(3))]
    return _model(nodes, inits, [2, 8, 8])


def test_cnn_matches_the_onnx_reference(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((6, 2, 8, 8)).astype(F32)
    g = _check(_cnn_model(rng), x, tmp_path)
    ops = {e.node.op for e in g.entries.values()}
    assert {"ann.Conv2d", "ann.BatchNorm", "ann.MaxPool2d", "ann.Add", "ann.Concat", "ann.AvgPool2d",
            "ann.GlobalAvgPool2d", "ann.Dense"} <= ops


def _onnx_of_chain(g: tr.Graph):
    """Write a chain of tr.ann layers as ONNX, the way an exporter would (Reshape for Flatten)."""
    nodes, inits, prev = [], [], "x"
    for name, e in list(g.entries.items())[1:]:
        n, out = e.node, name
        if isinstance(n, tr.ann.Conv2d):
            inits += [_init(f"{name}.w", n.weight), _init(f"{name}.b", n.bias)]
            nodes.append(helper.make_node("Conv", [prev, f"{name}.w", f"{name}.b"], [out], name=name,
                                          pads=list(n.padding) * 2, strides=list(n.stride)))
        elif isinstance(n, tr.ann.Dense):
            inits += [_init(f"{name}.w", n.weight), _init(f"{name}.b", n.bias)]
            nodes.append(helper.make_node("Gemm", [prev, f"{name}.w", f"{name}.b"], [out], name=name, transB=1))
        elif isinstance(n, tr.ann.ClippedReLU):
            inits += [_init(f"{name}.lo", 0.0), _init(f"{name}.hi", n.max_value)]
            nodes.append(helper.make_node("Clip", [prev, f"{name}.lo", f"{name}.hi"], [out], name=name))
        elif isinstance(n, tr.ann.AvgPool2d):
            nodes.append(helper.make_node("AveragePool", [prev], [out], name=name, kernel_shape=list(n.kernel_size),
                                          strides=list(n.stride)))
        elif isinstance(n, tr.ann.Flatten):
            inits.append(numpy_helper.from_array(np.array([-1, int(np.prod(e.shape))], np.int64), f"{name}.shape"))
            nodes.append(helper.make_node("Reshape", [prev, f"{name}.shape"], [out], name=name))
        else:
            raise AssertionError(n.op)
        prev = out
    nodes[-1].output[0] = "y"
    return _model(nodes, inits, list(g.entries["x"].shape))


def test_imported_digits_cnn_converts_within_the_demo_bars(tmp_path):
    pytest.importorskip("sklearn")
    from tianrt.demos import digits

    x_tr, x_te, y_tr, y_te = digits.load_split(0)
    ann = tr.load(digits.DATA / "digits_cnn.tnr")
    m = _onnx_of_chain(ann)
    onnx.save(m, str(tmp_path / "cnn.onnx"))
    g = tr.interop.read_onnx(tmp_path / "cnn.onnx")
    xc, xt = digits.as_images(x_tr), digits.as_images(x_te)
    want = ReferenceEvaluator(m).run(None, {"x": xt[:50]})[0]
    np.testing.assert_allclose(_tianrt(g, xt[:50]), want, atol=1e-5, rtol=1e-5)

    def acc(graph, T):
        return 100 * float((tr.Runtime(graph).run({"x": xt}, ticks=T)["y"][-1].argmax(1) == y_te).mean())

    a = acc(g, 1)
    assert a >= 98.0
    for T, bar in {4: 2.0, 8: 1.0, 16: 0.5}.items():
        assert acc(tr.convert(g, {"x": xc}, T=T), T) >= a - bar, T


def test_imported_model_goes_through_convert_quantize_and_compile(tmp_path):
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["a"], name="relu1"),
             helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], name="fc2", transB=1)]
    m = _model(nodes, [_init("w1", rng.normal(0, 0.5, (16, 8))), _init("b1", rng.normal(0, 0.1, 16)),
                       _init("w2", rng.normal(0, 0.5, (4, 16))), _init("b2", np.zeros(4))], [8])
    g = tr.interop.read_onnx(m)
    x = rng.random((64, 8)).astype(F32)
    snn = tr.convert(g, {"x": x}, T=8)
    q = tr.quantize(snn, {"x": x})
    image, report = tr.chip.compile(q)
    assert len(image) > 0
    ref = _tianrt(g, x).argmax(1)
    assert (tr.Runtime(q).run({"x": x}, ticks=8)["y"][-1].argmax(1) == ref).mean() >= 0.8


def test_unknown_ops_and_unmappable_settings_are_refused_by_name(tmp_path):
    rng = np.random.default_rng(4)
    w = _init("w", rng.normal(0, 1, (4, 3)))
    m = _model([helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
                helper.make_node("Softmax", ["h"], ["y"], name="probs")], [w], [3])
    with pytest.raises(tr.interop.InteropError, match=r"`probs` \(Softmax\).*Gemm"):
        tr.interop.read_onnx(m)
    m = _model([helper.make_node("Clip", ["x", "lo"], ["y"], name="clamp")], [_init("lo", -1.0)], [3])
    with pytest.raises(tr.interop.InteropError, match=r"`clamp` \(Clip\): min=-1"):
        tr.interop.read_onnx(m)
    m = _model([helper.make_node("Conv", ["x", "k"], ["y"], name="c", pads=[0, 0, 1, 1])],
               [_init("k", np.ones((1, 1, 2, 2)))], [1, 4, 4])
    with pytest.raises(tr.interop.InteropError, match=r"`c` \(Conv\): pads"):
        tr.interop.read_onnx(m)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(tr.interop.InteropError, match="bad.onnx"):
        tr.interop.read_onnx(tmp_path / "bad.onnx")
