"""ANN nodes (``tr.ann``): dataflow layers on the tensor domain; they run when a new input
value arrives. Weight layouts follow PyTorch: Dense (out, in), Conv2d (out, in, kh, kw).
Per-sample shapes: vectors (n,), images (C, H, W).

The nodes live with their operations in ``tianrt.ops`` (one module per family); this
module is the public namespace.
"""
from .node import Node  # noqa: F401
from .ops.activation import ACTIVATIONS, BatchNorm, ClippedReLU, ReLU, Sigmoid, Tanh  # noqa: F401
from .ops.linear import Conv2d, Dense, conv_out  # noqa: F401
from .ops.pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d  # noqa: F401
from .ops.tensor import Add, Concat, Flatten  # noqa: F401

__all__ = ["Dense", "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "ReLU", "ClippedReLU",
           "Sigmoid", "Tanh", "BatchNorm", "Flatten", "Add", "Concat", "ACTIVATIONS"]
