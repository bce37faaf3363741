"""The mapping report: what the compiler did with each layer and what it expects to cost."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class LayerRow:
    layer: str
    op: str
    fused: list               # names of the nodes fused into the layer's soma
    modes: str                # "ann", "snn" or "ann->snn" / "snn->ann" (converter cores)
    cores: int
    partial_cores: int
    merge_cores: int
    neurons: int
    axons: int
    weight_bytes: int
    neuron_util: float        # neurons used / neuron slots of the layer's cores
    axon_util: float


@dataclass
class MappingReport:
    name: str
    mesh: tuple
    cores_used: int
    cores_total: int
    layers: list = field(default_factory=list)
    neuron_util: float = 0.0
    axon_util: float = 0.0
    weight_util: float = 0.0
    rounds_per_tick: int = 0
    hops_per_tick: int = 0            # upper bound: every core sends every value once
    worst_link_packets: int = 0       # packets per tick on the busiest link (same bound)
    worst_link: str = ""
    placement_cost: float = 0.0       # traffic x hops of the chosen placement
    greedy_cost: float = 0.0
    random_cost: float = 0.0          # mean over random placements
    cycles_per_tick: float = 0.0      # upper bound (all axons active)
    latency_per_tick_us: float = 0.0
    energy_per_tick_nj: float = 0.0
    ticks_per_inference: int = 1
    latency_per_inference_us: float = 0.0
    energy_per_inference_nj: float = 0.0
    image_bytes: int = 0

    @property
    def placement_gain(self) -> float:
        """Random placement cost / chosen placement cost (> 1 is better than random)."""
        return self.random_cost / self.placement_cost if self.placement_cost else 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["placement_gain"] = self.placement_gain
        return d

    def __str__(self) -> str:
        rows = [("layer", "op", "modes", "cores", "split", "neurons", "axons", "weights", "util n/a")]
        for r in self.layers:
            split = f"{r.partial_cores}+{r.merge_cores}m" if r.merge_cores else "-"
            rows.append((r.layer + (f" (+{','.join(r.fused)})" if r.fused else ""), r.op, r.modes,
                         str(r.cores), split, str(r.neurons), str(r.axons), f"{r.weight_bytes:,}",
                         f"{r.neuron_util:.0%}/{r.axon_util:.0%}"))
        widths = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
        lines = [f"mapping of {self.name!r} onto a {self.mesh[0]}x{self.mesh[1]} mesh: "
                 f"{self.cores_used}/{self.cores_total} cores, image {self.image_bytes:,} bytes"]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [
            f"utilisation: neurons {self.neuron_util:.1%}, axons {self.axon_util:.1%}, "
            f"weight memory {self.weight_util:.1%} of the cores used",
            f"schedule: {self.rounds_per_tick} round(s) per tick",
            f"routing (XY, multicast): {self.hops_per_tick:,} hops per tick, worst link "
            f"{self.worst_link or '-'} with {self.worst_link_packets:,} packets per tick (every value sent)",
            f"placement: traffic x hops {self.placement_cost:,.0f} (greedy {self.greedy_cost:,.0f}, "
            f"random {self.random_cost:,.0f}: {self.placement_gain:.2f}x better than random)",
            f"estimate (upper bound, all axons active): {self.cycles_per_tick:,.0f} cycles = "
            f"{self.latency_per_tick_us:.2f} us and {self.energy_per_tick_nj:.2f} nJ per tick; "
            f"per inference of {self.ticks_per_inference} tick(s): {self.latency_per_inference_us:.2f} us, "
            f"{self.energy_per_inference_nj:.2f} nJ",
        ]
        return "\n".join(lines)
