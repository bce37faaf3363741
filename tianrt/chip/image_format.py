"""The deployment image: a versioned binary file holding every core's configuration.

Layout (little-endian; docs/image-format.md gives it byte by byte):

    0   8  magic  b"TNRCHIP\\0"
    8   2  major version (readers refuse another major)
    10  2  minor version
    12  4  flags (0)
    16  8  total file size in bytes
    24  8  metadata length M (UTF-8 JSON)
    32  4  number of arrays N
    36  4  reserved (0)
    40 32  SHA-256 of the whole file with these 32 bytes zeroed
    72  M  metadata JSON, then zero padding to a multiple of 8
    ..  40*N  array table: dtype code u8, ndim u8, 2 reserved, 4 x u32 dims,
              u64 offset (from the start of the data region), u64 nbytes, 4 reserved
    ..  data region: arrays in C order, each starting at a multiple of 8

Only numpy, json, hashlib and struct are used, so firmware_sim can read images without
the graph modules. ``unpack`` checks everything it can and raises ImageFormatError with
the byte offset of the first problem.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"TNRCHIP\0"
VERSION_MAJOR = 1
VERSION_MINOR = 3  # 1.1: per-neuron record parameters, "alif" stages, null for "no filter"; 1.2: per-neuron v_init of "lif"; 1.3: "rescale" of mac and merge dendrites
HEADER = struct.Struct("<8sHHIQQII32s")
HEADER_SIZE = HEADER.size  # 72
ENTRY = struct.Struct("<BBH4IQQ4x")
ENTRY_SIZE = ENTRY.size  # 40
CHECKSUM_OFFSET = 40
MAX_DIMS = 4

# routing-table entries (router core id, source id, port mask) use these ids and port bits
HOST = 0xFFFF
PORT_N, PORT_E, PORT_S, PORT_W, PORT_LOCAL = 1, 2, 4, 8, 16
IMAGE_KIND = "tianrt-chip-image"

DTYPES = {1: np.dtype("<i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"), 4: np.dtype("<i8"),
          5: np.dtype("u1"), 6: np.dtype("<u2"), 7: np.dtype("<u4"), 8: np.dtype("<f8")}
CODES = {v: k for k, v in DTYPES.items()}


class ImageFormatError(ValueError):
    """An image that cannot be read: says at which byte offset and what would be right."""

    def __init__(self, offset: int, message: str):
        self.offset = int(offset)
        self.message = message
        super().__init__(f"image byte {self.offset}: {message}")


@dataclass
class ImageContents:
    """What an image holds: the metadata dict and the arrays it refers to by index."""
    meta: dict
    arrays: list[np.ndarray] = field(default_factory=list)
    version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)


def _pad8(n: int) -> int:
    return (-n) % 8


def pack(meta: dict, arrays: list[np.ndarray]) -> bytes:
    """Serialise metadata (JSON-able dict) and arrays (int8..int64, uint8..uint32, float64)."""
    body_meta = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode("utf-8")
    table = bytearray()
    data = bytearray()
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        code = CODES.get(np.dtype(dt).newbyteorder("<") if dt.itemsize > 1 else dt)
        if code is None:
            raise ValueError(f"image array {i}: dtype {a.dtype} is not storable "
                             f"(use one of {', '.join(str(d) for d in DTYPES.values())})")
        if a.ndim > MAX_DIMS:
            raise ValueError(f"image array {i}: {a.ndim} dimensions, at most {MAX_DIMS}")
        raw = np.ascontiguousarray(a, dtype=DTYPES[code]).tobytes()
        dims = list(a.shape) + [0] * (MAX_DIMS - a.ndim)
        table += ENTRY.pack(code, a.ndim, 0, *dims, len(data), len(raw))
        data += raw + b"\0" * _pad8(len(raw))
    total = HEADER_SIZE + len(body_meta) + _pad8(len(body_meta)) + len(table) + len(data)
    head = HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, 0, total, len(body_meta), len(arrays), 0,
                       b"\0" * 32)
    out = bytearray(head + body_meta + b"\0" * _pad8(len(body_meta)) + table + data)
    out[CHECKSUM_OFFSET:CHECKSUM_OFFSET + 32] = hashlib.sha256(out).digest()
    return bytes(out)


def unpack(data: bytes) -> ImageContents:
    """Parse and verify an image; raises ImageFormatError(offset, message) on any problem."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise ImageFormatError(len(data), f"truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    magic, major, minor, flags, total, mlen, narr, _res, digest = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ImageFormatError(0, f"bad magic {magic!r}, expected {MAGIC!r} (not a tianrt chip image)")
    if major != VERSION_MAJOR:
        raise ImageFormatError(8, f"image format version {major}.{minor}, this reader reads "
                                  f"{VERSION_MAJOR}.x; recompile with this tianrt")
    if flags != 0:
        raise ImageFormatError(12, f"unknown flags 0x{flags:08x}, expected 0")
    if total != len(data):
        raise ImageFormatError(16, f"header says {total} bytes but the image has {len(data)} "
                                   f"({'truncated' if len(data) < total else 'trailing bytes'})")
    check = bytearray(data)
    check[CHECKSUM_OFFSET:CHECKSUM_OFFSET + 32] = b"\0" * 32
    if hashlib.sha256(check).digest() != digest:
        raise ImageFormatError(CHECKSUM_OFFSET, "SHA-256 checksum mismatch: the image is corrupted")
    pos = HEADER_SIZE
    if pos + mlen > total:
        raise ImageFormatError(24, f"metadata length {mlen} runs past the end of the image")
    try:
        meta = json.loads(data[pos:pos + mlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageFormatError(pos, f"metadata is not UTF-8 JSON ({exc})") from None
    except RecursionError:
        raise ImageFormatError(pos, "metadata JSON is nested too deeply") from None
    if not isinstance(meta, dict):
        raise ImageFormatError(pos, "metadata must be a JSON object")
    pos += mlen + _pad8(mlen)
    table_end = pos + narr * ENTRY_SIZE
    if table_end > total:
        raise ImageFormatError(32, f"{narr} array entries run past the end of the image")
    data_start = table_end
    arrays = []
    for i in range(narr):
        off = pos + i * ENTRY_SIZE
        code, ndim, _r, d0, d1, d2, d3, aoff, nbytes = ENTRY.unpack_from(data, off)
        if code not in DTYPES:
            raise ImageFormatError(off, f"array {i}: unknown dtype code {code} (known {sorted(DTYPES)})")
        if ndim > MAX_DIMS:
            raise ImageFormatError(off + 1, f"array {i}: ndim {ndim} > {MAX_DIMS}")
        shape = (d0, d1, d2, d3)[:ndim]
        dt = DTYPES[code]
        want = dt.itemsize
        for d in shape:       # Python integers: a product of large dims must not wrap
            want *= d
        if want != nbytes:
            raise ImageFormatError(off + 28, f"array {i}: {nbytes} bytes stored for shape {shape} "
                                             f"of {dt} ({want} bytes)")
        start = data_start + aoff
        if aoff % 8 or start + nbytes > total:
            raise ImageFormatError(off + 20, f"array {i}: data at offset {aoff} (+{nbytes} bytes) "
                                             "is misaligned or past the end of the image")
        arrays.append(np.frombuffer(data, dt, count=nbytes // dt.itemsize, offset=start).reshape(shape))
    return ImageContents(meta, arrays, (major, minor))
