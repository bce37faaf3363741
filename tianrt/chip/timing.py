"""The timing and energy model of the chip, shared by the compiler's estimates and the
emulator's counters (numbers only, no graph; ``spec`` is ``ChipSpec.to_dict()``, the one
chip spec of tianrt.chip.spec); docs/chip.md states the model and its sources.

A tick is a sequence of globally synchronous rounds. In a round every scheduled core
computes (dendrite: MACs or synaptic events at ``macs_per_cycle`` / ``syn_events_per_cycle``;
soma: ``soma_cycles_per_neuron`` per neuron), then the router moves the round's packets:
each core injects one packet per ``router_cycles_per_packet`` and a packet needs
``router_cycles_per_hop`` per link of its multicast tree. The round lasts as long as its
slowest core plus its slowest sender.
"""
from __future__ import annotations

import math

def compute_cycles(spec: dict, macs: float, syn_events: float, neurons: float) -> float:
    """Busy cycles of one core in one round."""
    return (math.ceil(macs / spec["macs_per_cycle"]) + math.ceil(syn_events / spec["syn_events_per_cycle"])
            + math.ceil(neurons * spec["soma_cycles_per_neuron"]))


def route_cycles(spec: dict, packets: float, links: int) -> float:
    """Cycles a core needs to send ``packets`` over a multicast tree of ``links`` links."""
    if packets <= 0:
        return 0.0
    return packets * spec["router_cycles_per_packet"] + links * spec["router_cycles_per_hop"]


def energy_pj(spec: dict, macs: float, syn_events: float, hops: float, neuron_updates: float) -> float:
    return (macs * spec["energy_per_mac_pj"] + syn_events * spec["energy_per_syn_event_pj"]
            + hops * spec["energy_per_hop_pj"] + neuron_updates * spec["energy_per_neuron_update_pj"])
