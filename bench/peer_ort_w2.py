"""ONNX Runtime (one thread) on W2, for an interpreter that has onnxruntime and onnx but not
necessarily torch or tianrt: `bench_kernels.py w2 --peer-python PATH` runs it in a
subprocess on the same weights and image (an .npz), in the same benchmark run. The ONNX
graph is built with onnx.helper (Conv-Relu-MaxPool x2, Conv-Relu, GlobalAveragePool, Gemm).

    python bench/peer_ort_w2.py weights.npz [repeats]
    python bench/peer_ort_w2.py weights.npz serve

prints: microseconds per inference (best of the repeats, 200 calls each), the four
outputs, the onnxruntime version. With ``serve`` it prints the outputs and version, then
answers each line ``N`` on stdin with the microseconds per inference of N calls, wall and
process CPU time (an empty line ends it): bench_kernels.py interleaves those rounds with its own, so that both are
measured under the same load."""
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from benchutil import serve_steps


def build(d):
    nodes, inits = [], []

    def init(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))

    cur = "img"
    for i in (1, 2, 3):
        init(f"w{i}", d[f"w{i}"])
        init(f"b{i}", d[f"b{i}"])
        nodes.append(helper.make_node("Conv", [cur, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                                      kernel_shape=[3, 3]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        cur = f"r{i}"
        if i < 3:
            nodes.append(helper.make_node("MaxPool", [cur], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            cur = f"p{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [cur], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    init("wd", d["wd"].T.copy())
    init("bd", d["bd"])
    nodes.append(helper.make_node("Gemm", ["flat", "wd", "bd"], ["y"]))
    shape = [1] + list(d["img"].shape)
    graph = helper.make_graph(nodes, "w2", [helper.make_tensor_value_info("img", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def main():
    d = np.load(sys.argv[1])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(build(d).SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"img": d["img"][None].astype(np.float32)}
    y = sess.run(None, feed)[0]
    if sys.argv[2:3] == ["serve"]:
        serve_steps(" ".join(f"{v:.9g}" for v in y.ravel()) + " " + ort.__version__, lambda: sess.run(None, feed))
        return
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    n, ts = 200, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            sess.run(None, feed)
        ts.append(time.perf_counter() - t0)
    print(f"{min(ts) / n * 1e6:.2f}", " ".join(f"{v:.9g}" for v in y.ravel()), ort.__version__)


if __name__ == "__main__":
    main()
