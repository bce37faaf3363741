"""Surrogate gradients for the spike nonlinearity s = H(x), x = v - theta (membrane minus
threshold), as used by ``tr.train``'s BPTT (``train.snn``).

The forward pass keeps the exact step H(x) (so the trained network's spikes are the
runtime's); the backward pass replaces H'(x) = delta(x) by the derivative of a smooth
step ``primitive(x)`` that rises from 0 to 1, so every surrogate integrates to 1:

| surrogate            | primitive p(x)                          | derivative p'(x)              |
|----------------------|-----------------------------------------|-------------------------------|
| FastSigmoid(slope=k) | 1/2 + k x / (2 (1 + k abs(x)))          | k / (2 (1 + k abs(x))^2)      |
| Arctan(alpha=a)      | 1/2 + arctan(pi a x / 2) / pi           | a / (2 (1 + (pi a x / 2)^2))  |
| Triangle(width=w)    | piecewise quadratic, 0 below -w, 1 above w | max(0, 1 - abs(x) / w) / w |

(FastSigmoid is Zenke & Ganguli's SuperSpike surrogate; Arctan is Fang et al.'s; Triangle
is Bellec et al.'s piecewise-linear pseudo-derivative.) ``primitive`` is what the trainer
uses instead of H in its *smooth* mode, where the network is an ordinary differentiable
function whose BPTT gradient equals finite differences exactly (tests/test_train_snn.py).
"""
from __future__ import annotations

import numpy as np


class Surrogate:
    name = "surrogate"

    def primitive(self, x):
        raise NotImplementedError

    def grad(self, x):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class FastSigmoid(Surrogate):
    name = "fast_sigmoid"

    def __init__(self, slope: float = 10.0):
        if not slope > 0:
            raise ValueError(f"FastSigmoid: slope must be > 0, got {slope}")
        self.slope = float(slope)

    def primitive(self, x):
        k = self.slope
        return 0.5 + 0.5 * k * x / (1.0 + k * np.abs(x))

    def grad(self, x):
        k = self.slope
        return 0.5 * k / (1.0 + k * np.abs(x)) ** 2


class Arctan(Surrogate):
    name = "arctan"

    def __init__(self, alpha: float = 2.0):
        if not alpha > 0:
            raise ValueError(f"Arctan: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def primitive(self, x):
        return 0.5 + np.arctan(0.5 * np.pi * self.alpha * x) / np.pi

    def grad(self, x):
        a = self.alpha
        return 0.5 * a / (1.0 + (0.5 * np.pi * a * x) ** 2)


class Triangle(Surrogate):
    name = "triangle"

    def __init__(self, width: float = 1.0):
        if not width > 0:
            raise ValueError(f"Triangle: width must be > 0, got {width}")
        self.width = float(width)

    def primitive(self, x):
        w = self.width
        y = np.clip(x / w, -1.0, 1.0)
        return np.where(y < 0, 0.5 * (1 + y) ** 2, 1.0 - 0.5 * (1 - y) ** 2)

    def grad(self, x):
        w = self.width
        return np.maximum(0.0, 1.0 - np.abs(x) / w) / w


SURROGATES = {"fast_sigmoid": FastSigmoid, "arctan": Arctan, "triangle": Triangle}


def get(spec) -> Surrogate:
    """A surrogate from an instance or a name ("fast_sigmoid", "arctan", "triangle")."""
    if isinstance(spec, Surrogate):
        return spec
    if spec in SURROGATES:
        return SURROGATES[spec]()
    raise ValueError(f"unknown surrogate {spec!r}; use one of {', '.join(SURROGATES)} or an instance")
