"""The numba backend's fusion pass: which plan entries run together as one op. Plain
Python over the Plan (no numba), so it can be tested and read on its own.

- Chains: every run of ``snn.Dense -> LIF/IF`` pairs, each layer fed by the one before,
  becomes one kernel call per tick (synaptic accumulation, LIF update and spike emission
  for all layers). A LIF joins a chain only with one value per parameter for the layer.
- Epilogues: a float ``ann.Conv2d`` also writes the ``ann.ReLU`` that reads it, and the
  2x2/2 ``ann.MaxPool2d`` that reads that ReLU (one pass and one call less each).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import ann, snn
from ...ops import params


@dataclass
class Fusion:
    chains: dict = field(default_factory=dict)    # first synapse name -> [(synapse entry, lif entry)]
    in_chain: set = field(default_factory=set)    # names of every entry inside a chain
    epilogue: dict = field(default_factory=dict)  # conv name -> the ReLU it also writes
    pools: dict = field(default_factory=dict)     # conv name -> the 2x2/2 MaxPool2d it also writes

    def written_by_producer(self, name: str) -> bool:
        return name in self.epilogue.values() or name in self.pools.values()


def fusable_synapse(e) -> bool:
    return type(e.node) is snn.Dense


def fusable_neuron(e) -> bool:
    n = e.node
    if type(n) is snn.ALIF:
        return all(params.is_scalar(p) for p in (n.beta, n.threshold, n.adapt, n.rho))
    return type(n) in (snn.LIF, snn.IF) and params.is_scalar(n.beta) and params.is_scalar(n.threshold)


def users_of(plan) -> dict:
    users: dict[str, list[str]] = {e.name: [] for e in plan.entries}
    for e in plan.entries:
        for i in e.inputs:
            users[i].append(e.name)
    return users


def fuse(plan, enabled: bool = True) -> Fusion:
    """The fusion of ``plan`` (nothing fused when not ``enabled``)."""
    f = Fusion()
    if not enabled:
        return f
    users = users_of(plan)
    by_name = {e.name: e for e in plan.entries}
    for e in plan.entries:
        if e.name in f.in_chain or not fusable_synapse(e):
            continue
        pairs, cur = [], e
        while fusable_synapse(cur) and cur.name not in f.in_chain:
            lifs = [by_name[u] for u in users[cur.name] if fusable_neuron(by_name[u])]
            if not lifs:
                break
            pairs.append((cur, lifs[0]))
            f.in_chain.update((cur.name, lifs[0].name))
            nxt = [by_name[u] for u in users[lifs[0].name] if fusable_synapse(by_name[u]) and u not in f.in_chain]
            if not nxt:
                break
            cur = nxt[0]
        if pairs:
            f.chains[e.name] = pairs
    for e in plan.entries:
        if type(e.node) is not ann.Conv2d:
            continue
        relus = [u for u in users[e.name] if type(by_name[u].node) is ann.ReLU]
        if not relus:
            continue
        f.epilogue[e.name] = relus[0]
        mps = [u for u in users[relus[0]] if type(by_name[u].node) is ann.MaxPool2d
               and (by_name[u].node.kernel_size, by_name[u].node.stride,
                    by_name[u].node.padding) == ((2, 2), (2, 2), (0, 0))]
        if mps:
            f.pools[e.name] = mps[0]
    return f
