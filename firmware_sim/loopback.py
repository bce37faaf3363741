"""An in-process board behind pyserial's ``Serial`` methods, for tests and tools: the bytes the
host writes go through the protocol server (framing, CRC, sessions, REGION addressing: all of
it) and its replies wait to be read. No thread, no pty: a request is executed when it is
written (the host's link is stop-and-wait).

    port = BoardPort(spec.to_dict())
    link = tr.chip.ChipLink(port)                     # or tr.chip.open_many(part, port=port)
"""
from __future__ import annotations

from .engine import Engine
from .server import Server


class BoardPort:
    def __init__(self, spec: dict | None = None, *, engine_factory=None, name: str = "in-process board"):
        self.server = Server(engine_factory or (lambda: Engine(spec)))
        self.name = name
        self.is_open = True
        self._rx = bytearray()

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise OSError(f"{self.name}: the port is closed")
        self._rx += self.server.feed(bytes(data))
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, n: int = 1) -> bytes:
        if not self.is_open:
            raise OSError(f"{self.name}: the port is closed")
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def reboot(self) -> None:
        """The board restarts (power cycle): image, regions and state are gone; it says BOOT."""
        self._rx += self.server.boot()

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
