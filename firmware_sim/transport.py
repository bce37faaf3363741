"""Transports of the emulated board: ``serve_pty`` and ``serve_socket`` connect a
``Server`` (server.py) to a pseudo-terminal or a TCP socket through ``Pump`` (requests
execute on a worker thread, repeats of a running one get BUSY) and ``_Outbox`` (replies
never block the board); signals reboot or stop it. Protocol: docs/protocol.md.
"""
from __future__ import annotations

import os
import queue
import select
import signal
import socket
import sys
import threading
import time
import traceback

import tianrt.chip.protocol as P

from .server import Server

class Pump:
    """Connects a Server to a transport: the transport's read loop hands bytes to ``data``,
    requests execute one after another on a worker thread, and a retransmission of the
    request being executed is answered at once with BUSY, so that a long command (a long
    RUN, the first RUN that compiles kernels) never looks like a dead board to the host.
    ``write(bytes)`` must be safe to call from two threads."""

    def __init__(self, server: Server, write):
        self.server = server
        self.write = write
        self.lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue()
        self.inflight: set[bytes] = set()
        self.running: P.Frame | None = None      # the request the worker is executing
        self.thread = threading.Thread(target=self._work, name="firmware_sim-worker", daemon=True)
        self.thread.start()

    def data(self, data: bytes) -> None:
        with self.lock:
            for block in self.server.deframer.feed(data):
                r = self.server.admit(block)
                if isinstance(r, bytes):
                    self.write(r)
                elif r[0].cmd == P.ABORT:     # answered at once, never queued
                    self._abort(r[0])
                elif r[1] in self.inflight:
                    run = self.running
                    queued = run is None or (run.cmd, run.seq) != (r[0].cmd, r[0].seq)
                    self.write(self.server.busy(r[0], queued))
                else:
                    self.inflight.add(r[1])
                    self.queue.put(r)

    def _abort(self, frame: P.Frame) -> None:
        """ABORT: requests not started yet are dropped (their host gets no reply and is told
        by the ABORT's), the running one stops at its next tick boundary."""
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                self.inflight.discard(item[1])
        running = self.running
        try:
            payload = self.server.abort(frame.payload, running.cmd if running is not None else None)
            reply = P.encode_frame(P.ACK, frame.cmd, frame.seq, payload)
        except P.ProtocolError as exc:
            reply = P.encode_frame(P.NAK, frame.cmd, frame.seq, P.pack_nak(exc.code, exc.message))
        self.write(reply)

    def reboot(self) -> None:
        with self.lock:
            while not self.queue.empty():        # requests not started yet die with the board
                item = self.queue.get_nowait()
                if item is not None:
                    self.inflight.discard(item[1])
            if self.running is not None:         # the running one stops at its next tick
                self.server.stop_running()
            self.write(self.server.boot())

    def reset_stream(self) -> None:
        with self.lock:
            self.server.deframer = P.Deframer(self.server.max_encoded)

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            frame, body = item
            with self.lock:
                self.running = frame
            try:
                reply = self.server.complete(frame, body)
            except Exception as exc:  # noqa: BLE001 - complete() handles errors; belt and braces
                self.server.log("worker error:\n" + traceback.format_exc())
                reply = P.encode_frame(P.NAK, frame.cmd, frame.seq,
                                       P.pack_nak(P.E_INTERNAL, f"{type(exc).__name__}: {exc}"))
            with self.lock:
                self.running = None
                self.inflight.discard(body)
                self.write(reply)

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(5)


class _Flags:
    reboot = False
    stop = False


def _install_signals(flags: _Flags) -> None:
    def on_reboot(signum, frame):
        flags.reboot = True

    def on_stop(signum, frame):
        flags.stop = True

    if hasattr(signal, "SIGUSR1"):               # POSIX: simulate a watchdog reset / power glitch
        signal.signal(signal.SIGUSR1, on_reboot)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)


def _parent_gone(parent: int | None) -> bool:
    return parent is not None and os.getppid() != parent


class _Outbox:
    """Reply bytes on their way to the port. ``put`` (read loop or worker) writes straight to
    the port when nothing is queued and the port takes it (non-blocking); the rest is queued
    and the read loop, woken through a pipe, writes it when the port is writable. A host that
    stops reading therefore never blocks the board: past ``limit`` queued bytes new replies
    are dropped whole (the host times out, asks again and gets the stored reply).
    ``write(bytes) -> int`` is the port's non-blocking write; it raises BlockingIOError when
    the port is full and OSError when it is gone."""

    def __init__(self, write, limit: int = 1 << 20):
        self.write = write
        self.limit = limit
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.dropped = 0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def _write(self, data) -> int:
        try:
            return self.write(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return len(data)     # no host on the other end: nobody to send to

    def put(self, data: bytes) -> None:
        with self.lock:
            if not self.buf:
                data = data[self._write(data):]
                if not data:
                    return
            elif len(self.buf) + len(data) > self.limit:
                self.dropped += 1
                return
            self.buf += data     # (the rest of a partly written frame is always kept)
        try:
            os.write(self.wake_w, b"!")
        except BlockingIOError:
            pass   # the loop has wake-ups pending already

    def drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def pending(self) -> bool:
        return bool(self.buf)

    def clear(self) -> None:
        with self.lock:
            self.buf.clear()

    def flush(self) -> None:
        """Write what the port takes now (the read loop calls this when it is writable)."""
        with self.lock:
            n = self._write(bytes(self.buf[:65536]))
            del self.buf[:n]

    def close(self) -> None:
        os.close(self.wake_r)
        os.close(self.wake_w)


def serve_pty(server: Server, *, announce=print, exit_with_parent: int | None = None) -> int:
    """Serve on a new pseudo-terminal; announce its path (the host opens that path)."""
    import tty   # POSIX only, like os.openpty

    master, slave = os.openpty()
    tty.setraw(slave)          # no echo, no line discipline: a clean 8-bit byte pipe
    os.set_blocking(master, False)
    out = _Outbox(lambda b: os.write(master, b))
    flags = _Flags()
    _install_signals(flags)
    pump = Pump(server, out.put)
    announce(os.ttyname(slave))
    # our copy of the slave stays open: a host that closes and reopens the port (reconnect)
    # must not make the master see a hangup
    try:
        while not flags.stop and not _parent_gone(exit_with_parent):
            if flags.reboot:
                flags.reboot = False
                pump.reboot()
            r, w, _ = select.select([master, out.wake_r], [master] if out.pending() else [], [], 0.2)
            if out.wake_r in r:
                out.drain_wakeups()
            if w:
                out.flush()
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:     # BlockingIOError, or EIO while no one has the slave open
                    continue
                pump.data(data)
    finally:
        pump.stop()
        out.close()
        os.close(master)
        os.close(slave)
    return 0


class _Contender:
    """A socket connection while another host holds the board: only its HELLO is read, to
    answer "busy, held by ..." or to let it take over (HELLO flag), proof checked first."""

    def __init__(self, conn, peer):
        self.conn, self.peer = conn, peer
        self.deframer = P.Deframer()
        self.challenge = os.urandom(16)

    def reply(self, frame, kind, payload) -> None:
        try:
            self.conn.setblocking(True)
            self.conn.settimeout(1.0)
            self.conn.sendall(P.encode_frame(kind, frame.cmd, frame.seq, payload))
            self.conn.setblocking(False)
        except OSError:
            pass


def _stop_running(pump: Pump, limit: float = 5.0) -> None:
    """Abort the command the worker executes for the previous host and wait for it."""
    deadline = time.monotonic() + limit
    if pump.running is not None:
        pump.server.stop_running()
    while pump.running is not None and time.monotonic() < deadline:
        time.sleep(0.005)


def serve_socket(server: Server, port: int = 0, *, host: str = "127.0.0.1", announce=print,
                 exit_with_parent: int | None = None) -> int:
    """Serve TCP clients on host:port (0 = any free port); announce the pyserial URL. One
    host holds the board at a time (a session); a second connection is answered "busy, held
    by ..." unless its HELLO asks to take over. Each new session starts from the loaded
    image with a fresh state: the previous host's inputs and outputs are gone."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(8)
    conn: socket.socket | None = None
    held = {"peer": None, "since": 0.0, "last": 0.0}
    others: dict = {}

    def send(data) -> int:
        if conn is None:
            raise OSError("no host connected")
        return conn.send(data)

    out = _Outbox(send)
    flags = _Flags()
    _install_signals(flags)
    pump = Pump(server, out.put)
    announce(f"socket://{host}:{lsock.getsockname()[1]}")

    def drop() -> None:
        nonlocal conn
        if conn is not None:
            conn.close()
            conn = None
        out.clear()             # replies for that host are of no use to the next one
        pump.reset_stream()

    def own(c, peer, challenge=None) -> None:
        nonlocal conn
        drop()
        _stop_running(pump)
        with pump.lock:
            server.new_session(challenge)
        conn = c
        held.update(peer=peer, since=time.time(), last=time.monotonic())
        server.log(f"session for {peer}")

    def contend(cd: _Contender, data: bytes) -> None:
        for i, block in enumerate(cd.deframer.feed(data)):
            try:
                frame = P.decode_frame(block) if block is not None else None
            except P.ProtocolError:
                continue
            if frame is None or frame.kind != P.REQUEST:
                continue
            try:
                if frame.cmd != P.HELLO:
                    raise P.ProtocolError(P.E_BUSY, "say HELLO first")
                _v, nonce, fl, proof = P.read_hello_full(frame.payload)
                server.check_proof(nonce, fl, proof, cd.challenge)
                if conn is not None and not fl & P.HELLO_TAKE_OVER:   # (a free board: it is ours)
                    idle = time.monotonic() - held["last"]
                    since = time.strftime("%H:%M:%S", time.localtime(held["since"]))
                    raise P.ProtocolError(P.E_BUSY, f"board busy, held by {held['peer']} since {since} "
                                          f"(last request {idle:.0f} s ago); wait for it to disconnect, or "
                                          f"take it over (ChipLink(..., take_over=True), tianrt chip "
                                          f"--take-over)")
            except P.ProtocolError as exc:
                cd.reply(frame, P.NAK, P.pack_nak(exc.code, exc.message))
                continue
            del others[cd.conn]
            if conn is not None:
                server.log(f"{cd.peer} takes the board over from {held['peer']}")
            own(cd.conn, cd.peer, cd.challenge)
            pump.data(b"\x00" + block + b"\x00")    # the HELLO, now from the owner
            return

    try:
        while not flags.stop and not _parent_gone(exit_with_parent):
            if flags.reboot:
                flags.reboot = False
                pump.reboot()
            watch = [lsock, out.wake_r] + ([conn] if conn is not None else []) + list(others)
            if conn is None:
                out.clear()     # nobody to send to
            r, w, _ = select.select(watch, [conn] if conn is not None and out.pending() else [], [], 0.2)
            if out.wake_r in r:
                out.drain_wakeups()
            if w:
                out.flush()
            if conn is not None and conn in r:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data:
                    held["last"] = time.monotonic()
                    pump.data(data)
                elif data is not None:
                    server.log(f"{held['peer']} disconnected")
                    drop()
            for c in [c for c in others if c in r]:
                try:
                    data = c.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    others.pop(c).conn.close()
                else:
                    contend(others[c], data)
            if lsock in r:
                try:
                    c, addr = lsock.accept()
                except OSError:
                    continue
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = f"{addr[0]}:{addr[1]}"
                if conn is None:
                    own(c, peer)
                else:
                    others[c] = _Contender(c, peer)
    finally:
        pump.stop()
        drop()
        for cd in others.values():
            cd.conn.close()
        out.close()
        lsock.close()
    return 0


def stderr_log(msg: str) -> None:
    print(f"firmware_sim[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)

