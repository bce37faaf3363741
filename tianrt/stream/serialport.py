"""Serial sensor sources through pyserial: any pyserial URL (``loop://``,
``socket://host:port``, ``rfc2217://…``), a device or pty path, or an already open port.

Reads never block: each poll takes the bytes waiting in the port and parses them as text
lines or binary frames (tianrt.stream.framing). A sample that carries its sensor time is
placed at that time (mapped onto stream time by tianrt.stream.sensortime); one without is
stamped with the poll's stream time (``timestamps: arrival`` in the report). Sequence numbers, when sent, count samples lost on the way (``lost``).
"""
from __future__ import annotations

import numpy as np

from .base import Source, StreamError
from .framing import DEFAULT_MAX_PAYLOAD, FrameReader, LineReader, check_format
from .sensortime import SensorClock, SequenceCounter


def open_port(port, baudrate: int, who: str, write_timeout: float | None = None):
    """(port object, owned): opens a URL or path with pyserial; passes an open port through."""
    if not isinstance(port, (str, bytes)) and hasattr(port, "read") and hasattr(port, "write"):
        return port, False
    import serial

    try:
        # reads never block the tick loop: they take what is waiting
        return serial.serial_for_url(str(port), baudrate=int(baudrate), timeout=0,
                                     write_timeout=write_timeout), True
    except (serial.SerialException, OSError, ValueError) as exc:
        raise StreamError(f"serial {who} {port!r}: cannot open ({exc}); give a device path "
                          "such as /dev/ttyUSB0 or a pyserial URL such as loop:// or "
                          "socket://host:port") from None


class SerialSource(Source):
    """Samples from a serial device. ``format="lines"``: one sample per text line of numbers;
    ``format="frames"``: binary frames whose payload holds the numbers in ``dtype``.
    Each sample is reshaped to the input's shape when its size fits (otherwise rejected
    as the wrong shape). ``scale`` multiplies the raw numbers (e.g. ADC counts to volts).
    Frames longer than ``max_payload`` bytes (default: one sample of the input it feeds) are
    skipped as garbage without waiting for their bytes."""

    kind = "serial"
    default_policy = "never-drop"

    def __init__(self, port, *, format: str = "lines", baudrate: int = 115200, dtype="<f4",
                 scale: float = 1.0, max_read: int = 1 << 16, max_payload: int | None = None, **kw):
        super().__init__(**kw)
        self.format = check_format(format)
        self.port_arg = port
        self.baudrate = int(baudrate)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.scale = float(scale)
        self.max_read = int(max_read)
        self.max_payload = max_payload
        self.shape = None
        self.port = None
        self._owned = False
        self._reader = None

    def fit(self, shape, domain):
        self.shape = tuple(shape)

    def open(self, clock, dt):
        if self.format == "lines":
            self._reader = LineReader()
        else:
            limit = self.max_payload
            if limit is None:  # frames longer than one sample cannot be ours
                limit = (int(np.prod(self.shape)) * self.dtype.itemsize if self.shape is not None
                         else DEFAULT_MAX_PAYLOAD)
            self._reader = FrameReader(max_payload=limit)
        self.extra = {"garbage_bytes": 0, "bad_lines" if self.format == "lines" else "bad_frames": 0}
        self._clock, self._seq = SensorClock(), SequenceCounter()
        if self.port is None:
            self.port, self._owned = open_port(self.port_arg, self.baudrate, f"source `{self.name}`")
        self.ended = False

    def poll(self, t):
        n = self.port.in_waiting
        if not n:
            return []
        data = self.port.read(min(n, self.max_read))
        r = self._reader
        recs = r.feed_records(data)
        if self.format == "lines":
            self.extra["bad_lines"] = r.bad_lines
        else:
            ok = []
            for rec in recs:
                if len(rec.payload) % self.dtype.itemsize:
                    r.bad_frames += 1  # a valid frame whose payload is not whole numbers
                    continue
                rec.payload = np.frombuffer(rec.payload, self.dtype).astype(np.float64)
                ok.append(rec)
            recs = ok
            self.extra["bad_frames"] = r.bad_frames
        self.extra["garbage_bytes"] = r.garbage_bytes
        for rec in recs:
            if rec.seq is not None:
                self._seq.see(rec.seq)
        if self._seq.prev is not None:
            self.extra["lost"] = self._seq.lost
            self.extra["out_of_order"] = self._seq.out_of_order
        stamped = [rec.t for rec in recs if rec.t is not None]
        placed = iter(self._clock.place(t, stamped))
        out = []
        for rec in recs:
            v = rec.payload
            if self.shape is not None and v.size == int(np.prod(self.shape)):
                v = v.reshape(self.shape)
            # no stamp: the time of the tick that read it
            ts = next(placed) if rec.t is not None else t
            self.time_base = "sensor" if rec.t is not None else "arrival"
            out.append((ts, v * self.scale if self.scale != 1.0 else v))
        return out

    def close(self):
        if self.port is not None and self._owned:
            try:
                self.port.close()
            finally:
                self.port = None

    def describe(self):
        return f"{self.port_arg!r} ({self.format}, {self.baudrate} baud)"
