"""The mesh router (one per mesh position, used core or not; router id = row * cols +
col): per-router tables (source id -> output-port mask), walked to deliver
packets. At load time every source's multicast tree is walked once: the walk must stay
on the mesh, never loop, and reach every core that reads the source's values (and the
host link for outputs); the number of links it crosses is what each packet of that
source costs in hops and router energy."""
from __future__ import annotations

import numpy as np

from tianrt.chip.image_format import HOST, PORT_E, PORT_LOCAL, PORT_N, PORT_S, PORT_W

STEP = {PORT_N: (-1, 0), PORT_E: (0, 1), PORT_S: (1, 0), PORT_W: (0, -1)}


class RouteError(ValueError):
    """Routing tables that do not deliver what the image's cores read."""


def walk(tables: dict, pos_of: dict, rows: int, cols: int, src: int):
    """Follow source ``src``'s tree; returns (delivered positions, reaches host, the links
    crossed as (router position, port) pairs)."""
    start = (0, 0) if src == HOST else pos_of[src]
    delivered, host, links = set(), False, []
    seen, todo = set(), [start]
    while todo:
        pos = todo.pop()
        if pos in seen:
            raise RouteError(f"source {src}: routing loop through router {pos}")
        seen.add(pos)
        mask = tables.get((pos, src))
        if mask is None:
            raise RouteError(f"source {src}: packet reaches router {pos}, which has no entry for it")
        if mask & PORT_LOCAL:
            delivered.add(pos)
        for port, (dr, dc) in STEP.items():
            if mask & port:
                links.append((pos, port))
                nxt = (pos[0] + dr, pos[1] + dc)
                if port == PORT_W and pos == (0, 0) and nxt[1] < 0:
                    host = True
                    continue
                if not (0 <= nxt[0] < rows and 0 <= nxt[1] < cols):
                    raise RouteError(f"source {src}: router {pos} sends off the mesh")
                todo.append(nxt)
    return delivered, host, links


def build(entries: np.ndarray, pos_of: dict, rows: int, cols: int, needs: dict, host_needs: set) -> dict:
    """Check the tables against what cores read; returns {source: [links crossed by each
    of its packets, as (router position, port)]}.
    ``needs``: source -> core ids that read it; ``host_needs``: sources the host reads."""
    if entries.ndim != 2 or entries.shape[1] != 3:
        raise RouteError(f"routing table must be (entries, 3), got {entries.shape}")
    # bounded before the tables are built: one entry per router and source at most, and a
    # source is a core of the image or the host link
    limit = rows * cols * (len(pos_of) + 1)
    if len(entries) > limit:
        raise RouteError(f"routing table has {len(entries)} entries; a {rows}x{cols} mesh with "
                         f"{len(pos_of)} cores holds at most {limit}")
    if len(entries):
        srcs = entries[:, 1]
        bad = ~((srcs == HOST) | ((srcs >= 0) & (srcs < len(pos_of))))
        if bad.any():
            raise RouteError(f"routing entry {int(np.flatnonzero(bad)[0])} names source "
                             f"{int(srcs[bad][0])}, neither a core of the image nor the host link")
    tables = {}
    for rid, src, mask in entries.tolist():
        if not 0 <= rid < rows * cols:
            raise RouteError(f"routing entry for router {rid}, outside the {rows}x{cols} mesh")
        pos = (rid // cols, rid % cols)
        if (pos, src) in tables:
            raise RouteError(f"router {pos} has two entries for source {src}")
        if mask & ~0x1F:
            raise RouteError(f"router {pos}: port mask 0x{mask:x} has unknown bits")
        tables[(pos, src)] = mask
    links = {}
    for src in set(needs) | host_needs:
        delivered, host, n = walk(tables, pos_of, rows, cols, src)
        delivered = {c for c, p in pos_of.items() if p in delivered}
        missing = needs.get(src, set()) - delivered
        if missing:
            raise RouteError(f"packets of source {src} never reach core(s) {sorted(missing)[:5]} that read them")
        if src in host_needs and not host:
            raise RouteError(f"packets of source {src} never reach the host link, but an output reads them")
        links[src] = n
    return links
