"""Directly trained spiking networks: surrogate-gradient backpropagation through time in
numpy (``tr.train.SNN``), batched and seeded. docs/training.md explains the method.

    from tianrt import train as T
    net = T.SNN(T.SpikingLayer(40, 64, neuron="alif", recurrent=True),
                T.Readout(64, 10, beta=0.95), n_in=40, input="tensor", loss="mean", seed=0)
    net.fit(x, y, epochs=20)         # x (samples, ticks, 40), y (samples,) class labels
    g = net.to_graph()               # an ordinary tr.Graph: save, run, quantise, compile

Inputs are ``(samples, ticks, features)``; ``input`` says what the graph's input is:
``"spike"`` (0/1 per tick), ``"current"`` (a current per tick) or ``"tensor"`` (a value per
tick through a ``bridge.DirectCurrent(gain)``, whose gradient is ``gain``). ``loss`` says how
the output trace ``y`` (ticks, batch, classes) becomes logits for the cross-entropy:

    "mean"     mean over ticks of y            (membrane readout, y from a Readout layer)
    "max"      max over ticks of y             (max-over-time)
    "last"     y at the last tick
    "count"    count_scale * the number of spikes (last layer a SpikingLayer)
    "per_tick" a cross-entropy at every tick, targets (samples, ticks), -1 = no target
               (``NO_TARGET``), -2 = padding (``PADDING``: no target, and not a frame of the
               sequence — filler that makes sequences of one length);
               ``class_weight`` (one positive weight per class) counts a tick of class c
               class_weight[c] times, the sum divided by the taught ticks' total weight

``fit(teacher=...)`` distils: the loss is ``(1 - alpha)`` times the one above plus ``alpha``
times ``losses.soft_target_loss`` toward the teacher's per-tick probabilities at temperature
``T`` on the same (augmented) minibatch — every tick for ``per_tick`` (or only the taught
ones, ``distil_ticks="taught"``, or every tick but the padding, ``"audio"``: ``tick_mask``);
the logits otherwise.

``truncate=K`` (fit) cuts the gradient through the neurons' state every K ticks
(truncated BPTT); ``smooth=True`` (forward) replaces the spike step by the surrogate's
primitive, the differentiable network whose exact gradient BPTT computes.
"""
from __future__ import annotations

import numpy as np

from .. import bridge
from ..errors import InputError
from ..graph import Graph
from .losses import CrossEntropyLoss, soft_target_loss, soft_targets
from .optim import Adam, cosine_lr, minibatches
from .snn_layers import Readout, SpikingLayer

F32 = np.float32
INPUTS = ("spike", "current", "tensor")
LOSSES = ("mean", "max", "last", "count", "per_tick")
NO_TARGET, PADDING = -1, -2       # per-tick targets: a frame without a label; a tick of padding
DISTIL_TICKS = ("all", "taught", "audio")


def tick_targets(target, batch: int, ticks: int) -> np.ndarray:
    """The per-tick targets (ticks, batch) of ``target``: (batch, ticks) per-tick targets, or
    (batch,) one class per sequence (every tick taught it)."""
    t = np.asarray(target)
    return (np.broadcast_to(t[:, None], (batch, ticks)) if t.ndim == 1 else t).T


def tick_mask(target, which: str, batch: int, ticks: int) -> np.ndarray:
    """(ticks, batch) booleans of the ticks ``which`` names, from the targets (``tick_targets``):
    ``"taught"`` the ticks with a label (target >= 0), ``"audio"`` every tick but the padding
    (target != ``PADDING``), ``"all"`` every tick."""
    if which not in DISTIL_TICKS:
        raise ValueError(f"train.SNN: ticks must be one of {DISTIL_TICKS}, got {which!r}")
    t = tick_targets(target, batch, ticks)
    if which == "taught":
        return t >= 0
    if which == "audio":
        return t != PADDING
    return np.ones(t.shape, bool)


class SNN:
    """A feed-forward stack of ``SpikingLayer``s (each optionally recurrent) and an optional
    ``Readout``, trained by BPTT with surrogate gradients."""

    def __init__(self, *layers, n_in: int, input: str = "spike", gain: float = 1.0,
                 loss: str = "mean", count_scale: float = 1.0, label_smoothing: float = 0.0,
                 seed: int = 0, dt: float = 1e-3, class_weight=None):
        if not layers:
            raise ValueError("train.SNN needs at least one layer")
        if input not in INPUTS:
            raise ValueError(f"train.SNN: input must be one of {INPUTS}, got {input!r}")
        if loss not in LOSSES:
            raise ValueError(f"train.SNN: loss must be one of {LOSSES}, got {loss!r}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (SpikingLayer, Readout)):
                raise TypeError(f"train.SNN: item {i} is {layer!r}, not a SpikingLayer or Readout")
            if isinstance(layer, Readout) and i != len(layers) - 1:
                raise ValueError("train.SNN: a Readout can only be the last layer")
        if loss == "count" and not isinstance(layers[-1], SpikingLayer):
            raise ValueError("train.SNN: loss='count' needs a SpikingLayer as the last layer")
        self.layers = list(layers)
        self.n_in, self.input, self.gain = int(n_in), input, float(gain)
        self.loss, self.count_scale = loss, float(count_scale)
        self.seed, self.dt = int(seed), float(dt)
        rng = np.random.default_rng(self.seed)
        n = self.n_in
        for layer in self.layers:
            n = layer.init(n, rng)
        self.n_out = n
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"train.SNN: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self._ce = CrossEntropyLoss(label_smoothing=self.label_smoothing)
        if class_weight is not None:
            class_weight = np.asarray(class_weight, np.float64)
            if loss != "per_tick":
                raise ValueError(f"train.SNN: class_weight weighs the per_tick loss's ticks; loss is {loss!r}")
            if class_weight.shape != (self.n_out,) or not np.all(class_weight > 0):
                raise ValueError(f"train.SNN: class_weight must be {self.n_out} positive weights, one per "
                                 f"class, got {class_weight.tolist()}")
        self.class_weight = class_weight

    # -- compute ----------------------------------------------------------------------------
    def _check_x(self, x, dtype=F32) -> np.ndarray:
        x = np.asarray(x, dtype)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise InputError(f"train.SNN: inputs of shape {x.shape}, expected (samples, ticks, {self.n_in})")
        return x

    def forward(self, x, train: bool = False, smooth: bool = False) -> np.ndarray:
        """The output trace (ticks, batch, n_out) for inputs (batch, ticks, n_in): the
        readout's membrane every tick, or the last layer's spikes."""
        h = np.ascontiguousarray(self._check_x(x, np.float64 if smooth else F32).transpose(1, 0, 2))
        if self.input == "tensor":
            h = h * (self.gain if smooth else F32(self.gain))
        for layer in self.layers:
            h = layer.forward(h, train=train, smooth=smooth)
        return h

    def spikes(self, x) -> list[np.ndarray]:
        """Every SpikingLayer's spikes (ticks, batch, n) for inputs (batch, ticks, n_in)."""
        h = np.ascontiguousarray(self._check_x(x).transpose(1, 0, 2))
        if self.input == "tensor":
            h = (h * F32(self.gain)).astype(F32)
        out = []
        for layer in self.layers:
            h = layer.forward(h)
            if isinstance(layer, SpikingLayer):
                out.append(h)
        return out

    def logits(self, y) -> np.ndarray:
        """Logits (batch, classes) from an output trace, by the loss mode."""
        if self.loss == "mean":
            return y.mean(0)
        if self.loss == "max":
            return y.max(0)
        if self.loss == "last":
            return y[-1]
        if self.loss == "count":
            return self.count_scale * y.sum(0)
        return y  # per_tick: (ticks, batch, classes)

    def loss_and_grad(self, y, target):
        """(loss value, dL/dy) for an output trace y (ticks, batch, classes)."""
        T = y.shape[0]
        if self.loss == "per_tick":
            t = tick_targets(target, y.shape[1], T)  # (ticks, batch)
            mask = tick_mask(target, "taught", y.shape[1], T)
            tc = np.where(mask, t, 0)
            w = mask.astype(np.float64) if self.class_weight is None else np.where(mask, self.class_weight[tc], 0.0)
            z = y.astype(np.float64) - y.max(2, keepdims=True)
            logp = z - np.log(np.exp(z).sum(2, keepdims=True))
            oh = np.eye(y.shape[2])[tc]
            if self.label_smoothing:
                oh = oh * (1 - self.label_smoothing) + self.label_smoothing / y.shape[2]
            oh = oh * w[..., None]
            n = float(w.sum()) if w.sum() > 0 else 1.0
            g = (np.exp(logp) * w[..., None] - oh) / n
            return float(-(oh * logp).sum() / n), g
        value, gl = self._ce(self.logits(y).astype(np.float64), target)
        gl = gl.astype(np.float64)
        if self.loss == "mean":
            g = np.broadcast_to(gl / T, y.shape).copy()
        elif self.loss == "count":
            g = np.broadcast_to(gl * self.count_scale, y.shape).copy()
        elif self.loss == "last":
            g = np.zeros(y.shape)
            g[-1] = gl
        else:  # max: the gradient goes to the tick of the maximum
            g = np.zeros(y.shape)
            idx = y.argmax(0)
            b, c = np.indices(idx.shape)
            g[idx, b, c] = gl
        return value, g

    def distil_loss_and_grad(self, y, target, teacher_logits, temperature: float, alpha: float,
                             ticks: str = "all"):
        """(loss value, dL/dy): ``(1 - alpha)`` times ``loss_and_grad(y, target)`` plus ``alpha``
        times ``soft_target_loss`` of the logits (``logits(y)``: every tick's readout for
        ``per_tick``) toward ``soft_targets(teacher_logits, temperature)`` — the teacher's
        logits of the same shape, or a list of several (an ensemble). With ``per_tick``,
        ``ticks="taught"``: the soft targets only at the ticks that have a label (target >= 0),
        averaged over those; ``"audio"``: at every tick but the padding (target != ``PADDING``);
        ``"all"``: at every tick (``tick_mask``)."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"train.SNN: the distillation weight alpha must be in [0, 1], got {alpha}")
        if ticks not in DISTIL_TICKS or (ticks != "all" and self.loss != "per_tick"):
            raise ValueError(f"train.SNN: distillation ticks must be 'all', or 'taught' or 'audio' with the per_tick "
                             f"loss; got {ticks!r} with the {self.loss!r} loss")
        value, g = self.loss_and_grad(y, target)
        z = self.logits(y)
        q = soft_targets(teacher_logits, temperature)
        if q.shape != z.shape:
            raise ValueError(f"train.SNN: the teacher's logits have shape {q.shape}, the student's {z.shape}")
        weight = None if ticks == "all" else tick_mask(target, ticks, y.shape[1], y.shape[0])
        vs, gz = soft_target_loss(z, q, temperature, weight)
        if self.loss == "per_tick":
            gs = gz
        elif self.loss == "mean":
            gs = np.broadcast_to(gz / y.shape[0], y.shape)
        elif self.loss == "last":
            gs = np.zeros(y.shape)
            gs[-1] = gz
        else:
            raise ValueError(f"train.SNN: distillation takes the per_tick, mean or last loss, not {self.loss!r}")
        return (1 - alpha) * value + alpha * vs, (1 - alpha) * g + alpha * gs

    def backward(self, g, truncate: int | None = None) -> np.ndarray:
        """Gradients of every layer from dL/dy (ticks, batch, classes); returns dL/dx
        (batch, ticks, n_in) for the graph's input (through the DirectCurrent gain)."""
        for layer in reversed(self.layers):
            g = layer.backward(g, truncate=truncate)
        if self.input == "tensor":
            g = g * self.gain
        return g.transpose(1, 0, 2)

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Logits (samples, classes), or (samples, ticks, classes) for ``per_tick``."""
        x = self._check_x(x)
        outs = [self.logits(self.forward(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        if self.loss == "per_tick":
            return np.concatenate([o.transpose(1, 0, 2) for o in outs])
        return np.concatenate(outs)

    def accuracy(self, x, y) -> float:
        p = self.predict(x)
        if self.loss == "per_tick":
            p = p.mean(1)
        return float((p.argmax(1) == np.asarray(y)).mean())

    # -- weights ----------------------------------------------------------------------------
    def get_weights(self) -> list[dict]:
        return [{k: v.copy() for k, v in layer.params.items()} for layer in self.layers]

    def set_weights(self, weights) -> None:
        for layer, d in zip(self.layers, weights):
            for k, v in d.items():
                layer.params[k][...] = v

    # -- training ---------------------------------------------------------------------------
    def fit(self, x, y, *, epochs: int = 10, batch_size: int = 32, optimizer=None,
            truncate: int | None = None, validation=None, lr_schedule: str | None = None,
            augment=None, clip: float | None = 1.0, seed: int | None = None, progress: bool = False,
            log=None, teacher=None, temperature: float = 2.0, alpha: float = 0.5,
            distil_ticks: str = "all") -> dict:
        """Train with shuffled minibatches (seeded). ``validation=(xv, yv)`` keeps the
        weights of the best validation accuracy (or ``validation=score``, a callable
        ``score(net) -> float``, higher is better); ``lr_schedule="cosine"`` anneals the
        learning rate to zero over ``epochs``; ``clip`` bounds the global gradient norm;
        ``augment(xb, rng) -> xb`` transforms each minibatch; ``log(epoch, record)`` is
        called after every epoch. ``teacher(xb) -> logits`` distils (``distil_loss_and_grad``):
        the teacher's output traces (ticks, batch, classes), or a list of several, on each
        minibatch as the student sees it (augmented), the soft targets at ``temperature``
        weighed ``alpha``, at ``distil_ticks``; without a teacher the training is unchanged.
        Returns the history {loss, acc, val_acc, best_epoch}."""
        x = self._check_x(x)
        y = np.asarray(y)
        if len(x) != len(y):
            raise InputError(f"train.SNN.fit: {len(x)} inputs but {len(y)} targets")
        if lr_schedule not in (None, "cosine"):
            raise ValueError(f"train.SNN.fit: lr_schedule must be None or 'cosine', got {lr_schedule!r}")
        if teacher is not None and not (temperature > 0 and 0.0 <= alpha <= 1.0):
            raise ValueError(f"train.SNN.fit: distillation needs temperature > 0 and alpha in [0, 1], got "
                             f"{temperature} and {alpha}")
        rng = np.random.default_rng(self.seed if seed is None else seed)
        opt = optimizer or Adam(1e-3)
        base = opt.lr
        hist = {"loss": [], "acc": [], "val_acc": [], "best_epoch": -1}
        best, best_w = -1.0, None
        for ep in range(epochs):
            if lr_schedule == "cosine":
                opt.lr = cosine_lr(base, ep, epochs)
            tot, correct = 0.0, 0
            for b, xb in minibatches(x, batch_size, rng, augment):
                out = self.forward(xb, train=True)
                if teacher is None:
                    value, g = self.loss_and_grad(out, y[b])
                else:
                    value, g = self.distil_loss_and_grad(out, y[b], teacher(xb), temperature, alpha,
                                                         distil_ticks)
                self.backward(g, truncate=truncate)
                if clip:
                    _clip(self.layers, clip)
                opt.step(self.layers)
                tot += value * len(b)
                if self.loss != "per_tick":
                    correct += int((self.logits(out).argmax(1) == y[b]).sum())
            hist["loss"].append(tot / len(x))
            hist["acc"].append(correct / len(x) if self.loss != "per_tick" else float("nan"))
            if validation is not None:
                va = float(validation(self)) if callable(validation) else self.accuracy(*validation)
                hist["val_acc"].append(va)
                if va > best:
                    best, best_w, hist["best_epoch"] = va, self.get_weights(), ep
            if log is not None:
                log(ep, {k: (v[-1] if isinstance(v, list) and v else v) for k, v in hist.items()})
        opt.lr = base
        if best_w is not None:
            self.set_weights(best_w)
        return hist

    # -- graphs -----------------------------------------------------------------------------
    def to_graph(self, name: str = "snn", input_name: str = "x", output_name: str = "y") -> Graph:
        """The network as a ``tr.Graph``: input -> (DirectCurrent) -> synapses and neurons
        (delay edges for recurrence) -> ``snn.LI`` readout; the output ``y`` is the trace
        the trainer's ``forward`` computes, tick by tick."""
        g = Graph(dt=self.dt, name=name)
        h = g.input(input_name, (self.n_in,), domain=self.input)
        if self.input == "tensor":
            h = g.add(bridge.DirectCurrent(gain=self.gain), h, name="direct")
        k = 0
        for layer in self.layers:
            if isinstance(layer, SpikingLayer):
                k += 1
                h = layer.add_to(g, h, f"{layer.neuron}{k}")
            else:
                h = layer.add_to(g, h, "readout")
        g.output(output_name, h)
        return g


def _clip(layers, max_norm):
    sq = sum(float((g.astype(np.float64) ** 2).sum()) for layer in layers for g in layer.grads.values())
    norm = np.sqrt(sq)
    if norm > max_norm:
        for layer in layers:
            for k in layer.grads:
                layer.grads[k] = (layer.grads[k] * (max_norm / norm)).astype(F32)
