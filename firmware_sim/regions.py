"""One chip split into regions: a rectangle of the mesh per network, each with its own engine.

The board's side of LOAD_REGIONS (docs/protocol.md, 3d): the layout is checked against the
chip (inside its mesh, no core in two regions); each region gets an engine built to a
``ChipSpec`` of its rectangle's size, so an image compiled for a larger rectangle is refused by
the engine's own capacity check, and the image's routes stay inside the rectangle. Regions
share no core and no link; each keeps its own tick, state, outputs and counters, as the
networks of the brain run at their own rates. Never imports the runtime.
"""
from __future__ import annotations

import tianrt.chip.protocol as P
from tianrt.chip import regionwire


class Regions:
    def __init__(self, payload: bytes, spec: dict, make_engine):
        self.layout = regionwire.read_layout(payload, (spec["mesh_rows"], spec["mesh_cols"]))
        self.engines = [make_engine({**spec, "mesh_rows": rows, "mesh_cols": cols})
                        for _, _, _, rows, cols in self.layout]

    def __len__(self) -> int:
        return len(self.layout)

    def describe(self) -> list[dict]:
        return [{"name": name, "origin": [row, col], "size": [rows, cols], "image": eng.info()}
                for (name, row, col, rows, cols), eng in zip(self.layout, self.engines)]

    def reset(self) -> None:
        for e in self.engines:
            e.reset()

    def reset_counters(self) -> None:
        for e in self.engines:
            e.reset_counters()

    def counters(self) -> dict:
        """The chip's counters: each region's summed; maxima and the time (regions run side by
        side) are the largest region's."""
        out: dict = {}
        for e in self.engines:
            for k, v in e.counters().items():
                if k.endswith("_max") or k in ("time_s", "link_max_packets"):
                    out[k] = max(out.get(k, 0.0), v)
                elif not k.endswith("_mean"):
                    out[k] = out.get(k, 0.0) + v
        out["regions"] = float(len(self.engines))
        return out

    def refuse(self, cmd: int):
        raise P.ProtocolError(P.E_NO_IMAGE, f"{P.COMMAND_NAMES[cmd]}: the chip is split into regions "
                              f"({', '.join(x[0] for x in self.layout)}); address the command to one of "
                              f"them (REGION), or load a whole-chip image")
