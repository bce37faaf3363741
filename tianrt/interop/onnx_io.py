"""ONNX import of ANNs (``tr.interop.read_onnx``): an ONNX graph of the common layers of
small CNNs and MLPs (as PyTorch and Keras export them) becomes a ``tr.Graph`` of ``tr.ann``
nodes, ready for ``tr.convert``, ``tr.quantize`` and ``tr.chip.compile``.

Read: Gemm, MatMul (+ Add of a constant: the bias), Conv, Relu, Clip (min 0), Sigmoid,
Tanh, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape (to (N, -1)),
BatchNormalization, Add, Concat, and the no-ops Identity, Dropout and Constant. Anything else
is refused with an error naming the node and its op. The first axis of every tensor is the
batch axis; tianrt shapes are per sample. Table: docs/interop.md §4.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import ann
from ..graph import Graph
from ._common import InteropError, need

F32 = np.float32
OPS = ("Gemm", "MatMul", "Conv", "Relu", "Clip", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
       "GlobalAveragePool", "Flatten", "Reshape", "BatchNormalization", "Add", "Concat",
       "Identity", "Dropout", "Constant")


def read_onnx(source, *, name: str | None = None, dt: float = 1e-3) -> Graph:
    """Read an ONNX model (a path or an ``onnx.ModelProto``) into a graph of ``tr.ann`` nodes."""
    onnx = need("onnx", "ONNX import")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise InteropError(f"{path}: no such file")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf's DecodeError and friends
            raise InteropError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
        where = str(path)
    else:
        model, where = source, "ONNX model"
    return _Importer(onnx, model, where, name, dt).build()


def _attrs(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Importer:
    def __init__(self, onnx, model, where, name, dt):
        self.onnx, self.where = onnx, where
        self.gp = model.graph
        self.g = Graph(dt=dt, name=name or self.gp.name or Path(where).stem or "onnx")
        self.const: dict[str, np.ndarray] = {}
        self.h: dict[str, str] = {}  # ONNX value name -> tianrt entry

    def err(self, node, msg):
        return InteropError(f"{self.where}: node `{node.name or node.output[0]}` ({node.op_type}): {msg}")

    def build(self) -> Graph:
        nh = self.onnx.numpy_helper
        for t in self.gp.initializer:
            self.const[t.name] = nh.to_array(t)
        for vi in self.gp.input:
            if vi.name in self.const:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
                raise InteropError(f"{self.where}: input `{vi.name}` has shape {dims}; tianrt needs a batch axis "
                                   "followed by fixed sizes, e.g. [N, 64] or [N, 1, 8, 8]")
            self.h[vi.name] = self.g.input(_clean(vi.name), tuple(dims[1:])).name
        for node in self.gp.node:
            self._node(node)
        for vo in self.gp.output:
            if vo.name not in self.h:
                raise InteropError(f"{self.where}: output `{vo.name}` is a constant; tianrt outputs are computed")
            self.g.output(_clean(vo.name), self.h[vo.name])
        self.g.validate()
        return self.g

    # -- helpers -------------------------------------------------------------------------------
    def val(self, node, i):
        """Input ``i`` of ``node`` as a tianrt entry (computed) or an array (constant)."""
        if i >= len(node.input) or not node.input[i]:
            return None
        n = node.input[i]
        if n in self.const:
            return self.const[n]
        if n in self.h:
            return self.h[n]
        raise self.err(node, f"reads `{n}`, which no earlier node produces (graph not topologically sorted?)")

    def computed(self, node, i=0):
        v = self.val(node, i)
        if not isinstance(v, str):
            raise self.err(node, f"input {i} (`{node.input[i]}`) is a constant; tianrt computes it on data inputs")
        return v

    def constant(self, node, i, what):
        v = self.val(node, i)
        if v is None or isinstance(v, str):
            raise self.err(node, f"{what} (input {i}) must be a constant initializer to map to a tianrt layer")
        return np.asarray(v)

    def shape(self, h):
        return self.g.entries[h].shape

    def add(self, node, tnode, *inputs):
        out = node.output[0]
        name = _clean(node.name or out)
        if name in self.g.entries:
            name = _clean(out) if _clean(out) not in self.g.entries else None
        try:
            self.h[out] = self.g.add(tnode, *inputs, name=name).name
        except InteropError:
            raise
        except Exception as exc:
            raise self.err(node, str(exc)) from None

    def pool_args(self, node, a, kernel):
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            if any(k % 2 == 0 for k in kernel):
                raise self.err(node, f"auto_pad {a['auto_pad']!r} with even kernel {kernel}: tianrt pads "
                                     "symmetrically")
            pads = [k // 2 for k in kernel] * 2
        else:
            pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.err(node, f"pads {pads} are not symmetric; tianrt pads top = bottom and left = right")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.err(node, f"dilations {list(a['dilations'])}: tianrt has no dilation")
        if a.get("ceil_mode", 0):
            raise self.err(node, "ceil_mode=1: tianrt pools with floor")
        return tuple(a.get("strides", [1, 1])), (pads[0], pads[1])

    # -- ops ------------------------------------------------------------------------------------
    def _node(self, node):
        op, a = node.op_type, _attrs(self.onnx, node)
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"op from domain {node.domain!r}; tianrt reads the standard ONNX ops {', '.join(OPS)}")
        if op == "Constant":
            t = a.get("value")
            if t is None:
                raise self.err(node, "only Constant nodes with a `value` tensor are read")
            self.const[node.output[0]] = self.onnx.numpy_helper.to_array(t)
        elif op in ("Identity", "Dropout"):
            v = self.val(node, 0)
            (self.h if isinstance(v, str) else self.const)[node.output[0]] = v
        elif op == "Gemm":
            x = self.computed(node, 0)
            if a.get("transA", 0):
                raise self.err(node, "transA=1: the data input must be (N, in)")
            w = self.constant(node, 1, "B").astype(np.float64) * float(a.get("alpha", 1.0))
            w = w if a.get("transB", 0) else w.T
            c = self.val(node, 2)
            b = np.zeros(w.shape[0]) if c is None else np.broadcast_to(
                np.asarray(self.constant(node, 2, "C"), np.float64) * float(a.get("beta", 1.0)), (1, w.shape[0]))[0]
            self.add(node, ann.Dense(w.shape[1], w.shape[0], weight=w.astype(F32), bias=b.astype(F32)), x)
        elif op == "MatMul":
            x = self.computed(node, 0)
            w = self.constant(node, 1, "the weight")
            if w.ndim != 2:
                raise self.err(node, f"weight of shape {w.shape}; tianrt reads (in, out) matrices")
            self.add(node, ann.Dense(w.shape[0], w.shape[1], weight=w.T.astype(F32)), x)
        elif op == "Conv":
            x = self.computed(node, 0)
            w = self.constant(node, 1, "W").astype(F32)
            if w.ndim != 4:
                raise self.err(node, f"weight of shape {w.shape}: tianrt reads 2-D convolutions (O, I, kh, kw)")
            if a.get("group", 1) != 1:
                raise self.err(node, f"group={a['group']}: tianrt convolutions have groups=1")
            stride, pad = self.pool_args(node, a, w.shape[2:])
            b = self.val(node, 2)
            b = np.zeros(w.shape[0], F32) if b is None else self.constant(node, 2, "B").astype(F32)
            self.add(node, ann.Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride, pad, weight=w, bias=b), x)
        elif op == "Relu":
            self.add(node, ann.ReLU(), self.computed(node))
        elif op == "Clip":
            lo = self.val(node, 1) if len(node.input) > 1 else a.get("min")
            hi = self.val(node, 2) if len(node.input) > 2 else a.get("max")
            lo = None if lo is None else float(np.asarray(lo))
            hi = None if hi is None else float(np.asarray(hi))
            if lo != 0.0:
                raise self.err(node, f"min={lo}; tianrt has ReLU (min 0) and ClippedReLU (min 0, max > 0)")
            self.add(node, ann.ReLU() if hi is None else ann.ClippedReLU(max_value=hi), self.computed(node))
        elif op == "Sigmoid":
            self.add(node, ann.Sigmoid(), self.computed(node))
        elif op == "Tanh":
            self.add(node, ann.Tanh(), self.computed(node))
        elif op in ("MaxPool", "AveragePool"):
            x = self.computed(node)
            k = tuple(a["kernel_shape"])
            stride, pad = self.pool_args(node, a, k)
            if op == "AveragePool" and any(pad) and not a.get("count_include_pad", 0):
                raise self.err(node, "count_include_pad=0 with padding; tianrt's AvgPool2d counts the zero "
                                     "padding (PyTorch's default count_include_pad=True)")
            cls = ann.MaxPool2d if op == "MaxPool" else ann.AvgPool2d
            self.add(node, cls(k, stride, pad), x)
        elif op == "GlobalAveragePool":
            self.add(node, ann.GlobalAvgPool2d(), self.computed(node))
        elif op in ("Flatten", "Reshape"):
            self._flatten(node, op, a)
        elif op == "BatchNormalization":
            x = self.computed(node)
            p = [self.constant(node, i, n).astype(F32) for i, n in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))]
            self.add(node, ann.BatchNorm(p[0].shape[0], weight=p[0], bias=p[1], running_mean=p[2],
                                         running_var=p[3], eps=float(a.get("epsilon", 1e-5))), x)
        elif op == "Add":
            self._add_op(node)
        elif op == "Concat":
            xs = [self.computed(node, i) for i in range(len(node.input))]
            rank = len(self.shape(xs[0])) + 1
            axis = int(a.get("axis", 1))
            axis = axis + rank if axis < 0 else axis
            if axis == 0:
                raise self.err(node, "concatenation along the batch axis")
            self.add(node, ann.Concat(axis=axis - 1), *xs)
        else:
            raise self.err(node, f"op {op} is not read by tianrt; read ops: {', '.join(OPS)}")

    def _flatten(self, node, op, a):
        x = self.computed(node)
        shape = self.shape(x)
        n = int(np.prod(shape))
        if op == "Flatten":
            if int(a.get("axis", 1)) != 1:
                raise self.err(node, f"axis={a.get('axis')}: tianrt flattens each sample (axis=1)")
        else:
            tgt = [int(v) for v in self.constant(node, 1, "the target shape").ravel()]
            if not (len(tgt) == 2 and tgt[0] in (-1, 0, 1) and tgt[1] in (-1, n)):
                raise self.err(node, f"target shape {tgt}: tianrt reshapes only to (N, -1) (flatten each sample, "
                                     f"here {n} values)")
        if len(shape) == 1:
            self.h[node.output[0]] = x  # already flat (e.g. after GlobalAveragePool)
            return
        self.add(node, ann.Flatten(), x)

    def _add_op(self, node):
        x, y = self.val(node, 0), self.val(node, 1)
        if isinstance(x, str) and isinstance(y, str):
            self.add(node, ann.Add(), x, y)
            return
        h, c = (x, y) if isinstance(x, str) else (y, x)
        if not isinstance(h, str):
            raise self.err(node, "adds two constants")
        e = self.g.entries[h]
        lay = e.node
        ok = isinstance(lay, (ann.Dense, ann.Conv2d)) and not self.g.consumers(h) and h not in self.g.outputs.values()
        c = np.asarray(c, np.float64)
        if ok:
            n = lay.bias.shape[0]
            try:  # a bias: broadcastable to (out,) for Dense, (out, 1, 1) per channel for Conv2d
                b = (np.broadcast_to(c, (1, n)).reshape(n) if isinstance(lay, ann.Dense) and c.ndim <= 2
                     else np.broadcast_to(c, (1, n, 1, 1)).reshape(n) if c.ndim in (3, 4) or c.size == 1 else None)
            except ValueError:
                b = None
            if b is not None:
                e.node = lay.copy(bias=(lay.bias + b).astype(F32))
                self.h[node.output[0]] = h
                return
        raise self.err(node, "adds a constant that is not the bias of the Gemm/MatMul/Conv right before it; "
                             "tianrt keeps constant offsets only as layer biases")


def _clean(name: str) -> str:
    return name.replace("/", "_").replace(":", "_") or "v"


__all__ = ["read_onnx"]
