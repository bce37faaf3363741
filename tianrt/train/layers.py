"""Trainable numpy layers with forward and backward passes (batch axis first).

Each layer keeps what its backward pass needs from the last training forward pass,
holds its parameters in ``params`` and their gradients in ``grads`` (same keys), and
exports itself as ``tr.ann`` nodes (``to_nodes``) so that a trained model is a
``tr.Graph``. Layouts follow PyTorch: Dense (out, in), Conv2d (out, in, kh, kw).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import ann
from ..errors import ShapeError
from ..node import pair

F32 = np.float32


def _kaiming_uniform(shape, fan_in, rng):
    # He init for ReLU networks: U(-b, b), b = sqrt(6 / fan_in)
    bound = np.sqrt(6.0 / max(fan_in, 1))
    return rng.uniform(-bound, bound, size=shape).astype(F32)


class Layer:
    """Base class: stateless unless it defines params."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.decay: set[str] = set()  # parameter names that weight decay applies to

    def init(self, in_shape: tuple, rng: np.random.Generator) -> tuple:
        """Create parameters for per-sample ``in_shape``; return the output shape."""
        self.in_shape = tuple(in_shape)
        self.out_shape = self.shape_of(self.in_shape)
        return self.out_shape

    def shape_of(self, in_shape):
        return in_shape

    def forward(self, x, train: bool = False):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError

    def to_nodes(self) -> list:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Dense(Layer):
    def __init__(self, in_features: int, out_features: int, weight=None, bias=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._given = (weight, bias)
        self.decay = {"weight"}

    def init(self, in_shape, rng):
        if tuple(in_shape) != (self.in_features,):
            raise ShapeError(f"train.Dense({self.in_features}, {self.out_features}) got input shape "
                             f"{tuple(in_shape)}" + ("; add Flatten() first" if int(np.prod(in_shape)) == self.in_features else ""))
        w, b = self._given
        self.params["weight"] = (_kaiming_uniform((self.out_features, self.in_features), self.in_features, rng)
                                 if w is None else np.array(w, F32).reshape(self.out_features, self.in_features))
        self.params["bias"] = np.zeros(self.out_features, F32) if b is None else np.array(b, F32).reshape(-1)
        return super().init(in_shape, rng)

    def shape_of(self, in_shape):
        return (self.out_features,)

    def forward(self, x, train=False):
        if train:
            self.x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, g):
        self.grads["weight"] = (g.T @ self.x).astype(F32)
        self.grads["bias"] = g.sum(0).astype(F32)
        return g @ self.params["weight"]

    def to_nodes(self):
        return [ann.Dense(self.in_features, self.out_features, weight=self.params["weight"],
                          bias=self.params["bias"])]

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"


def _pad(x, ph, pw, fill=0.0):
    if ph or pw:
        return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return x


def _windows(x, k, s):
    return sliding_window_view(x, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]  # B C Ho Wo kh kw


def _scatter_windows(gw, in_padded_shape, k, s):
    """Adjoint of _windows: add window gradients (B, C, Ho, Wo, kh, kw) back into the input."""
    gx = np.zeros(in_padded_shape, gw.dtype)
    ho, wo = gw.shape[2], gw.shape[3]
    for i in range(k[0]):
        for j in range(k[1]):
            gx[:, :, i:i + s[0] * ho:s[0], j:j + s[1] * wo:s[1]] += gw[:, :, :, :, i, j]
    return gx


def _unpad(x, ph, pw):
    return x[:, :, ph:x.shape[2] - ph, pw:x.shape[3] - pw]


class Conv2d(Layer):
    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=0,
                 weight=None, bias=None):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        self._given = (weight, bias)
        self.decay = {"weight"}

    def shape_of(self, in_shape):
        node = ann.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                          weight=np.zeros((self.out_channels, self.in_channels) + self.kernel_size))
        try:
            return node.out_shape([in_shape])
        except ShapeError as exc:
            raise ShapeError(f"train.{exc}") from None

    def init(self, in_shape, rng):
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        w, b = self._given
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.params["weight"] = _kaiming_uniform(shape, fan_in, rng) if w is None else np.array(w, F32).reshape(shape)
        self.params["bias"] = np.zeros(self.out_channels, F32) if b is None else np.array(b, F32).reshape(-1)
        return super().init(in_shape, rng)

    def forward(self, x, train=False):
        xp = _pad(x, *self.padding)
        win = _windows(xp, self.kernel_size, self.stride)
        if train:
            self.win, self.xp_shape = win, xp.shape
        y = np.einsum("bchwij,ocij->bohw", win, self.params["weight"], optimize=True)
        return y + self.params["bias"][None, :, None, None]

    def backward(self, g):
        self.grads["weight"] = np.einsum("bohw,bchwij->ocij", g, self.win, optimize=True).astype(F32)
        self.grads["bias"] = g.sum((0, 2, 3)).astype(F32)
        gw = np.einsum("bohw,ocij->bchwij", g, self.params["weight"], optimize=True)
        return _unpad(_scatter_windows(gw, self.xp_shape, self.kernel_size, self.stride), *self.padding)

    def to_nodes(self):
        return [ann.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                           weight=self.params["weight"], bias=self.params["bias"])]

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding})")


class _Pool(Layer):
    node_cls = ann.AvgPool2d

    def __init__(self, kernel_size=2, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = self.kernel_size if stride is None else pair(stride)
        self.padding = pair(padding)

    def shape_of(self, in_shape):
        return self.node_cls(self.kernel_size, self.stride, self.padding).out_shape([in_shape])

    def to_nodes(self):
        return [self.node_cls(self.kernel_size, self.stride, self.padding)]

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class AvgPool2d(_Pool):
    """Mean over each window, zero padding counted (PyTorch count_include_pad=True)."""
    node_cls = ann.AvgPool2d

    def forward(self, x, train=False):
        xp = _pad(x, *self.padding)
        if train:
            self.xp_shape = xp.shape
        return _windows(xp, self.kernel_size, self.stride).mean(axis=(-2, -1))

    def backward(self, g):
        kh, kw = self.kernel_size
        gw = np.broadcast_to((g / (kh * kw))[..., None, None], g.shape + (kh, kw))
        return _unpad(_scatter_windows(gw, self.xp_shape, self.kernel_size, self.stride), *self.padding)


class MaxPool2d(_Pool):
    """Max over each window; the gradient goes to the first maximum of each window."""
    node_cls = ann.MaxPool2d

    def forward(self, x, train=False):
        xp = _pad(x, *self.padding, fill=-np.inf)
        win = _windows(xp, self.kernel_size, self.stride)
        flat = win.reshape(win.shape[:4] + (-1,))
        if train:
            self.xp_shape, self.arg = xp.shape, flat.argmax(-1)
        return flat.max(-1)

    def backward(self, g):
        kh, kw = self.kernel_size
        onehot = np.zeros(g.shape + (kh * kw,), g.dtype)
        np.put_along_axis(onehot, self.arg[..., None], g[..., None], axis=-1)
        gw = onehot.reshape(g.shape + (kh, kw))
        return _unpad(_scatter_windows(gw, self.xp_shape, self.kernel_size, self.stride), *self.padding)


class GlobalAvgPool2d(Layer):
    def shape_of(self, in_shape):
        return ann.GlobalAvgPool2d().out_shape([in_shape])

    def forward(self, x, train=False):
        if train:
            self.hw = x.shape[2:]
        return x.mean(axis=(2, 3))

    def backward(self, g):
        h, w = self.hw
        return np.broadcast_to((g / (h * w))[:, :, None, None], g.shape + (h, w)).copy()

    def to_nodes(self):
        return [ann.GlobalAvgPool2d()]


class Flatten(Layer):
    def shape_of(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, train=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, g):
        return g.reshape((g.shape[0],) + self.in_shape)

    def to_nodes(self):
        return [ann.Flatten()]


class ReLU(Layer):
    def forward(self, x, train=False):
        if train:
            self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, g):
        return g * self.mask

    def to_nodes(self):
        return [ann.ReLU()]


class ClippedReLU(Layer):
    """min(max(x, 0), max_value). With ``levels=L`` the forward pass is also quantised to
    L steps (floor(x L / max + 1/2) / L * max, clipped: the quantisation-clip-floor-shift
    activation of Bu et al., ICLR 2022) with a straight-through gradient, and with
    ``trainable=True`` max_value is learnt; both make the ANN convert well at small T.
    It exports as ``ann.ClippedReLU(max_value)``."""

    def __init__(self, max_value: float = 1.0, levels: int | None = None, trainable: bool = False):
        super().__init__()
        if not float(max_value) > 0:
            raise ValueError(f"train.ClippedReLU: max_value must be > 0, got {max_value}")
        if levels is not None and int(levels) < 1:
            raise ValueError(f"train.ClippedReLU: levels must be >= 1 or None, got {levels}")
        self.levels = None if levels is None else int(levels)
        self.trainable = bool(trainable)
        self._lam = np.array([max_value], F32)
        if self.trainable:
            self.params["max_value"] = self._lam  # same array: the optimizer updates it in place

    @property
    def max_value(self) -> float:
        return float(self.params.get("max_value", self._lam)[0])

    def forward(self, x, train=False):
        lam = self.params.get("max_value", self._lam)[0]
        u = x / lam
        if self.levels is not None:
            q = np.clip(np.floor(u * self.levels + 0.5) / self.levels, 0, 1)
        else:
            q = np.clip(u, 0, 1)
        if train:
            self.u, self.q = u, q
        return q * lam

    def backward(self, g):
        inside = (self.u > 0) & (self.u < 1)
        if self.trainable:
            # d(lam * q(x / lam)) / d lam with the straight-through q' = 1 inside (0, 1)
            dl = np.where(inside, self.q - self.u, self.q)
            self.grads["max_value"] = np.array([(g * dl).sum()], F32)
        return g * inside

    def to_nodes(self):
        return [ann.ClippedReLU(max_value=self.max_value)]

    def __repr__(self):
        return f"ClippedReLU({self.max_value:.4g}, levels={self.levels}, trainable={self.trainable})"


class Sigmoid(Layer):
    def forward(self, x, train=False):
        y = 1.0 / (1.0 + np.exp(-x))
        if train:
            self.y = y
        return y

    def backward(self, g):
        return g * self.y * (1 - self.y)

    def to_nodes(self):
        return [ann.Sigmoid()]


class Tanh(Layer):
    def forward(self, x, train=False):
        y = np.tanh(x)
        if train:
            self.y = y
        return y

    def backward(self, g):
        return g * (1 - self.y ** 2)

    def to_nodes(self):
        return [ann.Tanh()]


class BatchNorm(Layer):
    """Batch statistics in training, running statistics in inference; over axis 1 (channels)
    of (B, C) or (B, C, H, W). Exports as ``ann.BatchNorm``, which tianrt folds at build."""

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.momentum, self.eps = int(num_features), float(momentum), float(eps)
        n = self.num_features
        self.params = {"weight": np.ones(n, F32), "bias": np.zeros(n, F32)}
        self.running_mean, self.running_var = np.zeros(n, F32), np.ones(n, F32)

    def shape_of(self, in_shape):
        return ann.BatchNorm(self.num_features).out_shape([in_shape])

    def _axes(self, x):
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def _c(self, v, ndim):
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x, train=False):
        ax = self._axes(x)
        if train:
            mean, var = x.mean(ax), x.var(ax)
            n = x.size // x.shape[1]
            m = self.momentum
            self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(F32)
            self.running_var = ((1 - m) * self.running_var + m * var * n / max(n - 1, 1)).astype(F32)
        else:
            mean, var = self.running_mean, self.running_var
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - self._c(mean, x.ndim)) * self._c(inv, x.ndim)
        if train:
            self.xhat, self.inv = xhat, inv
        return xhat * self._c(self.params["weight"], x.ndim) + self._c(self.params["bias"], x.ndim)

    def backward(self, g):
        ax, nd = self._axes(g), g.ndim
        self.grads["weight"] = (g * self.xhat).sum(ax).astype(F32)
        self.grads["bias"] = g.sum(ax).astype(F32)
        gx = g * self._c(self.params["weight"], nd)
        n = g.size // g.shape[1]
        return (self._c(self.inv, nd) / n) * (n * gx - gx.sum(ax, keepdims=True)
                                              - self.xhat * (gx * self.xhat).sum(ax, keepdims=True))

    def to_nodes(self):
        return [ann.BatchNorm(self.num_features, weight=self.params["weight"], bias=self.params["bias"],
                              running_mean=self.running_mean, running_var=self.running_var, eps=self.eps)]


class Dropout(Layer):
    """Inverted dropout (identity at inference; exports nothing)."""

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"train.Dropout: p must be in [0, 1), got {p}")
        self.p, self.rng = float(p), np.random.default_rng(seed)

    def forward(self, x, train=False):
        if not train or self.p == 0:
            self.mask = None
            return x
        self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask

    def backward(self, g):
        return g if self.mask is None else g * self.mask

    def to_nodes(self):
        return []


def _clip_positive(layer):
    if "max_value" in layer.params:
        np.maximum(layer.params["max_value"], F32(1e-3), out=layer.params["max_value"])


ClippedReLU.constrain = _clip_positive
