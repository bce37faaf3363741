"""The payloads of LOAD_REGIONS and REGION, the two commands that split one chip into regions
(docs/protocol.md, 3d). Shared by both ends; numpy-free, so the emulator imports it cheaply.

LOAD_REGIONS: ``u16 n``, then n x (name, ``u16 row, u16 col, u16 rows, u16 cols``): the
layout of the chip's mesh, one rectangle per region, no images; a region's image comes with a
REGION-addressed LOAD_IMAGE. REGION: ``u8 region index`` (its place in the layout), ``u8
command`` (one of REGION_COMMANDS), then that command's own payload, unchanged; the reply is
that command's reply.
"""
from __future__ import annotations

import struct

from .protocol import Reader, pack_name, read_name
from .wire import (COMMAND_NAMES, E_BAD_PAYLOAD, E_CAPACITY, MAX_REGIONS, REGION_COMMANDS,
                   ProtocolError)

RECT = struct.Struct("<HHHH")


def pack_layout(regions) -> bytes:
    """``regions``: a sequence of (name, row, col, rows, cols)."""
    regions = list(regions)
    if not 1 <= len(regions) <= MAX_REGIONS:
        raise ProtocolError(E_BAD_PAYLOAD, f"a layout has 1..{MAX_REGIONS} regions, got {len(regions)}")
    out = [struct.pack("<H", len(regions))]
    for name, row, col, rows, cols in regions:
        if not all(0 <= int(v) < 1 << 16 for v in (row, col, rows, cols)):
            raise ProtocolError(E_BAD_PAYLOAD, f"region {name!r}: {(row, col, rows, cols)} out of u16 range")
        out += [pack_name(name), RECT.pack(int(row), int(col), int(rows), int(cols))]
    return b"".join(out)


def read_layout(data: bytes, mesh: tuple[int, int]) -> list[tuple[str, int, int, int, int]]:
    """The layout, checked against a ``mesh`` of (rows, cols): 1..MAX_REGIONS regions, unique
    names, non-empty rectangles inside the mesh, no two sharing a core."""
    r = Reader(data, "LOAD_REGIONS")
    (n,) = r.unpack("H", "region count")
    if not 1 <= n <= MAX_REGIONS:
        raise ProtocolError(E_BAD_PAYLOAD, f"LOAD_REGIONS: {n} regions, a board takes 1..{MAX_REGIONS}", 0)
    out, taken = [], {}
    for k in range(n):
        at = r.pos
        name = read_name(r, f"region {k} name")
        row, col, rows, cols = r.unpack("HHHH", f"region {name!r} rectangle")
        if any(x[0] == name for x in out):
            raise ProtocolError(E_BAD_PAYLOAD, f"LOAD_REGIONS: region name {name!r} appears twice", at)
        if rows < 1 or cols < 1 or row + rows > mesh[0] or col + cols > mesh[1]:
            raise ProtocolError(E_CAPACITY, f"LOAD_REGIONS: region {name!r} ({rows}x{cols} at ({row},{col})) "
                                f"does not lie inside this chip's {mesh[0]}x{mesh[1]} mesh", at)
        for y in range(row, row + rows):
            for x in range(col, col + cols):
                if (y, x) in taken:
                    raise ProtocolError(E_BAD_PAYLOAD, f"LOAD_REGIONS: regions {taken[(y, x)]!r} and {name!r} "
                                        f"both hold core ({y},{x})", at)
                taken[(y, x)] = name
        out.append((name, row, col, rows, cols))
    r.end()
    return out


def pack_call(index: int, cmd: int, payload: bytes = b"") -> bytes:
    if not 0 <= index < MAX_REGIONS:
        raise ProtocolError(E_BAD_PAYLOAD, f"region index {index} outside 0..{MAX_REGIONS - 1}")
    if cmd not in REGION_COMMANDS:
        raise ProtocolError(E_BAD_PAYLOAD, f"{COMMAND_NAMES.get(cmd, hex(cmd))} cannot be addressed to a region")
    return struct.pack("<BB", index, cmd) + bytes(payload)


def read_call(data: bytes, n_regions: int) -> tuple[int, int, bytes]:
    """(region index, command, its payload); the index must name one of ``n_regions``."""
    r = Reader(data, "REGION")
    index, cmd = r.unpack("BB", "region index and command")
    if index >= n_regions:
        raise ProtocolError(E_BAD_PAYLOAD, f"REGION: region {index}, the layout has {n_regions}", 0)
    if cmd not in REGION_COMMANDS:
        raise ProtocolError(E_BAD_PAYLOAD, f"REGION: {COMMAND_NAMES.get(cmd, hex(cmd))} cannot be addressed "
                            f"to a region; these can: {', '.join(COMMAND_NAMES[c] for c in REGION_COMMANDS)}", 1)
    return index, cmd, r.rest()
