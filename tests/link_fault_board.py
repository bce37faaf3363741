"""An in-process board for the link fault tests (tests only): firmware_sim's Server on a
thread behind a TCP socket, with hooks that damage, drop, repeat or delay whole frames in
either direction, so ChipLink is tested through pyserial's socket:// transport."""
from __future__ import annotations

import select
import socket
import threading

from tianrt.firmware_sim.server import Server

from link_engine_double import FakeEngine


def split_frames(buf: bytearray) -> list[bytes]:
    """Pop complete wire frames (content between zero delimiters) off the front of buf."""
    out = []
    while True:
        i = buf.find(b"\x00")
        if i < 0:
            return out
        block = bytes(buf[:i])
        del buf[:i + 1]
        if block:
            out.append(block)


class FaultBoard:
    """``to_board(n, block) -> bytes`` and ``to_host(n, block) -> bytes`` get the n-th frame
    (COBS block, no delimiters) of each direction and return the wire bytes to pass on
    (``b"\\0" + block + b"\\0"`` passes it unchanged, ``b""`` drops it)."""

    def __init__(self, to_board=None, to_host=None, engine_factory=FakeEngine, **server_options):
        self.server = Server(engine_factory, **server_options)
        self.to_board = to_board or (lambda n, b: b"\x00" + b + b"\x00")
        self.to_host = to_host or (lambda n, b: b"\x00" + b + b"\x00")
        self.n_in = self.n_out = 0
        self.lock = threading.RLock()
        self.conn = None
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.url = f"socket://127.0.0.1:{self.lsock.getsockname()[1]}"
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def send_to_host(self, wire: bytes) -> None:
        conn = self.conn
        if conn is not None and wire:
            try:
                conn.sendall(wire)
            except OSError:     # the host hung up meanwhile (it is reconnecting)
                pass

    def reboot(self) -> None:
        """A firmware reset now: the board forgets everything and announces it."""
        with self.lock:
            self.send_to_host(self.server.boot())

    def _loop(self) -> None:
        inbuf = bytearray()
        while not self._stop:
            watch = [self.conn] if self.conn is not None else [self.lsock]
            if not select.select(watch, [], [], 0.05)[0]:
                continue
            if self.conn is None:
                self.conn, _ = self.lsock.accept()
                inbuf.clear()
                continue
            try:
                data = self.conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.conn.close()
                self.conn = None
                continue
            inbuf += data
            for block in split_frames(inbuf):
                self.n_in += 1
                with self.lock:
                    out = bytearray(self.server.feed(self.to_board(self.n_in, block)))
                    for reply in split_frames(out):
                        self.n_out += 1
                        self.send_to_host(self.to_host(self.n_out, reply))

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        if self.conn is not None:
            self.conn.close()
        self.lsock.close()
