"""The compiler's intermediate units: a layer (a head op and the elementwise nodes fused
into its soma) and a core (one tile of a layer, before placement). tianrt.chip.compiler
makes them, tianrt.chip.mapping turns them into the image."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .sources import Src


@dataclass
class Layer:
    name: str                    # the head node's name (report rows are per layer)
    head: object                 # the head node (None for a pass-through layer)
    entries: list                # plan entries fused into this layer, head first
    inputs: list                 # Src of each head input
    in_domains: list
    per_tick: bool
    out_entry: object = None     # the last fused entry (whose value the layer emits)
    out_buf: int = -1
    cores: list = field(default_factory=list)
    pool: object = None          # a q.MaxPool2d folded into the soma of a convolution's cores


@dataclass
class Core:
    layer: str
    role: str                    # "full", "partial", "merge"
    axons: Src
    n_neurons: int
    out_buf: int
    out_idx: np.ndarray
    dendrite: dict
    stages: list
    axon_mode: str
    soma_mode: str
    weight_bytes: int
    connections: int             # structural synapses (MACs per full evaluation)
    wide_out: bool = False
    id: int = -1
    clock: list = field(default_factory=list)  # buffers whose new values make the core run
