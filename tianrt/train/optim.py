"""Optimisers updating parameter arrays in place: SGD with (Nesterov) momentum, and Adam.
Weight decay is L2 (added to the gradient) for SGD and decoupled (AdamW) for Adam when
``decoupled=True``; it applies only to parameters a layer marks for decay (weights,
not biases or norms)."""
from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, lr: float, weight_decay: float = 0.0):
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {weight_decay}")
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.state: dict[int, dict] = {}

    def step(self, layers) -> None:
        for li, layer in enumerate(layers):
            for name, p in layer.params.items():
                g = layer.grads.get(name)
                if g is None:
                    continue
                self._update((li, name), p, g, name in layer.decay)
            if hasattr(layer, "constrain"):
                layer.constrain()

    def _update(self, key, p, g, decay):
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(lr, weight_decay)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, key, p, g, decay):
        if decay and self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = self.state.get(key)
            v = g.copy() if v is None else self.momentum * v + g
            self.state[key] = v
            g = g + self.momentum * v if self.nesterov else v
        p -= (self.lr * g).astype(p.dtype)


class Adam(Optimizer):
    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = True):
        super().__init__(lr, weight_decay)
        self.b1, self.b2 = (float(b) for b in betas)
        self.eps, self.decoupled = float(eps), bool(decoupled)

    def _update(self, key, p, g, decay):
        if decay and self.weight_decay:
            if self.decoupled:
                p -= (self.lr * self.weight_decay * p).astype(p.dtype)
            else:
                g = g + self.weight_decay * p
        st = self.state.setdefault(key, {"t": 0, "m": np.zeros_like(p, np.float64),
                                         "v": np.zeros_like(p, np.float64)})
        st["t"] += 1
        st["m"] = self.b1 * st["m"] + (1 - self.b1) * g
        st["v"] = self.b2 * st["v"] + (1 - self.b2) * g.astype(np.float64) ** 2
        mhat = st["m"] / (1 - self.b1 ** st["t"])
        vhat = st["v"] / (1 - self.b2 ** st["t"])
        p -= (self.lr * mhat / (np.sqrt(vhat) + self.eps)).astype(p.dtype)


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    """The cosine schedule: base * (1 + cos(pi * epoch / epochs)) / 2 (base at epoch 0)."""
    return base * 0.5 * (1 + np.cos(np.pi * epoch / epochs))


def minibatches(x, batch_size: int, rng, augment=None):
    """One epoch's shuffled minibatches: ``(indices, inputs)``, the inputs passed through
    ``augment(xb, rng)`` (float32) when given. The fits of Sequential and SNN share it, so one
    seed draws the same batches and augmentations in both."""
    order = rng.permutation(len(x))
    for i in range(0, len(x), batch_size):
        b = order[i:i + batch_size]
        yield b, (x[b] if augment is None else np.asarray(augment(x[b], rng), np.float32))

