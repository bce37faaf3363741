"""SNN nodes (``tr.snn``): synapses (spike or current in, current out) and neurons (current
in, spikes out), all stepping every tick and keeping state; probes read a neuron's state.
Equations: docs/semantics.md and each family's module in ``tianrt.ops``.
"""
from .ops.alif import ALIF  # noqa: F401
from .ops.li import LI  # noqa: F401
from .ops.lif import IF, LIF, RESETS  # noqa: F401
from .ops.probe import Probe  # noqa: F401
from .ops.synapse import Conv2d, Dense, Recurrent  # noqa: F401

NEURONS = (LIF, IF, ALIF, LI)
SYNAPSES = (Dense, Conv2d, Recurrent)

__all__ = ["Dense", "Conv2d", "Recurrent", "LIF", "IF", "ALIF", "LI", "Probe", "RESETS", "NEURONS", "SYNAPSES"]
