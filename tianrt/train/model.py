"""A sequential model of trainable layers: forward, backward, training with minibatches
and early stopping, and export to / import from a ``tr.Graph`` of ``tr.ann`` nodes."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .. import ann
from ..errors import GraphError, InputError
from ..graph import Graph
from . import layers as L
from .losses import CrossEntropyLoss
from .optim import Adam, cosine_lr, minibatches

F32 = np.float32


@dataclass
class History:
    """Per-epoch training record; ``best_epoch`` is the one whose weights were kept."""
    loss: list = field(default_factory=list)
    acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False


class Sequential:
    """``Sequential(layer, layer, ..., input_shape=(64,), seed=0)``; parameters are created
    at construction from the seed, so a model is reproducible from its definition."""

    def __init__(self, *layers: L.Layer, input_shape, seed: int = 0):
        if not layers:
            raise ValueError("train.Sequential needs at least one layer")
        self.layers = list(layers)
        self.input_shape = tuple(int(d) for d in np.atleast_1d(input_shape))
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, L.Layer):
                raise TypeError(f"train.Sequential: item {i} is {layer!r}, not a tianrt.train layer")
            shape = layer.init(shape, rng)
        self.output_shape = shape

    # -- compute ----------------------------------------------------------------------------
    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, F32)
        if x.shape[1:] != self.input_shape:
            if x.shape == self.input_shape:
                x = x[None]
            else:
                raise InputError(f"train.Sequential: inputs of shape {x.shape}, expected "
                                 f"(batch, {', '.join(map(str, self.input_shape))})")
        return x

    def forward(self, x, train: bool = False) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    __call__ = forward

    def backward(self, g) -> np.ndarray:
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def predict(self, x, batch_size: int = 1024) -> np.ndarray:
        """Outputs (logits) for a batch, in inference mode."""
        x = self._check_x(x)
        return np.concatenate([self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def accuracy(self, x, y) -> float:
        return float((self.predict(x).argmax(1) == np.asarray(y)).mean())

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self) -> list[dict]:
        out = []
        for layer in self.layers:
            d = {k: v.copy() for k, v in layer.params.items()}
            if isinstance(layer, L.BatchNorm):
                d["running_mean"], d["running_var"] = layer.running_mean.copy(), layer.running_var.copy()
            if isinstance(layer, L.ClippedReLU) and "max_value" not in d:
                d["_lam"] = layer._lam.copy()
            out.append(d)
        return out

    def set_weights(self, weights: list[dict]) -> None:
        for layer, d in zip(self.layers, weights):
            for k, v in d.items():
                if k in ("running_mean", "running_var"):
                    setattr(layer, k, v.copy())
                elif k == "_lam":
                    layer._lam[...] = v
                else:
                    layer.params[k][...] = v

    # -- training ---------------------------------------------------------------------------
    def fit(self, x, y, *, epochs: int = 20, batch_size: int = 32, optimizer=None, loss=None,
            val_split: float = 0.0, validation=None, patience: int | None = None,
            lr_schedule: str | None = None, augment=None, seed: int | None = None,
            progress: bool = True) -> History:
        """Train with shuffled minibatches. ``val_split`` holds out that fraction of (x, y)
        (or give ``validation=(xv, yv)``); with ``patience`` training stops after that many
        epochs without a better validation loss and the best weights are restored.
        ``lr_schedule="cosine"`` anneals the learning rate to zero over ``epochs``;
        ``augment(xb, rng) -> xb`` transforms each training minibatch (seeded ``rng``)."""
        x = self._check_x(x)
        y = np.asarray(y)
        if len(y) != len(x):
            raise InputError(f"train.fit: {len(x)} inputs but {len(y)} targets")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"train.fit: epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        if lr_schedule not in (None, "cosine"):
            raise ValueError(f"train.fit: lr_schedule must be None or 'cosine', got {lr_schedule!r}")
        rng = np.random.default_rng(self.seed if seed is None else seed)
        if validation is None and val_split:
            if not 0 < val_split < 1:
                raise ValueError(f"train.fit: val_split must be in (0, 1), got {val_split}")
            idx = rng.permutation(len(x))
            nv = max(1, int(round(len(x) * val_split)))
            validation = (x[idx[:nv]], y[idx[:nv]])
            x, y = x[idx[nv:]], y[idx[nv:]]
        if patience is not None and int(patience) < 1:
            raise ValueError(f"train.fit: patience must be >= 1 epoch, got {patience}")
        if patience is not None and validation is None:
            raise ValueError("train.fit: early stopping (patience) needs val_split or validation")
        opt = optimizer or Adam(1e-3)
        loss_fn = loss or CrossEntropyLoss()
        base_lr = opt.lr
        hist, best, best_w, wait = History(), np.inf, None, 0
        bar = _progress(epochs, progress)
        for ep in range(epochs):
            if lr_schedule == "cosine":
                opt.lr = cosine_lr(base_lr, ep, epochs)
            tot, correct = 0.0, 0
            for b, xb in minibatches(x, batch_size, rng, augment):
                out = self.forward(xb, train=True)
                value, g = loss_fn(out, y[b])
                self.backward(g)
                opt.step(self.layers)
                tot += value * len(b)
                if y.ndim == 1:
                    correct += int((out.argmax(1) == y[b]).sum())
            classify = y.ndim == 1  # class labels; regression targets have no accuracy (nan)
            hist.loss.append(tot / len(x))
            hist.acc.append(correct / len(x) if classify else float("nan"))
            post = {"loss": f"{hist.loss[-1]:.4f}"}
            if classify:
                post["acc"] = f"{hist.acc[-1]:.3f}"
            if validation is not None:
                out = self.predict(validation[0])
                vl, _ = loss_fn(out, validation[1])
                hist.val_loss.append(vl)
                yv = np.asarray(validation[1])
                hist.val_acc.append(float((out.argmax(1) == yv).mean()) if yv.ndim == 1 else float("nan"))
                post["val_loss"] = f"{vl:.4f}"
                if yv.ndim == 1:
                    post["val_acc"] = f"{hist.val_acc[-1]:.3f}"
                if vl < best:
                    best, best_w, wait, hist.best_epoch = vl, self.get_weights(), 0, ep
                else:
                    wait += 1
            bar.set_postfix(post)
            bar.update(1)
            if patience is not None and wait and wait >= patience:  # as Keras: patience non-improving epochs
                hist.stopped_early = True
                break
        bar.close()
        opt.lr = base_lr
        if best_w is not None and patience is not None:
            self.set_weights(best_w)
        elif validation is None:
            hist.best_epoch = len(hist.loss) - 1
        return hist

    # -- graphs -----------------------------------------------------------------------------
    def to_graph(self, name: str = "ann", input_name: str = "x", output_name: str = "y",
                 dt: float = 1e-3) -> Graph:
        """The trained model as a ``tr.Graph`` of ``tr.ann`` nodes (copies of the weights)."""
        g = Graph(dt=dt, name=name)
        h = g.input(input_name, self.input_shape)
        for layer in self.layers:
            for node in layer.to_nodes():
                h = g.add(copy.deepcopy(node), h)
        g.output(output_name, h)
        return g

    @classmethod
    def from_graph(cls, graph: Graph, seed: int = 0) -> "Sequential":
        """A trainable model with the weights of a chain graph of ``tr.ann`` nodes."""
        ins = list(graph.inputs)
        if len(ins) != 1 or len(graph.outputs) != 1:
            raise GraphError(f"train.Sequential.from_graph: graph {graph.name!r} must have one input and "
                             f"one output, has {len(ins)} and {len(graph.outputs)}")
        layers = []
        for name, e in graph.entries.items():
            if name == ins[0]:
                continue
            layers.append(_layer_of(name, e.node))
        return cls(*layers, input_shape=graph.entries[ins[0]].shape, seed=seed)


def _layer_of(name, n):
    if type(n) is ann.Dense:
        return L.Dense(n.in_features, n.out_features, weight=n.weight, bias=n.bias)
    if type(n) is ann.Conv2d:
        return L.Conv2d(n.in_channels, n.out_channels, n.kernel_size, n.stride, n.padding,
                        weight=n.weight, bias=n.bias)
    simple = {ann.ReLU: L.ReLU, ann.Sigmoid: L.Sigmoid, ann.Tanh: L.Tanh, ann.Flatten: L.Flatten,
              ann.GlobalAvgPool2d: L.GlobalAvgPool2d}
    if type(n) in simple:
        return simple[type(n)]()
    if type(n) is ann.ClippedReLU:
        return L.ClippedReLU(n.max_value)
    if type(n) in (ann.AvgPool2d, ann.MaxPool2d):
        cls = L.AvgPool2d if type(n) is ann.AvgPool2d else L.MaxPool2d
        return cls(n.kernel_size, n.stride, n.padding)
    if type(n) is ann.BatchNorm:
        bn = L.BatchNorm(n.num_features, eps=n.eps)
        bn.params["weight"][...] = n.weight
        bn.params["bias"][...] = n.bias
        bn.running_mean, bn.running_var = n.running_mean.copy(), n.running_var.copy()
        return bn
    raise GraphError(f"train.Sequential.from_graph: node `{name}` ({n.op}) has no trainable layer; "
                     "supported: ann.Dense, Conv2d, pools, activations, BatchNorm, Flatten")


class _NoBar:
    def set_postfix(self, *_a, **_k):
        pass

    def update(self, *_a):
        pass

    def close(self):
        pass


def _progress(total, enabled):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="epoch", leave=False, dynamic_ncols=True)
