"""Integer (chip) mode nodes (``tr.q``): what a quantized graph is made of.

Every value on a tensor or current edge between these nodes is an integer (int8 range
for ANN activations, int32 for currents and membranes); spikes are 0/1 as in float mode.
``Quantize`` and ``Dequantize`` are the float boundary. The arithmetic of each node is
fixed bit for bit in docs/integer.md (and in the docstring of its family's module in
``tianrt.ops``, where it lives next to its float twin); the numba backend's integer mode
and firmware_sim implement it exactly. ``tr.quantize`` turns a float graph into these.

bridge.SpikeCount (rate=False) and bridge.FirstSpike, ann.Flatten and ann.Concat are exact
on integers and are used as they are in integer graphs.
"""
from .kernels.limits import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, MULT_LIMIT, SHIFT_LIMIT  # noqa: F401
from .ops.activation import Clamp, Lookup  # noqa: F401
from .ops.alif import QALIF as ALIF  # noqa: F401
from .ops.decoders import QMembraneReadout as MembraneReadout  # noqa: F401
from .ops.encoders import QDirectCurrent as DirectCurrent  # noqa: F401
from .ops.encoders import QLatencyEncoder as LatencyEncoder, QRateEncoder as RateEncoder  # noqa: F401
from .ops.li import QLI as LI  # noqa: F401
from .ops.lif import QLIF as LIF  # noqa: F401
from .ops.linear import QConv2d as Conv2d, QDense as Dense  # noqa: F401
from .ops.pool import QAvgPool2d as AvgPool2d, QGlobalAvgPool2d as GlobalAvgPool2d  # noqa: F401
from .ops.pool import QMaxPool2d as MaxPool2d  # noqa: F401
from .ops.qnode import QNode  # noqa: F401
from .ops.synapse import SynConv2d, SynDense, SynRecurrent  # noqa: F401
from .ops.tensor import QAdd as Add, Dequantize, Quantize  # noqa: F401

ANN_OPS = (Dense, Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Clamp, Lookup, Add)
SNN_OPS = (SynDense, SynConv2d, SynRecurrent, LIF, ALIF, LI)
BRIDGE_OPS = (RateEncoder, LatencyEncoder, DirectCurrent, MembraneReadout)
