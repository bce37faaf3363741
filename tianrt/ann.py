"""ANN nodes: dataflow layers on the tensor domain; they run when a new input value arrives.

Weight layouts follow PyTorch: Dense (out, in), Conv2d (out, in, kh, kw). Per-sample
shapes: vectors (n,), images (C, H, W).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .domains import CURRENT, TENSOR
from .errors import ShapeError
from .node import Node, as_array, init_uniform, need_rank, pair, register


def conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


@register
@dataclass(eq=False)
class Dense(Node):
    """y = W x + b, W of shape (out_features, in_features)."""
    op = "ann.Dense"
    prefix = "dense"
    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    seed: int = 0

    def __post_init__(self):
        shape = (self.out_features, self.in_features)
        self.weight = (init_uniform(shape, self.in_features, self.seed) if self.weight is None
                       else as_array(self, "weight", self.weight, shape))
        self.bias = (np.zeros(self.out_features, np.float32) if self.bias is None
                     else as_array(self, "bias", self.bias, (self.out_features,)))

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if tuple(s) != (self.in_features,):
            raise ShapeError(f"{self.op} expects input shape ({self.in_features},), got {tuple(s)}"
                             + ("; insert Flatten() first" if int(np.prod(s)) == self.in_features else ""))
        return (self.out_features,)


@register
@dataclass(eq=False)
class Conv2d(Node):
    """2-D convolution (cross-correlation, as in PyTorch), groups=1, zero padding."""
    op = "ann.Conv2d"
    prefix = "conv"
    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    seed: int = 0

    def __post_init__(self):
        self.kernel_size, self.stride, self.padding = (pair(self.kernel_size), pair(self.stride),
                                                       pair(self.padding))
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        fan_in = self.in_channels * kh * kw
        self.weight = (init_uniform(shape, fan_in, self.seed) if self.weight is None
                       else as_array(self, "weight", self.weight, shape))
        self.bias = (np.zeros(self.out_channels, np.float32) if self.bias is None
                     else as_array(self, "bias", self.bias, (self.out_channels,)))

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        need_rank(self.op, s, 3, "(C, H, W)")
        c, h, w = s
        if c != self.in_channels:
            raise ShapeError(f"{self.op} expects {self.in_channels} input channels, got {c}")
        ho = conv_out(h, self.kernel_size[0], self.stride[0], self.padding[0])
        wo = conv_out(w, self.kernel_size[1], self.stride[1], self.padding[1])
        if ho < 1 or wo < 1:
            raise ShapeError(f"{self.op}: input {tuple(s)} is smaller than kernel {self.kernel_size}")
        return (self.out_channels, ho, wo)


@dataclass(eq=False)
class _Pool(Node):
    kernel_size: tuple = (2, 2)
    stride: tuple | None = None
    padding: tuple = (0, 0)

    def __post_init__(self):
        self.kernel_size = pair(self.kernel_size)
        self.stride = self.kernel_size if self.stride is None else pair(self.stride)
        self.padding = pair(self.padding)

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        need_rank(self.op, s, 3, "(C, H, W)")
        c, h, w = s
        ho = conv_out(h, self.kernel_size[0], self.stride[0], self.padding[0])
        wo = conv_out(w, self.kernel_size[1], self.stride[1], self.padding[1])
        if ho < 1 or wo < 1:
            raise ShapeError(f"{self.op}: input {tuple(s)} is smaller than kernel {self.kernel_size}")
        return (c, ho, wo)


@register
@dataclass(eq=False)
class MaxPool2d(_Pool):
    """Max over each window (padding counts as -inf)."""
    op = "ann.MaxPool2d"
    prefix = "maxpool"


@register
@dataclass(eq=False)
class AvgPool2d(_Pool):
    """Mean over each window (zero padding counted, as PyTorch's count_include_pad=True)."""
    op = "ann.AvgPool2d"
    prefix = "avgpool"


@register
@dataclass(eq=False)
class GlobalAvgPool2d(Node):
    """Mean over H and W: (C, H, W) -> (C,)."""
    op = "ann.GlobalAvgPool2d"
    prefix = "gap"

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        need_rank(self.op, s, 3, "(C, H, W)")
        return (s[0],)


@dataclass(eq=False)
class _Elementwise(Node):
    pass


@register
@dataclass(eq=False)
class ReLU(_Elementwise):
    op = "ann.ReLU"
    prefix = "relu"


@register
@dataclass(eq=False)
class ClippedReLU(_Elementwise):
    """min(max(x, 0), max_value): the activation ANN->SNN conversion likes best."""
    op = "ann.ClippedReLU"
    prefix = "crelu"
    max_value: float = 1.0


@register
@dataclass(eq=False)
class Sigmoid(_Elementwise):
    op = "ann.Sigmoid"
    prefix = "sigmoid"


@register
@dataclass(eq=False)
class Tanh(_Elementwise):
    op = "ann.Tanh"
    prefix = "tanh"


@register
@dataclass(eq=False)
class BatchNorm(Node):
    """Inference-mode batch norm over channel axis 0; folded into a preceding Dense/Conv2d
    at build time when that layer feeds nothing else."""
    op = "ann.BatchNorm"
    prefix = "bn"
    num_features: int = 1
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    running_mean: np.ndarray | None = None
    running_var: np.ndarray | None = None
    eps: float = 1e-5

    def __post_init__(self):
        n = (self.num_features,)
        self.weight = np.ones(n, np.float32) if self.weight is None else as_array(self, "weight", self.weight, n)
        self.bias = np.zeros(n, np.float32) if self.bias is None else as_array(self, "bias", self.bias, n)
        self.running_mean = (np.zeros(n, np.float32) if self.running_mean is None
                             else as_array(self, "running_mean", self.running_mean, n))
        self.running_var = (np.ones(n, np.float32) if self.running_var is None
                            else as_array(self, "running_var", self.running_var, n))
        if np.any(self.running_var < 0):
            raise ShapeError(f"{self.op}: running_var must be >= 0")

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """The affine map y = scale * x + shift, per channel."""
        scale = self.weight / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        shift = self.bias - self.running_mean * scale
        return scale.astype(np.float32), shift.astype(np.float32)

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) < 1 or s[0] != self.num_features:
            raise ShapeError(f"{self.op} expects {self.num_features} channels on axis 0, got {tuple(s)}")
        return tuple(s)


@register
@dataclass(eq=False)
class Flatten(Node):
    """(C, H, W) -> (C*H*W,), C-order as PyTorch. Works on any domain."""
    op = "ann.Flatten"
    prefix = "flatten"
    in_domains = (TENSOR, "spike", CURRENT)
    out_domain = None
    in_numeric = "any"
    out_numeric = None

    def out_shape(self, in_shapes):
        return (int(np.prod(in_shapes[0])),)


@register
@dataclass(eq=False)
class Add(Node):
    """Elementwise sum of two or more inputs of one shape (tensor or current domain)."""
    op = "ann.Add"
    prefix = "add"
    in_domains = (TENSOR, CURRENT)
    out_domain = None
    arity = None

    def out_shape(self, in_shapes):
        first = tuple(in_shapes[0])
        for s in in_shapes[1:]:
            if tuple(s) != first:
                raise ShapeError(f"{self.op} needs equal shapes, got {[tuple(x) for x in in_shapes]}")
        return first


@register
@dataclass(eq=False)
class Concat(Node):
    """Concatenation along per-sample axis ``axis`` (any domain, all inputs alike)."""
    op = "ann.Concat"
    prefix = "concat"
    in_domains = (TENSOR, "spike", CURRENT)
    out_domain = None
    in_numeric = "any"
    out_numeric = None
    arity = None
    axis: int = 0

    def out_shape(self, in_shapes):
        first = list(in_shapes[0])
        ax = self.axis if self.axis >= 0 else len(first) + self.axis
        if not 0 <= ax < len(first):
            raise ShapeError(f"{self.op}: axis {self.axis} out of range for shape {tuple(first)}")
        total = 0
        for s in in_shapes:
            s = list(s)
            if len(s) != len(first) or s[:ax] + s[ax + 1:] != first[:ax] + first[ax + 1:]:
                raise ShapeError(f"{self.op}: shapes {[tuple(x) for x in in_shapes]} differ off axis {ax}")
            total += s[ax]
        first[ax] = total
        return tuple(first)


ACTIVATIONS = (ReLU, ClippedReLU, Sigmoid, Tanh)
