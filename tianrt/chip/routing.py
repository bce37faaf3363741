"""Dimension-order (XY) routing with multicast trees and per-router tables.

A packet carries its source core's id; every router on the source's multicast tree holds
one table entry (source id -> output-port mask). The tree is the union of the XY paths
(first along the row to the destination column, then along the column) from the source
to each of its destinations, so shared prefixes are traversed once (relay multicast).
The host link is attached to core (0, 0)'s west port: host-bound packets route to (0, 0)
and leave west; host-injected packets enter (0, 0) from the west.
"""
from __future__ import annotations

import numpy as np

from .image_format import HOST, PORT_E, PORT_LOCAL, PORT_N, PORT_S, PORT_W
STEP = {PORT_N: (-1, 0), PORT_E: (0, 1), PORT_S: (1, 0), PORT_W: (0, -1)}


def xy_links(src: tuple[int, int], dst: tuple[int, int]):
    """The (router position, port) hops of the XY path from src to dst (dst excluded)."""
    r, c = src
    out = []
    while c != dst[1]:
        port = PORT_E if dst[1] > c else PORT_W
        out.append(((r, c), port))
        c += 1 if port == PORT_E else -1
    while r != dst[0]:
        port = PORT_S if dst[0] > r else PORT_N
        out.append(((r, c), port))
        r += 1 if port == PORT_S else -1
    return out


def multicast_table(src_pos, dst_positions, to_host: bool) -> dict[tuple[int, int], int]:
    """Router position -> port mask of one source's multicast tree."""
    masks: dict[tuple[int, int], int] = {}
    for d in dst_positions:
        for pos, port in xy_links(src_pos, d):
            masks[pos] = masks.get(pos, 0) | port
        masks[tuple(d)] = masks.get(tuple(d), 0) | PORT_LOCAL
    if to_host:
        for pos, port in xy_links(src_pos, (0, 0)):
            masks[pos] = masks.get(pos, 0) | port
        masks[(0, 0)] = masks.get((0, 0), 0) | PORT_W
    return masks


def tree_links(masks: dict) -> int:
    """Links a packet crosses on this tree (the host exit counts as one link)."""
    return sum(bin(m & ~PORT_LOCAL).count("1") for m in masks.values())


def build_tables(positions: dict[int, tuple[int, int]], dests: dict[int, set], to_host: set[int],
                 cols: int):
    """Routing tables for all sources. ``positions``: core id -> (row, col) (HOST enters
    at (0, 0) from the west); ``dests``: source id -> destination core ids; ``to_host``:
    sources whose packets also go to the host. Every mesh position has a router, used
    core or not (router id = row * cols + col). Returns (entries (E, 3) uint16 array of
    (router id, source id, port mask), {source: links per packet}, {link: packets
    per unit of traffic from each source} as a dict (pos, port) -> [sources])."""
    rows, links, link_users = [], {}, {}
    for src in sorted(set(dests) | set(to_host)):
        spos = (0, 0) if src == HOST else positions[src]
        masks = multicast_table(spos, [positions[d] for d in sorted(dests.get(src, ()))], src in to_host)
        for pos, m in sorted(masks.items()):
            rows.append((pos[0] * cols + pos[1], src, m))
            for port in (PORT_N, PORT_E, PORT_S, PORT_W):
                if m & port:
                    link_users.setdefault((pos, port), []).append(src)
        links[src] = tree_links(masks)
    entries = np.array(rows, dtype=np.uint16).reshape(-1, 3)
    return entries, links, link_users
