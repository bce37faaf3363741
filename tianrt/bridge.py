"""Bridges (``tr.bridge``) between the tensor (ANN) side and the per-tick (SNN) side.

Encoders (tensor -> spike/current) read the latest tensor value every tick; decoders
(spike/current -> tensor) emit a tensor event at the end of each window. Windows and
encoder phases count ticks from reset. Definitions: docs/semantics.md, and the modules
``tianrt.ops.encoders`` / ``tianrt.ops.decoders`` where they live.
"""
from .ops.decoders import Decoder, FirstSpike, MembraneReadout, SpikeCount  # noqa: F401
from .ops.encoders import DirectCurrent, Encoder, LatencyEncoder, PoissonEncoder, RateEncoder  # noqa: F401

ENCODERS = (RateEncoder, PoissonEncoder, LatencyEncoder, DirectCurrent)
DECODERS = (SpikeCount, MembraneReadout, FirstSpike)

__all__ = ["RateEncoder", "PoissonEncoder", "LatencyEncoder", "DirectCurrent", "SpikeCount",
           "MembraneReadout", "FirstSpike", "Encoder", "Decoder", "ENCODERS", "DECODERS"]
