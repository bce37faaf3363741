"""Wire formats of serial sensor streams: text lines and binary frames, each with an
optional sensor timestamp and sequence number.

Lines: one sample per line, numbers separated by commas, spaces, tabs or semicolons,
ending in ``\\n`` (a ``\\r`` before it is ignored), e.g. ``0.12,-3.5,9.81``. A stamped line
starts with ``key=value`` fields and a ``|``: ``t=12.005 seq=7 | 0.12,-3.5,9.81`` (``t``: the
sensor's time in seconds on its own clock, ``seq``: a sample counter; either may be left out).

Frames (all little-endian)::

    A5 5A | length: u16 | payload: length bytes | crc: u32 = zlib.crc32(length bytes + payload)
    A5 5B | length: u16 | seq: u32 | time: u64 | payload | crc: u32 = zlib.crc32(length .. payload)

The first is a plain frame, the second a stamped one: ``time`` is the sensor's time in
nanoseconds on its own clock (any epoch, e.g. since boot; ``0xFFFFFFFFFFFFFFFF``: none),
``seq`` a sample counter that wraps at 2**32 (``0xFFFFFFFF``: none); ``length`` counts the
payload only. The payload holds the sample's numbers in the stream's dtype (float32 by
default). A reader looks for a magic, checks the length and the CRC, and on a mismatch skips
one byte and looks again, so garbage between frames (or a corrupt frame) costs only the bytes
it occupies. A length above the reader's ``max_payload`` (the sample size, when the reader
knows it) is taken for garbage at once.
"""
from __future__ import annotations

import re
import struct
import zlib

import numpy as np

MAGIC = b"\xa5\x5a"
MAGIC_STAMPED = b"\xa5\x5b"
NO_SEQ = 0xFFFFFFFF
NO_TIME = 0xFFFFFFFFFFFFFFFF
MAX_PAYLOAD = 0xFFFF
# A reader does not wait for frames longer than this: a false magic in garbage, read with a
# large length, would otherwise hold up every frame behind it until that many bytes arrived.
DEFAULT_MAX_PAYLOAD = 4096
MAX_LINE = 1 << 16
FORMATS = ("lines", "frames")
_SEP = re.compile(rb"[,;\s]+")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        from .base import StreamError
        raise StreamError(f"serial format must be 'lines' or 'frames', got {fmt!r}")
    return fmt


def encode_frame(values, dtype="<f4", *, t: float | None = None, seq: int | None = None) -> bytes:
    """One frame; stamped (magic A5 5B) when ``t`` (sensor seconds) or ``seq`` is given."""
    payload = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = struct.pack("<H", len(payload))
    if t is None and seq is None:
        return MAGIC + head + payload + struct.pack("<I", zlib.crc32(head + payload))
    stamp = struct.pack("<IQ", NO_SEQ if seq is None else int(seq) & 0xFFFFFFFF,
                        NO_TIME if t is None else int(round(float(t) * 1e9)))
    body = head + stamp + payload
    return MAGIC_STAMPED + body + struct.pack("<I", zlib.crc32(body))


def encode_line(values, precision: int = 6, *, t: float | None = None, seq: int | None = None) -> bytes:
    """One text line; stamped (``t=… seq=… | …``) when ``t`` or ``seq`` is given."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    head = []
    if t is not None:
        head.append(f"t={float(t):.9f}")
    if seq is not None:
        head.append(f"seq={int(seq)}")
    body = ",".join(f"{v:.{precision}g}" for v in flat)
    return ((" ".join(head) + " | " if head else "") + body + "\n").encode("ascii")


class Record:
    """A parsed sample: ``payload`` (frame bytes or line numbers), the sensor time ``t`` in
    seconds on the sensor's clock or None, the sequence number ``seq`` or None, and the
    stream byte ``offset`` where it started."""

    __slots__ = ("payload", "t", "seq", "offset")

    def __init__(self, payload, t=None, seq=None, offset=0):
        self.payload, self.t, self.seq, self.offset = payload, t, seq, offset

    def __repr__(self):
        return f"Record(t={self.t}, seq={self.seq}, offset={self.offset})"


class FrameReader:
    """Incremental frame parser: ``feed(data)`` returns the payloads of the complete, valid
    frames found so far, ``feed_records(data)`` the same as Records with their stamps;
    ``garbage_bytes`` and ``bad_frames`` count what was skipped."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.buf = bytearray()
        self.max_payload = int(max_payload)
        self.garbage_bytes = 0
        self.bad_frames = 0
        self.offset = 0  # stream byte offset of buf[0], for error messages

    def feed(self, data: bytes) -> list[bytes]:
        return [r.payload for r in self.feed_records(data)]

    def feed_records(self, data: bytes) -> list[Record]:
        buf = self.buf
        buf += data
        out = []
        while True:
            i = buf.find(b"\xa5")
            while i >= 0 and i + 1 < len(buf) and buf[i + 1] not in (0x5A, 0x5B):
                i = buf.find(b"\xa5", i + 1)
            if i < 0:
                self._skip(len(buf))
                break
            if i:
                self._skip(i)
            if len(buf) < 4:
                break
            stamped = buf[1] == 0x5B
            (n,) = struct.unpack_from("<H", buf, 2)
            if n > self.max_payload:
                self._skip(1)
                continue
            head = 16 if stamped else 4  # magic, length, then seq and time when stamped
            if len(buf) < head + n + 4:
                break
            (crc,) = struct.unpack_from("<I", buf, head + n)
            if zlib.crc32(bytes(buf[2:head + n])) != crc:
                self.bad_frames += 1
                self._skip(1)
                continue
            t = seq = None
            if stamped:
                seq, tn = struct.unpack_from("<IQ", buf, 4)
                seq = None if seq == NO_SEQ else seq
                t = None if tn == NO_TIME else tn * 1e-9
            out.append(Record(bytes(buf[head:head + n]), t, seq, self.offset))
            del buf[:head + n + 4]
            self.offset += head + n + 4
        return out

    def _skip(self, k: int) -> None:
        if k > 0:
            del self.buf[:k]
            self.garbage_bytes += k
            self.offset += k


class LineReader:
    """Incremental line parser: ``feed(data)`` returns one float64 array per complete line,
    ``feed_records(data)`` Records with the line's stamps; lines that are not numbers are
    counted in ``bad_lines`` (blank lines are ignored)."""

    def __init__(self, max_line: int = MAX_LINE):
        self.buf = bytearray()
        self.max_line = int(max_line)
        self.bad_lines = 0
        self.garbage_bytes = 0
        self.offset = 0  # stream byte offset of buf[0]

    def feed(self, data: bytes) -> list[np.ndarray]:
        return [r.payload for r in self.feed_records(data)]

    def feed_records(self, data: bytes) -> list[Record]:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > self.max_line:  # no newline for too long: not a line stream
                    self.garbage_bytes += len(self.buf)
                    self.offset += len(self.buf)
                    self.bad_lines += 1
                    self.buf.clear()
                break
            at = self.offset
            line = bytes(self.buf[:i]).strip()
            del self.buf[:i + 1]
            self.offset += i + 1
            if not line:
                continue
            try:
                out.append(_parse_line(line, at))
            except ValueError:
                self.bad_lines += 1
                self.garbage_bytes += len(line)
        return out


def _parse_line(line: bytes, offset: int) -> Record:
    t = seq = None
    if b"|" in line:
        head, line = line.split(b"|", 1)
        for field in _SEP.split(head.strip()):
            if not field:
                continue
            key, eq, val = field.partition(b"=")
            if not eq:
                raise ValueError(f"stamp field {field!r} is not key=value")
            if key == b"t":
                t = float(val)
                if not np.isfinite(t):
                    raise ValueError("t is not finite")
            elif key == b"seq":
                seq = int(val)
            else:
                raise ValueError(f"unknown stamp field {key!r}")
    values = np.array([float(x) for x in _SEP.split(line.strip()) if x], np.float64)
    return Record(values, t, seq, offset)
