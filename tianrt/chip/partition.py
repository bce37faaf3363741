"""Several graphs on one chip: each compiled onto its own rectangle (region) of the mesh.

``compile_many({name: qgraph, ...}, spec)`` counts the cores each graph needs (a compile on
the whole mesh), refuses when they add up to more than the chip has (saying by how much),
packs one rectangle per graph into the mesh (largest first, guillotine cuts, least waste), and
compiles each graph again onto its rectangle — a ``ChipSpec`` of the rectangle's size, so
that placement and XY routing stay inside it: a route between two cores of one rectangle
never leaves it, so the regions share no core and no link and run side by side without
disturbing one another. Each region keeps its own image (core positions relative to the
region's corner) and its own MappingReport; the partition adds the offsets and the host
traffic's extra hops (the host link enters west of core (0, 0) of the chip, so a region at
(r, c) is r + c hops further from it than its own report assumes).

docs/chip.md (Several graphs on one chip) explains the choice against composing one graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import CapacityError, CompileError
from .report import MappingReport
from .spec import ChipSpec


@dataclass
class Region:
    name: str
    row: int                 # the region's top-left core on the chip's mesh
    col: int
    rows: int
    cols: int
    image: bytes = field(repr=False)
    report: MappingReport = field(repr=False)
    host_values_per_tick: int = 0   # values to and from the host link per tick (upper bound)

    @property
    def cores(self) -> int:
        return self.rows * self.cols

    @property
    def host_extra_hops(self) -> int:
        """Hops per tick the host's values travel from the chip's host port to the region's corner."""
        return self.host_values_per_tick * (self.row + self.col)


@dataclass
class Partition:
    spec: ChipSpec
    regions: list

    @property
    def cores_used(self) -> int:
        return sum(r.report.cores_used for r in self.regions)

    @property
    def cores_reserved(self) -> int:
        return sum(r.cores for r in self.regions)

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(f"no region {name!r}; regions: {[r.name for r in self.regions]}")

    def to_dict(self) -> dict:
        return {"mesh": [self.spec.mesh_rows, self.spec.mesh_cols], "cores_total": self.spec.n_cores,
                "cores_used": self.cores_used, "cores_reserved": self.cores_reserved,
                "regions": [{"name": r.name, "origin": [r.row, r.col], "size": [r.rows, r.cols],
                             "host_extra_hops_per_tick": r.host_extra_hops, "report": r.report.to_dict()}
                            for r in self.regions]}

    def __str__(self) -> str:
        s = self.spec
        lines = [f"{len(self.regions)} graph(s) on one {s.mesh_rows}x{s.mesh_cols} mesh: {self.cores_used}/"
                 f"{s.n_cores} cores used, {self.cores_reserved} in their regions"]
        for r in self.regions:
            rep = r.report
            lines.append(f"  {r.name}: region {r.rows}x{r.cols} at ({r.row},{r.col}), {rep.cores_used} cores, "
                         f"{rep.cycles_per_tick:,.0f} cycles and {rep.energy_per_tick_nj:.2f} nJ per tick")
        grid = [["." for _ in range(s.mesh_cols)] for _ in range(s.mesh_rows)]
        for i, r in enumerate(self.regions):
            mark = chr(ord("A") + i) if i < 26 else "#"
            for y in range(r.row, r.row + r.rows):
                for x in range(r.col, r.col + r.cols):
                    grid[y][x] = mark
        lines += ["  " + "".join(row) for row in grid]
        lines.append("  (" + ", ".join(f"{chr(ord('A') + i)} = {r.name}" for i, r in enumerate(self.regions[:26]))
                     + ")")
        return "\n".join(lines)


def _sub_spec(spec: ChipSpec, rows: int, cols: int) -> ChipSpec:
    return ChipSpec.from_dict({**spec.to_dict(), "mesh_rows": rows, "mesh_cols": cols})


def pack(sizes: dict, rows: int, cols: int) -> dict:
    """One rectangle per item of ``sizes`` (name -> cores) in a rows x cols mesh: {name: (row,
    col, h, w)} with h * w >= size. Largest first; each takes the free rectangle and shape
    with the least waste, and the rest of that free rectangle is cut in two (guillotine).
    Raises CapacityError when they do not fit as rectangles."""
    free = [(0, 0, rows, cols)]
    out = {}
    for name in sorted(sizes, key=lambda k: (-sizes[k], k)):
        n = int(sizes[name])
        best = None
        for i, (r0, c0, fh, fw) in enumerate(free):
            for h in range(1, fh + 1):
                w = math.ceil(n / h)
                if w > fw:
                    continue
                key = (h * w - n, fh * fw, r0 + c0, -h)
                if best is None or key < best[0]:
                    best = (key, i, h, w)
        if best is None:
            raise CapacityError(f"`{name}` needs {n} core(s) as one rectangle, but the free parts of the "
                                f"{rows}x{cols} mesh are {[(f[2], f[3]) for f in free]} (rows x cols) after "
                                f"placing {sorted(out)}: use a larger mesh, or fewer or smaller graphs")
        _, i, h, w = best
        r0, c0, fh, fw = free.pop(i)
        out[name] = (r0, c0, h, w)
        right, below = (r0, c0 + w, fh, fw - w), (r0 + h, c0, fh - h, w)
        if (fh - h) * fw > fh * (fw - w):       # cut so that the larger leftover stays whole
            right, below = (r0, c0 + w, h, fw - w), (r0 + h, c0, fh - h, fw)
        free += [f for f in (right, below) if f[2] > 0 and f[3] > 0]
    return out


def _host_values(plan) -> int:
    return sum(math.prod(e.shape) for e in plan.inputs.values()) + sum(
        math.prod(plan.entry(src).shape) for src in plan.outputs.values())


def compile_many(graphs: dict, spec: ChipSpec | None = None, *, seed: int = 0,
                 ticks_per_inference: dict | None = None) -> Partition:
    """Compile several integer graphs (name -> tr.Graph) onto one chip, each on its own
    rectangle of the mesh. ``ticks_per_inference``: name -> ticks, for the reports.

    Raises CapacityError when a graph does not fit the whole chip, when the graphs together
    need more cores than it has (the message says how many more, per graph), or when their
    rectangles cannot be packed."""
    from .compiler import compile as compile_one

    spec = ChipSpec() if spec is None else spec
    if not graphs:
        raise CompileError("compile_many: no graphs given")
    tpi = dict(ticks_per_inference or {})
    unknown = sorted(set(tpi) - set(graphs))
    if unknown:
        raise CompileError(f"compile_many: ticks_per_inference names unknown graph(s) {unknown}")
    need = {}
    for name, g in graphs.items():
        try:
            _, rep = compile_one(g, spec, seed=seed, ticks_per_inference=tpi.get(name))
        except CapacityError as exc:
            raise CapacityError(f"graph {name!r} alone does not fit the chip: {exc}") from None
        need[name] = rep.cores_used
    total = sum(need.values())
    if total > spec.n_cores:
        each = ", ".join(f"{k} {v}" for k, v in sorted(need.items(), key=lambda kv: -kv[1]))
        raise CapacityError(f"the {len(graphs)} graphs need {total} cores together ({each}) but the "
                            f"{spec.mesh_rows}x{spec.mesh_cols} mesh has {spec.n_cores}: {total - spec.n_cores} "
                            "too many; use a larger mesh or fold layers onto fewer cores")
    rects = pack(need, spec.mesh_rows, spec.mesh_cols)
    regions = []
    for name, g in graphs.items():
        r0, c0, h, w = rects[name]
        image, rep = compile_one(g, _sub_spec(spec, h, w), seed=seed, ticks_per_inference=tpi.get(name))
        plan = g.build() if hasattr(g, "build") else g
        regions.append(Region(name, r0, c0, h, w, image, rep, _host_values(plan)))
    return Partition(spec, regions)
