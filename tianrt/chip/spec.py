"""ChipSpec: the target a graph is compiled for (mesh, per-core limits, timing, energy).

Defaults follow the Tianjic chip (Pei et al., "Towards artificial general intelligence with
hybrid Tianjic chip architecture", Nature 572, 106-111, 2019); docs/chip.md cites each one
and says which values are this project's assumptions. Dependency-free so that the
emulator (firmware_sim) can read a spec dict without the graph modules.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


class SpecError(ValueError):
    """A ChipSpec field with an impossible value (names the field and the allowed range)."""


@dataclass(frozen=True)
class ChipSpec:
    """A many-core chip of unified cores on a 2-D mesh. All fields are configurable."""

    mesh_rows: int = 12                 # Tianjic: 156 functional cores on a 12 x 13 mesh
    mesh_cols: int = 13
    axons_per_core: int = 256           # fan-in per core
    neurons_per_core: int = 256         # fan-out per core
    weight_bytes_per_core: int = 65536  # 256 x 256 int8 crossbar (about 10 M synapses per chip)
    clock_hz: float = 300e6             # 300 MHz, globally synchronous rounds
    macs_per_cycle: int = 16            # assumption: 256x256 MACs in ~4096 of a ~5050-cycle round
    syn_events_per_cycle: int = 16      # assumption: same datapath for integrations
    soma_cycles_per_neuron: float = 0.25  # assumption: 4 soma lanes
    router_cycles_per_hop: int = 1      # assumption: one cycle per link traversal
    router_cycles_per_packet: int = 1   # assumption: one packet per cycle per router port
    energy_per_mac_pj: float = 0.78     # 1 / 1.28 TOPS/W (ANN mode)
    energy_per_syn_event_pj: float = 1.54  # 1 / 650 GSOPS/W (SNN mode)
    energy_per_hop_pj: float = 0.5      # assumption: one packet over one link
    energy_per_neuron_update_pj: float = 0.1  # assumption: one soma update

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SpecError(f"ChipSpec.{f.name} must be a number, got {v!r}")
            if f.type == "int" and int(v) != v:
                raise SpecError(f"ChipSpec.{f.name} must be an integer, got {v!r}")
            if f.name.startswith("energy") or f.name == "soma_cycles_per_neuron":
                if v < 0:
                    raise SpecError(f"ChipSpec.{f.name} must be >= 0, got {v!r}")
            elif not v > 0:
                raise SpecError(f"ChipSpec.{f.name} must be > 0, got {v!r}")
        if self.axons_per_core > 65535 or self.neurons_per_core > 65535:
            raise SpecError("ChipSpec: axons_per_core and neurons_per_core must be <= 65535")
        if self.mesh_rows * self.mesh_cols > 65535:
            raise SpecError("ChipSpec: at most 65535 cores (mesh_rows * mesh_cols)")

    @property
    def n_cores(self) -> int:
        return self.mesh_rows * self.mesh_cols

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ChipSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"ChipSpec: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str) -> "ChipSpec":
        """A named ChipSpec: "default" (a 256x256 int8 crossbar per core, 64 KiB of weights)
        or "tianjic-sram" (22 KiB of weight SRAM per core, as quoted for a Tianjic FCore;
        docs/chip.md)."""
        if name not in PRESETS:
            raise SpecError(f"ChipSpec preset {name!r} is not one of {sorted(PRESETS)}")
        return cls(**PRESETS[name])

    def with_mesh(self, text: str) -> "ChipSpec":
        """A copy with the mesh given as 'ROWSxCOLS' (e.g. '12x13')."""
        try:
            r, c = (int(p) for p in text.lower().split("x"))
        except ValueError:
            raise SpecError(f"mesh must look like 12x13 (rows x cols), got {text!r}") from None
        return ChipSpec.from_dict({**self.to_dict(), "mesh_rows": r, "mesh_cols": c})


PRESETS = {
    "default": {},
    "tianjic-sram": {"weight_bytes_per_core": 22 * 1024},   # ~22 KB SRAM per FCore (survey, 2022)
}
