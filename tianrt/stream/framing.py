"""Wire formats of serial sensor streams: text lines and binary frames.

Lines: one sample per line, numbers separated by commas, spaces, tabs or semicolons,
ending in ``\\n`` (a ``\\r`` before it is ignored), e.g. ``0.12,-3.5,9.81``.

Frames (all little-endian)::

    A5 5A | length: u16 | payload: length bytes | crc: u32 = zlib.crc32(length bytes + payload)

The payload holds the sample's numbers in the stream's dtype (float32 by default). A reader
looks for the magic, checks the length and the CRC, and on a mismatch skips one byte and looks
again, so garbage between frames (or a corrupt frame) costs only the bytes it occupies.
A length above the reader's ``max_payload`` (the sample size, when the reader knows it) is
taken for garbage at once.
"""
from __future__ import annotations

import re
import struct
import zlib

import numpy as np

MAGIC = b"\xa5\x5a"
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


def encode_frame(values, dtype="<f4") -> bytes:
    payload = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = struct.pack("<H", len(payload))
    return MAGIC + head + payload + struct.pack("<I", zlib.crc32(head + payload))


def encode_line(values, precision: int = 6) -> bytes:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return (",".join(f"{v:.{precision}g}" for v in flat) + "\n").encode("ascii")


class FrameReader:
    """Incremental frame parser: ``feed(data)`` returns the payloads of the complete, valid
    frames found so far; ``garbage_bytes`` and ``bad_frames`` count what was skipped."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.buf = bytearray()
        self.max_payload = int(max_payload)
        self.garbage_bytes = 0
        self.bad_frames = 0
        self.offset = 0  # stream byte offset of buf[0], for error messages

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf
        buf += data
        out = []
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                keep = 1 if buf.endswith(MAGIC[:1]) else 0  # a magic may straddle reads
                self._skip(len(buf) - keep)
                break
            if i:
                self._skip(i)
            if len(buf) < 4:
                break
            (n,) = struct.unpack_from("<H", buf, 2)
            if n > self.max_payload:
                self._skip(1)
                continue
            if len(buf) < 8 + n:
                break
            (crc,) = struct.unpack_from("<I", buf, 4 + n)
            if zlib.crc32(bytes(buf[2:4 + n])) != crc:
                self.bad_frames += 1
                self._skip(1)
                continue
            out.append(bytes(buf[4:4 + n]))
            del buf[:8 + n]
            self.offset += 8 + n
        return out

    def _skip(self, k: int) -> None:
        if k > 0:
            del self.buf[:k]
            self.garbage_bytes += k
            self.offset += k


class LineReader:
    """Incremental line parser: ``feed(data)`` returns one float64 array per complete line;
    lines that are not numbers are counted in ``bad_lines`` (blank lines are ignored)."""

    def __init__(self, max_line: int = MAX_LINE):
        self.buf = bytearray()
        self.max_line = int(max_line)
        self.bad_lines = 0
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> list[np.ndarray]:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > self.max_line:  # no newline for too long: not a line stream
                    self.garbage_bytes += len(self.buf)
                    self.bad_lines += 1
                    self.buf.clear()
                break
            line = bytes(self.buf[:i]).strip()
            del self.buf[:i + 1]
            if not line:
                continue
            try:
                out.append(np.array([float(x) for x in _SEP.split(line) if x], np.float64))
            except ValueError:
                self.bad_lines += 1
                self.garbage_bytes += len(line)
        return out
