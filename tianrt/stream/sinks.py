"""Sinks: where output values go - a callable, an in-memory array, or a serial writer."""
from __future__ import annotations

import inspect

import numpy as np

from .base import Sink, StreamError


def _arity(fn) -> int:
    """How many positional arguments ``fn`` takes (2 when it cannot be told)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in params)


class CallableSink(Sink):
    """Calls ``fn(value)`` or ``fn(value, t)`` (t: stream seconds) for every output value."""

    kind = "callable"

    def __init__(self, fn):
        if not callable(fn):
            raise StreamError(f"CallableSink needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self._two = _arity(fn) >= 2

    def write(self, value, tick, t):
        if self._two:
            self.fn(value, t)
        else:
            self.fn(value)


class ArraySink(Sink):
    """Collects every value with its tick and stream time. ``values`` stacks them (leading
    axis over the values), ``ticks`` and ``times`` say when; ``maxlen`` keeps only the last N."""

    kind = "array"

    def __init__(self, maxlen: int | None = None):
        from collections import deque

        self._v = deque(maxlen=maxlen)
        self._tick = deque(maxlen=maxlen)
        self._t = deque(maxlen=maxlen)

    def write(self, value, tick, t):
        self._v.append(value)
        self._tick.append(tick)
        self._t.append(t)

    def __len__(self):
        return len(self._v)

    @property
    def values(self) -> np.ndarray:
        return np.stack(list(self._v)) if self._v else np.zeros((0,), np.float32)

    @property
    def ticks(self) -> np.ndarray:
        return np.asarray(self._tick, np.int64)

    @property
    def times(self) -> np.ndarray:
        return np.asarray(self._t, np.float64)

    @property
    def latest(self):
        return self._v[-1] if self._v else None


class SerialSink(Sink):
    """Writes each value to a serial port (any pyserial URL, a device path, or an open port
    object): ``format="lines"`` as one text line of comma-separated numbers, or
    ``format="frames"`` as a binary frame (tianrt.stream.framing) that SerialSource reads back.
    Write errors, including writes that cannot finish within ``write_timeout`` seconds (a
    device that stopped reading), are counted (``errors``) rather than stopping the stream.
    ``stamped=True`` writes stamped lines or frames: the value's stream time as ``t`` and a
    sequence number, so that a SerialSource on another machine gets sensor time and counts
    lost values."""

    kind = "serial"

    def __init__(self, port, *, format: str = "lines", baudrate: int = 115200, dtype="<f4",
                 precision: int = 6, write_timeout: float = 0.05, stamped: bool = False):
        from .framing import check_format

        self.stamped = bool(stamped)
        self.format = check_format(format)
        self.port_arg, self.baudrate = port, int(baudrate)
        self.dtype = np.dtype(dtype)
        self.precision = int(precision)
        self.write_timeout = float(write_timeout)
        self.port = None
        self._owned = False
        self.errors = 0
        self.written = 0

    def open(self, clock, dt):
        from .serialport import open_port

        if self.port is None:
            self.port, self._owned = open_port(self.port_arg, self.baudrate, "sink",
                                               write_timeout=self.write_timeout)

    def write(self, value, tick, t):
        from .framing import encode_frame, encode_line

        stamp = {"t": t, "seq": self.written + self.errors} if self.stamped else {}
        data = (encode_line(value, self.precision, **stamp) if self.format == "lines"
                else encode_frame(value, self.dtype, **stamp))
        try:
            self.port.write(data)
            self.written += 1
        except Exception:  # noqa: BLE001 - an unplugged device must not stop the stream
            self.errors += 1

    def close(self):
        if self.port is not None and self._owned:
            try:
                self.port.close()
            finally:
                self.port = None


def as_sink(obj) -> Sink:
    """A Sink from a Sink, a list (values are appended) or a callable."""
    if isinstance(obj, Sink):
        return obj
    if isinstance(obj, list):
        return CallableSink(obj.append)
    if callable(obj):
        return CallableSink(obj)
    raise StreamError(f"a sink must be a tianrt.stream.Sink, a list or a callable, got {type(obj).__name__}")
