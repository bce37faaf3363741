"""The edge domains of a hybrid graph.

- ``tensor``: multi-bit values that arrive as events ("a new value at tick t"); ANN nodes
  run when one of their inputs has a new value.
- ``spike``: a binary vector every tick.
- ``current``: a multi-bit value every tick on the spiking side (synapse -> neuron).

``spike`` and ``current`` are the per-tick (SNN) side; ``tensor`` is the event-driven
(ANN) side. Crossing between the two sides needs a bridge (an encoder or a decoder).
"""

TENSOR = "tensor"
SPIKE = "spike"
CURRENT = "current"
DOMAINS = (TENSOR, SPIKE, CURRENT)
PER_TICK = (SPIKE, CURRENT)


def side(domain: str) -> str:
    """'ann' for the tensor domain, 'snn' for the per-tick domains."""
    return "ann" if domain == TENSOR else "snn"
