"""Operations, one module per family: each holds the float node and its integer twin, the
state they keep, the numpy rule the reference backend runs, the quantisation rule, and the
chip record the compiler writes and the emulator reads. Backends and tools find the
implementations by node type (``tianrt.ops.registry``). docs/architecture.md shows how to
add one.

| module       | nodes                                                                   |
|--------------|-------------------------------------------------------------------------|
| linear       | ann.Dense, ann.Conv2d, q.Dense, q.Conv2d                                |
| synapse      | snn.Dense, snn.Conv2d, snn.Recurrent, q.SynDense, q.SynConv2d, q.SynRecurrent |
| pool         | ann.MaxPool2d, ann.AvgPool2d, ann.GlobalAvgPool2d and their q twins     |
| activation   | ann.ReLU, ClippedReLU, Sigmoid, Tanh, BatchNorm, q.Clamp, q.Lookup      |
| tensor       | ann.Flatten, ann.Add, ann.Concat, q.Add, q.Quantize, q.Dequantize       |
| lif          | snn.LIF, snn.IF, q.LIF                                                  |
| alif         | snn.ALIF, q.ALIF (adaptive threshold)                                   |
| li           | snn.LI, q.LI                                                            |
| encoders     | bridge.RateEncoder, PoissonEncoder, LatencyEncoder, DirectCurrent, q twins |
| decoders     | bridge.SpikeCount, MembraneReadout, FirstSpike, q.MembraneReadout       |
| probe        | snn.Probe (a state field as an output)                                  |
"""
from . import (activation, alif, decoders, encoders, li, lif, linear, pool, probe,  # noqa: F401
               synapse, tensor)
from .registry import find, implements, registered  # noqa: F401
