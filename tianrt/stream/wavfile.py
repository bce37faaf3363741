"""A small reader of PCM wav files that trusts the data, not the header's sizes.

The standard library's ``wave`` takes the frame count from the header. Recorders that are
killed before they finish leave a data size of 0, and streamed wavs a size of 0xFFFFFFFF; a
header can also claim more audio than the file holds. This reader finds the ``fmt `` and
``data`` chunks (RIFF, little-endian), and reads the data up to the real end: the declared
size when it fits in the file, else the end of the file (a size of 0 or 0xFFFFFFFF always
means "to the end"). A partial sample frame at the very end is dropped. Integer PCM of
8/16/24/32 bits, plain or WAVE_FORMAT_EXTENSIBLE. Errors name the byte offset.
"""
from __future__ import annotations

import os
import struct

PCM, EXTENSIBLE = 1, 0xFFFE
_NAMES = {3: "IEEE float", 6: "A-law", 7: "mu-law", 2: "ADPCM", 0x55: "MP3"}


class WavError(ValueError):
    """A file that is not a PCM wav this reader can play."""


class WavFile:
    """``rate``, ``channels``, ``width`` (bytes per sample), ``header_frames`` (what the
    header claims, or None) and ``read(n)``: the next whole frames, as bytes."""

    def __init__(self, path):
        self.path = str(path)
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise WavError(f"not a RIFF/WAVE file: bytes 0-11 are {head!r} (a wav starts with "
                               "b'RIFF....WAVE')")
            fmt = None
            pos = 12
            while True:
                f.seek(pos)
                ch = f.read(8)
                if len(ch) < 8:
                    what = "a 'data' chunk" if fmt else "a 'fmt ' chunk"
                    raise WavError(f"the file ends at byte {size} without {what} (chunk header "
                                   f"expected at byte {pos})")
                cid, n = ch[:4], struct.unpack("<I", ch[4:])[0]
                if cid == b"fmt ":
                    body = f.read(min(n, 40))
                    if len(body) < 16:
                        raise WavError(f"the header is cut short: the 'fmt ' chunk at byte {pos} needs "
                                       f"16 bytes, the file has {len(body)}")
                    fmt = self._parse_fmt(body, pos)
                elif cid == b"data":
                    if fmt is None:
                        raise WavError(f"a 'data' chunk at byte {pos} before any 'fmt ' chunk")
                    start = pos + 8
                    self.header_frames = None if n in (0, 0xFFFFFFFF) else n // self.frame
                    end = size if n in (0, 0xFFFFFFFF) or start + n > size else start + n
                    self.data_start, self.data_end = start, end
                    break
                pos += 8 + n + (n & 1)
        self._f = None
        self._pos = self.data_start

    def _parse_fmt(self, body: bytes, at: int):
        code, ch, rate, _, align, bits = struct.unpack_from("<HHIIHH", body)
        if code == EXTENSIBLE and len(body) >= 40:
            code = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID's first two bytes
        if code != PCM:
            raise WavError(f"format code {code} ({_NAMES.get(code, 'not PCM')}) in the 'fmt ' chunk at "
                           f"byte {at}; 8, 16, 24 or 32-bit integer PCM is supported")
        if ch < 1 or rate < 1:
            raise WavError(f"{ch} channel(s) at {rate} Hz in the 'fmt ' chunk at byte {at}")
        if bits not in (8, 16, 24, 32):
            raise WavError(f"{bits}-bit samples; 8, 16, 24 or 32-bit PCM is supported")
        self.channels, self.rate, self.width = ch, rate, bits // 8
        self.frame = ch * self.width
        return True

    def read(self, nframes: int) -> bytes:
        if self._f is None:
            self._f = open(self.path, "rb")
            self._f.seek(self._pos)
        want = min(nframes * self.frame, self.data_end - self._pos)
        data = self._f.read(max(want, 0))
        self._pos += len(data)
        return data[:len(data) // self.frame * self.frame]

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
