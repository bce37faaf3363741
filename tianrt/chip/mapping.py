"""From tiled cores to an image: traffic, placement, routing tables, round schedule,
estimates and the mapping report, then the packed image (see tianrt.chip.compiler)."""
from __future__ import annotations

import numpy as np

from . import image_format, placement, routing, timing
from .sources import Src
from .image_format import IMAGE_KIND
from .report import LayerRow, MappingReport

HOST = routing.HOST


def _producers(b) -> dict[int, np.ndarray]:
    """buffer id -> producing core of each element (HOST for inputs); delays resolved to the
    core that produces the delayed value (its packets reach the reader one tick later)."""
    prod = {}
    for i, buf in enumerate(b.buffers):
        if buf["kind"] == "input":
            prod[i] = np.full(buf["size"], HOST, np.int64)
        elif buf["kind"] in ("core", "psum"):
            prod[i] = np.full(buf["size"], -1, np.int64)
    for c in b.cores:
        prod[c.out_buf][c.out_idx] = c.id
    by_buf = {buf: src for _e, buf, src in b.delays}

    expanded = set()      # delays whose inputs were pushed: unresolved ones are ancestors

    def resolve(buf):     # delays reading delays: depth first, each once (linear in the graph)
        stack = [buf]
        while stack:
            top = stack[-1]
            if top in prod:
                stack.pop()
                continue
            src = by_buf[top]
            if top not in expanded:
                expanded.add(top)
                waiting = [int(x) for x in np.unique(src.buf) if x >= 0 and int(x) not in prod]
                if any(w in expanded for w in waiting):
                    from .errors import CompileError
                    raise CompileError("delays read each other in a cycle with no layer between them")
                if waiting:
                    stack.extend(waiting)
                    continue
            p = np.full(len(src), -1, np.int64)
            for x in np.unique(src.buf):
                if x >= 0:
                    m = src.buf == x
                    p[m] = prod[int(x)][src.idx[m]]
            prod[top] = p
            stack.pop()
    for buf in by_buf:
        resolve(buf)
    return prod


def _sources(prod, s: Src) -> np.ndarray:
    out = np.full(len(s), -1, np.int64)
    for x in np.unique(s.buf):
        if x >= 0:
            m = s.buf == x
            out[m] = prod[int(x)][s.idx[m]]
    return out[out != -1]


def build_image(b, *, seed: int = 0, ticks_per_inference: int | None = None):
    spec = b.spec
    sd = spec.to_dict()
    n = len(b.cores)
    prod = _producers(b)
    traffic = np.zeros((n, n))
    host = np.zeros(n)
    dests: dict[int, set] = {}
    same_tick_deps: list[set] = []
    for c in b.cores:
        srcs = _sources(prod, c.axons)
        u, cnt = np.unique(srcs, return_counts=True)
        for p, k in zip(u.tolist(), cnt.tolist()):
            dests.setdefault(p, set()).add(c.id)
            if p == HOST:
                host[c.id] += k
            elif p != c.id:
                traffic[p, c.id] += k
        direct = set()
        for x in set(np.unique(c.axons.buf).tolist()) | set(c.clock):
            if x >= 0 and b.buffers[int(x)]["kind"] in ("core", "psum"):
                direct.update(int(v) for v in np.unique(prod[int(x)]))  # whole buffer: one clock per layer
        same_tick_deps.append(direct)
    to_host = set()
    for o in b.outputs:
        for p in np.unique(_sources(prod, o["src"])).tolist():
            if p != HOST:
                host[p] += int((_sources(prod, o["src"]) == p).sum())
                to_host.add(p)
    sym = traffic + traffic.T
    slots, stats = placement.place(sym, host, spec.mesh_rows, spec.mesh_cols)
    rand = placement.random_cost(sym, host, spec.mesh_rows, spec.mesh_cols, seed=seed)
    positions = {c.id: (int(slots[c.id]) // spec.mesh_cols, int(slots[c.id]) % spec.mesh_cols) for c in b.cores}
    entries, links, link_users = routing.build_tables(positions, dests, to_host, spec.mesh_cols)

    # schedule: a core runs in the round after every core it reads in the same tick
    level = [0] * n
    for c in b.cores:  # cores are created in plan order, so producers come first
        deps = [level[p] + 1 for p in same_tick_deps[c.id] if 0 <= p < c.id]
        level[c.id] = max(deps, default=0)
    rounds = [[] for _ in range(max(level, default=-1) + 1)]
    for c in b.cores:
        rounds[level[c.id]].append(c.id)

    # estimates: every core evaluates once per tick with every axon active (upper bound)
    cyc, energy = 0.0, 0.0
    sends = {c.id: len(c.out_idx) * (2 if c.wide_out else 1) for c in b.cores}
    sends[HOST] = sum(int(x["size"]) for x in b.buffers if x["kind"] == "input")
    for r in rounds:
        comp, route = 0.0, 0.0
        for cid in r:
            c = b.cores[cid]
            macs = c.connections if c.axon_mode == "ann" else 0
            syn = c.connections if c.axon_mode == "snn" else 0
            comp = max(comp, timing.compute_cycles(sd, macs, syn, c.n_neurons))
            route = max(route, timing.route_cycles(sd, sends[cid], links.get(cid, 0)))
            energy += timing.energy_pj(sd, macs, syn, sends[cid] * links.get(cid, 0), c.n_neurons)
        cyc += comp + route
    hops = sum(sends[s] * links[s] for s in links)
    worst_link, worst = "", 0
    for (pos, port), users in link_users.items():
        load = sum(sends[s] for s in users)
        if load > worst:
            name = {1: "N", 2: "E", 4: "S", 8: "W"}[port]
            worst, worst_link = load, f"({pos[0]},{pos[1]})->{name}"
    T = ticks_per_inference or max([int(getattr(e.node, "window", 1)) for e in b.plan.entries
                                    if e.node.op in ("bridge.SpikeCount", "bridge.FirstSpike",
                                                     "q.MembraneReadout")] or [1])
    per_tick_energy, ann_energy = 0.0, 0.0
    for c in b.cores:
        lay = next(l for l in b.layers if l.name == c.layer)
        macs = c.connections if c.axon_mode == "ann" else 0
        syn = c.connections if c.axon_mode == "snn" else 0
        e = timing.energy_pj(sd, macs, syn, sends[c.id] * links.get(c.id, 0), c.n_neurons)
        if lay.per_tick or any(x.per_tick for x in lay.entries):
            per_tick_energy += e
        else:
            ann_energy += e

    # report rows
    rows = []
    A, N, M = spec.axons_per_core, spec.neurons_per_core, spec.weight_bytes_per_core
    for lay in b.layers:
        cs = [b.cores[i] for i in lay.cores]
        axon_mode, soma_mode = b.modes(lay)
        modes = axon_mode if axon_mode == soma_mode else f"{axon_mode}->{soma_mode}"
        used_n = sum(c.n_neurons for c in cs)
        used_a = sum(len(c.axons) for c in cs)
        rows.append(LayerRow(lay.name, lay.entries[0].node.op, [e.name for e in lay.entries[1:]], modes,
                             len(cs), sum(c.role == "partial" for c in cs), sum(c.role == "merge" for c in cs),
                             int(np.prod(lay.out_entry.shape)), int(sum(len(s) for s in lay.inputs)),
                             sum(c.weight_bytes for c in cs), used_n / (N * len(cs)), used_a / (A * len(cs))))

    meta = {
        "kind": IMAGE_KIND, "name": b.plan.name, "dt": b.plan.dt, "spec": sd,
        "buffers": b.buffers,
        "inputs": b.chip_inputs,
        "outputs": [{"name": o["name"], "shape": o["shape"], "dtype": "int32", "gather": b.segments(o["src"])}
                    for o in b.outputs],
        "delays": [{"name": e.name, "buffer": buf, "gather": b.segments(src)} for e, buf, src in b.delays],
        "host": {"inputs": b.host_inputs, "outputs": b.host_outputs,
                 "graph_inputs": {k: {"shape": list(v.shape), "domain": v.domain}
                                  for k, v in b.plan.inputs.items()}},
        "schedule": rounds,
        "routes": b.arr(entries, np.uint16),
        "cores": [],
    }
    for c in b.cores:
        meta["cores"].append({
            "id": c.id, "pos": list(positions[c.id]), "layer": c.layer, "role": c.role,
            "axon_mode": c.axon_mode, "soma_mode": c.soma_mode,
            "n_axons": len(c.axons), "n_neurons": c.n_neurons,
            "axons": b.segments(c.axons), "out": [c.out_buf, b.arr(c.out_idx, np.int32)],
            "dendrite": c.dendrite, "per_tick": bool(next(l for l in b.layers if l.name == c.layer).per_tick),
            "stages": c.stages, "weight_bytes": c.weight_bytes, "connections": c.connections,
            "wide_out": c.wide_out, "clock": c.clock,
        })
    image = image_format.pack(meta, b.arrays)
    used_slots = max(len(b.cores), 1)
    report = MappingReport(
        name=b.plan.name, mesh=(spec.mesh_rows, spec.mesh_cols), cores_used=len(b.cores),
        cores_total=spec.n_cores, layers=rows,
        neuron_util=sum(c.n_neurons for c in b.cores) / (N * used_slots),
        axon_util=sum(len(c.axons) for c in b.cores) / (A * used_slots),
        weight_util=sum(c.weight_bytes for c in b.cores) / (M * used_slots),
        rounds_per_tick=len(rounds), hops_per_tick=int(hops), worst_link_packets=int(worst),
        worst_link=worst_link, placement_cost=stats["improved_cost"], greedy_cost=stats["greedy_cost"],
        random_cost=rand, cycles_per_tick=cyc, latency_per_tick_us=cyc / spec.clock_hz * 1e6,
        energy_per_tick_nj=energy / 1e3, ticks_per_inference=T,
        latency_per_inference_us=T * cyc / spec.clock_hz * 1e6,
        energy_per_inference_nj=(T * per_tick_energy + ann_energy) / 1e3, image_bytes=len(image))
    return image, report
