"""The serial protocol between the host (tianrt.chip.link) and a board (firmware_sim).

Byte-level definition, shared by both ends; documented in docs/protocol.md. Depends on
struct/zlib/json/numpy only, so the emulator can import it without the graph modules.

A frame on the wire is ``0x00 COBS(header | payload | crc32) 0x00``: COBS removes every zero
byte from the body, so the zero delimiter always marks a frame boundary and a receiver
resynchronises at the next zero after any garbage. Decoded body::

    offset 0  u8   kind     (REQUEST, ACK, NAK, PAGED, BOOT)
    offset 1  u8   command  (HELLO, RUN, ...; echoed in the reply)
    offset 2  u16  seq      (little-endian; echoed in the reply)
    offset 4  u16  length   (payload bytes)
    offset 6  ...  payload
    offset 6+length  u32 CRC-32 (zlib/IEEE 802.3) of bytes 0 .. 6+length-1, little-endian
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .wire import *  # noqa: F401,F403 (the vocabulary, ProtocolError and COBS are protocol names)
from .wire import (COMMAND_NAMES, CRC, E_BAD_CRC, E_BAD_FRAME, E_BAD_PAYLOAD, E_FRAME_TOO_LARGE, E_INTERNAL,
                   HEADER, KIND_NAMES, MAX_ENCODED, MAX_FRAME, MAX_PAYLOAD, SEQ_MOD, ProtocolError, cobs_decode,
                   cobs_encode)


# -- frames --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    kind: int
    cmd: int
    seq: int
    payload: bytes = b""

    def describe(self) -> str:
        return (f"{KIND_NAMES.get(self.kind, hex(self.kind))} "
                f"{COMMAND_NAMES.get(self.cmd, hex(self.cmd))} seq={self.seq} "
                f"({len(self.payload)} payload bytes)")


def frame_body(kind: int, cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """The decoded body (header | payload | crc32) of one frame."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(E_FRAME_TOO_LARGE, f"payload of {len(payload)} bytes exceeds "
                            f"MAX_PAYLOAD={MAX_PAYLOAD}; send it with UPLOAD_* in chunks")
    head = HEADER.pack(kind, cmd, seq % SEQ_MOD, len(payload)) + payload
    return head + CRC.pack(zlib.crc32(head))


def encode_frame(kind: int, cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """Wire bytes of one frame: a leading delimiter (ends any partial garbage at the
    receiver), the COBS-encoded body, and the trailing delimiter."""
    return b"\x00" + cobs_encode(frame_body(kind, cmd, seq, payload)) + b"\x00"


def parse_body(body: bytes) -> Frame:
    """Check and split a decoded body; raises ProtocolError naming the bad byte offset."""
    if len(body) < HEADER.size + CRC.size:
        raise ProtocolError(E_BAD_FRAME, f"frame of {len(body)} bytes is shorter than the "
                            f"{HEADER.size + CRC.size}-byte header and CRC", len(body))
    kind, cmd, seq, length = HEADER.unpack_from(body)
    expected = HEADER.size + length + CRC.size
    if len(body) != expected:
        # checked before the CRC so that a truncated frame is reported as such
        raise ProtocolError(E_BAD_FRAME, f"length field says {length} payload bytes, so the frame "
                            f"should be {expected} bytes, got {len(body)} (truncated or padded)", 4)
    (crc,) = CRC.unpack_from(body, expected - CRC.size)
    actual = zlib.crc32(body[:expected - CRC.size])
    if crc != actual:
        raise ProtocolError(E_BAD_CRC, f"CRC-32 is {crc:#010x}, the bytes give {actual:#010x}",
                            expected - CRC.size)
    if kind not in KIND_NAMES:
        raise ProtocolError(E_BAD_FRAME, f"unknown frame kind {kind:#04x}", 0)
    return Frame(kind, cmd, seq, bytes(body[HEADER.size:HEADER.size + length]))


def decode_frame(encoded: bytes) -> Frame:
    """A frame from its COBS bytes (without delimiters)."""
    return parse_body(cobs_decode(encoded))


class Deframer:
    """Splits a byte stream at zero delimiters. ``feed(data)`` returns the complete
    COBS blocks seen so far; a block longer than ``limit`` is discarded up to the next
    delimiter and reported once as ``None`` (an oversized frame)."""

    def __init__(self, limit: int = MAX_ENCODED):
        self.limit = limit
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        parts = bytes(data).split(b"\x00")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not self._overflow:
                self._buf += part
                if len(self._buf) > self.limit:
                    self._overflow = True
                    self._buf.clear()
            if last:
                break
            # a delimiter follows this part
            if self._overflow:
                out.append(None)
                self._overflow = False
            elif self._buf:
                out.append(bytes(self._buf))
            self._buf.clear()
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


# -- payload codecs ------------------------------------------------------------------------------
class Reader:
    """Cursor over a payload; every short read raises ProtocolError(E_BAD_PAYLOAD) with the offset."""

    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = memoryview(bytes(data)), 0, what

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError(E_BAD_PAYLOAD, f"{self.what}: {field} needs {n} bytes, only "
                                f"{len(self.data) - self.pos} left", self.pos)
        b = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return b

    def unpack(self, fmt: str, field: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size, field))

    def rest(self) -> bytes:
        b = bytes(self.data[self.pos:])
        self.pos = len(self.data)
        return b

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(E_BAD_PAYLOAD, f"{self.what}: {len(self.data) - self.pos} "
                                f"unexpected trailing bytes", self.pos)


DTYPES = {1: np.dtype("<i1"), 2: np.dtype("<u1"), 3: np.dtype("<i2"), 4: np.dtype("<i4"),
          5: np.dtype("<i8"), 6: np.dtype("<f4"), 7: np.dtype("<f8")}
DTYPE_CODES = {dt: code for code, dt in DTYPES.items()}
MAX_NDIM = 8


def pack_name(name: str) -> bytes:
    b = name.encode("utf-8")
    if not 0 < len(b) < 256:
        raise ProtocolError(E_BAD_PAYLOAD, f"name {name!r} must be 1..255 UTF-8 bytes")
    return bytes([len(b)]) + b


def read_name(r: Reader, field: str = "name") -> str:
    (n,) = r.unpack("B", f"{field} length")
    raw = r.take(n, field)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: {field} is not UTF-8", r.pos - n) from None


def pack_array(a) -> bytes:
    """u8 dtype code, u8 ndim, ndim x u32 dims, then the little-endian C-order data."""
    a = np.asarray(a)
    code = DTYPE_CODES.get(a.dtype.newbyteorder("<"))
    if code is None:
        raise ProtocolError(E_BAD_PAYLOAD, f"arrays of dtype {a.dtype} cannot be sent; use one of "
                            f"{', '.join(str(d) for d in DTYPES.values())}")
    if a.ndim > MAX_NDIM:
        raise ProtocolError(E_BAD_PAYLOAD, f"array of {a.ndim} dimensions; at most {MAX_NDIM}")
    return (struct.pack("<BB", code, a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
            + np.ascontiguousarray(a, dtype=DTYPES[code]).tobytes())


SPARSE = 0x80            # dtype byte flag: a sparse array (board -> host outputs only)
SPARSE_EVENTS, SPARSE_BITMAP, SPARSE_ONES = 0x01, 0x02, 0x10
MAX_SPARSE_VALUES = 1 << 28   # elements a sparse array may expand to


def pack_sparse(a) -> bytes:
    """The smallest of: dense (pack_array), an event list (u32 flat indices of the nonzero
    elements) or a bitmap (one bit per element, LSB first), each followed by the nonzero
    values unless they are all 1 (spikes). docs/protocol.md section 3c."""
    a = np.asarray(a)
    dense = pack_array(a)
    code = DTYPE_CODES.get(a.dtype.newbyteorder("<"))
    flat = a.reshape(-1)
    if a.size < 16 or a.size > 0xFFFFFFFF:
        return dense
    nz = np.flatnonzero(flat)
    vals = flat[nz]
    ones = bool(len(vals) == 0 or (vals == 1).all())
    vbytes = 0 if ones else len(nz) * a.dtype.itemsize
    events, bitmap = 4 * len(nz), (a.size + 7) // 8
    head = struct.pack("<BB", SPARSE | code, a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
    if min(events, bitmap) + vbytes + 5 + len(head) >= len(dense):
        return dense
    form = (SPARSE_EVENTS if events <= bitmap else SPARSE_BITMAP) | (SPARSE_ONES if ones else 0)
    body = (nz.astype("<u4").tobytes() if form & SPARSE_EVENTS
            else np.packbits(flat != 0, bitorder="little").tobytes())
    tail = b"" if ones else np.ascontiguousarray(vals, dtype=DTYPES[code]).tobytes()
    return head + struct.pack("<BI", form, len(nz)) + body + tail


def _read_sparse(r: Reader, field: str, start: int, code: int, ndim: int, limit: int) -> np.ndarray:
    shape = r.unpack(f"{ndim}I", f"{field} shape")
    size = 1
    for d in shape:
        size *= d
    if size > limit:
        raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: sparse {field} of {size} elements, at most "
                            f"{limit}", start)
    at = r.pos
    form, nnz = r.unpack("BI", f"{field} sparse form and count")
    if form & ~(SPARSE_EVENTS | SPARSE_BITMAP | SPARSE_ONES) or (form & 3) not in (1, 2) or nnz > size:
        raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: {field} has sparse form {form:#04x} with "
                            f"{nnz} of {size} elements", at)
    if form & SPARSE_EVENTS:
        idx = np.frombuffer(r.take(4 * nnz, f"{field} event indices"), "<u4").astype(np.int64)
        if nnz and (idx.max() >= size or (np.diff(idx) <= 0).any()):
            raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: {field} event indices must be ascending "
                                f"and below {size}", at + 5)
    else:
        bits = np.frombuffer(r.take((size + 7) // 8, f"{field} bitmap"), np.uint8)
        idx = np.flatnonzero(np.unpackbits(bits, count=size, bitorder="little"))
        if len(idx) != nnz:
            raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: {field} bitmap has {len(idx)} bits set, "
                                f"the count says {nnz}", at + 5)
    dt = DTYPES[code]
    out = np.zeros(size, dt.newbyteorder("="))
    if form & SPARSE_ONES:
        out[idx] = 1
    else:
        out[idx] = np.frombuffer(r.take(nnz * dt.itemsize, f"{field} values"), dt)
    return out.reshape(shape)


def read_array(r: Reader, field: str = "array", sparse: bool = False,
               max_values: int = MAX_SPARSE_VALUES) -> np.ndarray:
    """A dense array, or with ``sparse`` also a pack_sparse one expanding to at most
    ``max_values`` elements (checked before anything is allocated)."""
    start = r.pos
    code, ndim = r.unpack("BB", f"{field} dtype and ndim")
    if sparse and code & SPARSE and (code & ~SPARSE) in DTYPES and ndim <= MAX_NDIM:
        return _read_sparse(r, field, start, code & ~SPARSE, ndim, max_values)
    if code not in DTYPES:
        raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: {field} has unknown dtype code {code}", start)
    if ndim > MAX_NDIM:
        raise ProtocolError(E_BAD_PAYLOAD, f"{r.what}: {field} has {ndim} dims, at most {MAX_NDIM}",
                            start + 1)
    shape = r.unpack(f"{ndim}I", f"{field} shape")
    count = 1
    for d in shape:
        count *= d
    dt = DTYPES[code]
    raw = r.take(count * dt.itemsize, f"{field} data ({shape} {dt})")
    return np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def pack_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, default=_json_default).encode()


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot send {type(o).__name__} as JSON")


def read_json(data: bytes, what: str):
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except RecursionError:
        raise ProtocolError(E_BAD_PAYLOAD, f"{what}: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(E_BAD_PAYLOAD, f"{what}: not UTF-8 JSON ({exc})") from None


# per-command payloads (host side packs, board side reads, and the reverse for results)
HELLO_TAKE_OVER = 0x01   # HELLO flag: take the board over from the session that holds it
HELLO_PROOF = 0x02       # HELLO flag: a 32-byte shared-secret proof follows
HELLO_SPARSE = 0x04      # HELLO flag: this host reads sparse output arrays (pack_sparse)
AUTH_LABEL = b"tianrt-hello"


def pack_hello(version: int, nonce: int, flags: int = 0, proof: bytes = b"") -> bytes:
    """u16 version, u32 nonce, then (optional) u8 flags and a 32-byte proof."""
    out = struct.pack("<HI", version, nonce & 0xFFFFFFFF)
    if flags or proof:
        out += struct.pack("<B", flags) + bytes(proof)
    return out


def read_hello(data: bytes) -> tuple[int, int]:
    return read_hello_full(data)[:2]


def read_hello_full(data: bytes) -> tuple[int, int, int, bytes]:
    """(version, nonce, flags, proof); flags and proof are optional on the wire."""
    r = Reader(data, "HELLO")
    version, nonce = r.unpack("HI", "version and nonce")
    flags, proof = 0, b""
    if r.pos < len(r.data):
        (flags,) = r.unpack("B", "flags")
        if flags & ~(HELLO_TAKE_OVER | HELLO_PROOF | HELLO_SPARSE):
            raise ProtocolError(E_BAD_PAYLOAD, f"HELLO: unknown flags {flags:#04x}", 6)
        if flags & HELLO_PROOF:
            proof = r.take(32, "proof")
    r.end()
    return version, nonce, flags, proof


def hello_proof(secret: bytes, challenge: bytes, nonce: int) -> bytes:
    """HMAC-SHA256(secret, "tianrt-hello" | board challenge | u32 host nonce)."""
    import hmac
    return hmac.new(secret, AUTH_LABEL + challenge + struct.pack("<I", nonce & 0xFFFFFFFF), "sha256").digest()


def pack_run(ticks: int) -> bytes:
    return struct.pack("<I", ticks)


def read_run(data: bytes) -> int:
    r = Reader(data, "RUN")
    (ticks,) = r.unpack("I", "ticks")
    r.end()
    return ticks


MAX_SPARSE_INPUT = 1 << 22    # elements a sparse input may expand to on the board


def pack_push(name: str, values, sparse: bool = False) -> bytes:
    """``sparse``: the array as pack_sparse (a board whose HELLO says "sparse_inputs")."""
    return pack_name(name) + (pack_sparse(values) if sparse else pack_array(values))


def read_push(data: bytes) -> tuple[str, np.ndarray]:
    r = Reader(data, "PUSH_INPUT")
    name = read_name(r, "input name")
    arr = read_array(r, f"input {name!r}", sparse=True, max_values=MAX_SPARSE_INPUT)
    r.end()
    return name, arr


def pack_step(inputs: dict, ticks: int, sparse: bool = False) -> bytes:
    parts = [struct.pack("<H", len(inputs))]
    parts += [pack_push(name, values, sparse) for name, values in inputs.items()]
    return b"".join(parts) + struct.pack("<I", ticks)


def read_step(data: bytes) -> tuple[list[tuple[str, np.ndarray]], int]:
    r = Reader(data, "STEP")
    (n,) = r.unpack("H", "input count")
    inputs = []
    for _ in range(n):
        name = read_name(r, "input name")
        inputs.append((name, read_array(r, f"input {name!r}", sparse=True, max_values=MAX_SPARSE_INPUT)))
    (ticks,) = r.unpack("I", "ticks")
    r.end()
    return inputs, ticks


def pack_steps(segments: list, sparse: bool = False) -> bytes:
    """u16 m, then m STEP bodies (u16 n, n x (name, array), u32 ticks)."""
    return struct.pack("<H", len(segments)) + b"".join(pack_step(i, t, sparse) for i, t in segments)


def read_steps(data: bytes) -> list[tuple[list[tuple[str, np.ndarray]], int]]:
    r = Reader(data, "STEPS")
    (m,) = r.unpack("H", "segment count")
    out = []
    for k in range(m):
        (n,) = r.unpack("H", f"segment {k} input count")
        inputs = []
        for _ in range(n):
            name = read_name(r, "input name")
            inputs.append((name, read_array(r, f"segment {k} input {name!r}", sparse=True,
                                            max_values=MAX_SPARSE_INPUT)))
        (ticks,) = r.unpack("I", f"segment {k} ticks")
        out.append((inputs, ticks))
    r.end()
    return out


def pack_outputs(outputs: dict, sparse: bool = False) -> bytes:
    """``sparse``: values arrays as pack_sparse (a host that said HELLO with HELLO_SPARSE)."""
    parts = [struct.pack("<H", len(outputs))]
    for name, (ticks, values) in outputs.items():
        parts += [pack_name(name), pack_array(np.asarray(ticks, dtype=np.int64)),
                  pack_sparse(values) if sparse else pack_array(values)]
    return b"".join(parts)


def read_outputs(data: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r = Reader(data, "PULL_OUTPUTS result")
    (count,) = r.unpack("H", "output count")
    out = {}
    for _ in range(count):
        name = read_name(r, "output name")
        out[name] = (read_array(r, f"ticks of {name!r}"), read_array(r, f"values of {name!r}", sparse=True))
    r.end()
    return out


def pack_upload_begin(target: int, total: int, crc: int) -> bytes:
    return struct.pack("<BII", target, total, crc & 0xFFFFFFFF)


def read_upload_begin(data: bytes) -> tuple[int, int, int]:
    r = Reader(data, "UPLOAD_BEGIN")
    target, total, crc = r.unpack("BII", "target, length and crc32")
    r.end()
    return target, total, crc


def pack_chunk(offset: int, data: bytes) -> bytes:
    return struct.pack("<I", offset) + bytes(data)


def read_chunk(data: bytes) -> tuple[int, bytes]:
    r = Reader(data, "UPLOAD_CHUNK")
    (offset,) = r.unpack("I", "offset")
    return offset, r.rest()


def pack_paged(total: int, crc: int) -> bytes:
    return struct.pack("<II", total, crc & 0xFFFFFFFF)


def read_paged(data: bytes) -> tuple[int, int]:
    r = Reader(data, "PAGED")
    total, crc = r.unpack("II", "length and crc32")
    r.end()
    return total, crc


def pack_fetch(offset: int, length: int) -> bytes:
    return struct.pack("<IH", offset, length)


def read_fetch(data: bytes) -> tuple[int, int]:
    r = Reader(data, "FETCH")
    offset, length = r.unpack("IH", "offset and length")
    r.end()
    return offset, length


def pack_nak(code: int, message: str) -> bytes:
    msg = message.encode("utf-8", "replace")[:MAX_PAYLOAD - 2]
    return struct.pack("<H", code) + msg


def read_nak(data: bytes) -> tuple[int, str]:
    if len(data) < 2:
        return E_INTERNAL, f"NAK without an error code ({len(data)} payload bytes)"
    (code,) = struct.unpack_from("<H", data)
    return code, bytes(data[2:]).decode("utf-8", "replace")
