"""The framing layer of ChipLink: the port (pty, device, socket or a spawned emulator),
frames in and out, one request retransmitted until its reply (BUSY, NAK, ABORT handling),
and chunked uploads / paged results. Recovery, the journal and the API are in link.py.
Protocol: docs/protocol.md."""
from __future__ import annotations

import logging
import subprocess
import time
import zlib

import serial

from . import local_board, protocol as P
from .errors import LinkError

log = logging.getLogger("tianrt.chip.link")

try:   # pyserial lets termios.error (not an OSError) through when a pty's other end is gone
    from termios import error as _TermiosError
except ImportError:  # pragma: no cover - Windows
    class _TermiosError(Exception):
        pass
PORT_ERRORS = (serial.SerialException, OSError, _TermiosError)


class _SessionLost(Exception):
    """The board restarted or the connection dropped; recover and redo the transaction."""


class LinkBase:
    """Port, frames and exchanges of a ChipLink (attributes are set by ChipLink.__init__)."""

    _proc: subprocess.Popen | None = None
    _ser = None
    _closed = True

    # -- connection ----------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """The port actually in use (with port="auto": the emulator's pty path)."""
        return self._where

    def _stop_proc(self) -> None:
        proc, self._proc = self._proc, None
        local_board.stop(proc)

    def _connect(self) -> None:
        if not isinstance(self.port, str):   # an open port object (pyserial's Serial API)
            self._where = str(getattr(self.port, "name", None) or type(self.port).__name__)
            if not getattr(self.port, "is_open", True):
                self.port.open()
            self._ser = self.port
            self._rx = P.Deframer()
            self._frames.clear()
            return
        if self.port == "auto":
            if self._proc is None or self._proc.poll() is not None:
                self._stop_proc()
                try:
                    self._proc, self._where = local_board.spawn(self.spawn_args, self.connect_timeout)
                except TimeoutError as exc:
                    raise LinkError(f"port='auto': {exc}") from None
        else:
            self._where = self.port
        try:
            self._ser = serial.serial_for_url(self._where, baudrate=self.baudrate,
                                              timeout=min(0.05, self.timeout), write_timeout=self.timeout)
        except (*PORT_ERRORS, ValueError) as exc:
            raise LinkError(f"cannot open {self._where!r}: {exc}") from None
        self._rx = P.Deframer()
        self._frames.clear()

    def _disconnect(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except PORT_ERRORS:
                pass

    def close(self) -> None:
        """Close the port; with port='auto' also stop the emulator process."""
        self._closed = True
        self._disconnect()
        self._stop_proc()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not self._closed:
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- frames --------------------------------------------------------------------------------
    def _send(self, wire: bytes) -> None:
        try:
            with self._write_lock:
                self._ser.write(wire)
        except PORT_ERRORS as exc:
            raise _SessionLost(f"write to {self._where} failed ({exc})") from None
        self.stats["frames_sent"] += 1
        self.stats["bytes_sent"] += len(wire)

    def _send_abort(self) -> None:
        """An ABORT frame (seq 0, which requests never use): the board answers it at once and
        stops the command it is executing at its next tick boundary."""
        ser = self._ser
        if ser is None:
            return
        try:
            with self._write_lock:
                ser.write(P.encode_frame(P.REQUEST, P.ABORT, 0))
        except PORT_ERRORS:
            pass

    def _next_frame(self, deadline: float) -> P.Frame | None:
        """The next intact frame from the board, or None at the deadline. Damaged frames
        from the board are dropped (the request is then sent again)."""
        while True:
            if self._frames:
                return self._frames.pop(0)
            if time.monotonic() >= deadline:
                return None
            try:
                data = self._ser.read(max(1, self._ser.in_waiting))
            except PORT_ERRORS as exc:
                raise _SessionLost(f"read from {self._where} failed ({exc})") from None
            if not data:
                continue
            self.stats["bytes_received"] += len(data)
            for block in self._rx.feed(data):
                try:
                    if block is None:
                        raise P.ProtocolError(P.E_FRAME_TOO_LARGE, "oversized frame from the board")
                    self._frames.append(P.decode_frame(block))
                    self.stats["frames_received"] += 1
                except P.ProtocolError as exc:
                    self.stats["bad_frames"] += 1
                    log.debug("dropped a damaged frame from the board: %s", exc)

    def _exchange(self, cmd: int, payload: bytes = b"") -> P.Frame:
        """One request, retransmitted until its ACK/PAGED/NAK arrives. A BUSY answer (the
        board is still executing it) restarts the wait without using up a retry. Raises
        _SessionLost when the board restarted or the port failed, LinkError when the board
        stays silent for ``retries + 1`` timeouts or busy for ``busy_timeout``."""
        if self._ser is None:
            raise _SessionLost("not connected")
        self._seq = (self._seq + 1) % P.SEQ_MOD
        if self._seq in (0, P.NO_SEQ):
            self._seq = 1
        seq = self._seq
        wire = P.encode_frame(P.REQUEST, cmd, seq, payload)
        name = P.COMMAND_NAMES.get(cmd, hex(cmd))
        try:
            self._ser.reset_input_buffer()   # stale replies to earlier requests
        except PORT_ERRORS as exc:
            raise _SessionLost(f"{self._where}: {exc}") from None
        self._rx = P.Deframer()
        self._frames.clear()
        started = time.monotonic()
        tries = damaged = 0
        busy = False
        # A NAK for a damaged frame asks for a resend, but a burst of them (garbage on the
        # line, or stale NAKs still queued at the board) must cause one resend, not many:
        # resends caused by NAKs are at least `gap` apart.
        gap = min(self.timeout / 4, 0.02)
        resend_at = None
        aborted = False
        abortable = cmd in (P.RUN, P.STEP, P.STEPS, P.UPLOAD_COMMIT)
        state = "executing"
        self._send(wire)
        last_send = time.monotonic()
        deadline = last_send + self.timeout
        while True:
            try:
                f = self._next_frame(deadline if resend_at is None else min(deadline, resend_at))
            except KeyboardInterrupt:
                if not abortable or aborted:
                    raise
                self._interrupted = aborted = True     # stop the board too, then report
                self._send_abort()
                deadline = time.monotonic() + self.timeout
                continue
            if f is None:
                now = time.monotonic()
                if resend_at is not None and now < deadline:
                    resend_at = None          # a damaged-frame NAK: send again now
                elif busy:
                    busy = False    # it was working a moment ago: ask again, no retry used
                    if now - started > self.busy_timeout:
                        if abortable and not aborted:   # never leave the board wedged
                            aborted = True
                            self._send_abort()
                            deadline = time.monotonic() + self.timeout
                            continue
                        raise LinkError(f"{self._where}: {name} still {state} after "
                                        f"{self.busy_timeout:g} s (busy_timeout)", command=cmd)
                else:
                    self.stats["timeouts"] += 1
                    tries += 1
                    if tries > self.retries:
                        raise LinkError(f"{self._where}: no reply to {name} after {tries} tries "
                                        f"({self.timeout:.2f} s each); is the board running and on "
                                        f"this port?", command=cmd)
                self.stats["retransmits"] += 1
                self._send(wire)
                last_send = time.monotonic()
                deadline = last_send + self.timeout
                continue
            if f.kind == P.BOOT:
                try:
                    boot = P.read_json(f.payload, "BOOT").get("boot")
                except (P.ProtocolError, AttributeError):
                    boot = None
                known = self.board.get("boot")
                if isinstance(boot, int) and isinstance(known, int) and boot <= known:
                    continue    # a stale announcement of a boot our HELLO already saw
                raise _SessionLost("the board restarted (BOOT frame)")
            if f.kind == P.NAK and f.seq == P.NO_SEQ:
                code, _msg = P.read_nak(f.payload)
                if code in P.TRANSIENT_ERRORS:
                    self.stats["naks"] += 1
                    if resend_at is None:
                        damaged += 1
                        if damaged > 4 * (self.retries + 1):
                            raise LinkError(f"{self._where}: {name} arrived damaged {damaged} "
                                            f"times; check the cable and the baud rate", command=cmd)
                        resend_at = max(time.monotonic(), last_send + gap)
                continue
            if f.seq != seq or f.cmd != cmd:
                continue    # a late reply to an earlier request or try
            if f.kind == P.BUSY:
                self.stats["busy"] += 1
                state = "queued behind another command" if f.payload[:1] == b"\x02" else "executing"
                busy, tries = True, 0      # the board is alive: silence so far is forgiven
                deadline = time.monotonic() + self.timeout
                continue
            if f.kind == P.NAK:
                self.stats["naks"] += 1
                code, msg = P.read_nak(f.payload)
                if code == P.E_NO_SESSION:
                    raise _SessionLost(f"the board lost the session ({msg})")
                return f
            if f.kind in (P.ACK, P.PAGED):
                return f

    def _fail(self, cmd: int, frame: P.Frame):
        code, msg = P.read_nak(frame.payload)
        raise LinkError(f"{self._where}: the board refused {P.COMMAND_NAMES.get(cmd, hex(cmd))}: "
                        f"{P.ERROR_NAMES.get(code, 'error')} ({code}): {msg}", code=code, command=cmd)

    def _transaction(self, cmd: int, payload: bytes = b"") -> bytes:
        """One logical command: chunked upload if the payload is too large for a frame,
        paged download if the result is; returns the result payload."""
        limit = self.max_payload
        if len(payload) > limit or cmd == P.LOAD_IMAGE:
            f = self._exchange(P.UPLOAD_BEGIN, P.pack_upload_begin(cmd, len(payload), zlib.crc32(payload)))
            if f.kind == P.NAK:
                self._fail(cmd, f)
            step = limit - 4
            for off in range(0, len(payload), step):
                f = self._exchange(P.UPLOAD_CHUNK, P.pack_chunk(off, payload[off:off + step]))
                if f.kind == P.NAK:
                    self._fail(cmd, f)
            f = self._exchange(P.UPLOAD_COMMIT)
        else:
            f = self._exchange(cmd, payload)
        if f.kind == P.NAK:
            self._fail(cmd, f)
        if f.kind == P.ACK:
            return f.payload
        total, crc = P.read_paged(f.payload)
        buf = bytearray()
        while len(buf) < total:
            g = self._exchange(P.FETCH, P.pack_fetch(len(buf), min(limit, total - len(buf))))
            if g.kind != P.ACK:
                self._fail(P.FETCH, g)
            if not g.payload:
                raise LinkError(f"{self._where}: FETCH at {len(buf)} of {total} returned nothing",
                                command=cmd)
            buf += g.payload
        if zlib.crc32(buf) != crc:
            raise LinkError(f"{self._where}: paged result of {P.COMMAND_NAMES.get(cmd)} fails its "
                            f"CRC-32 check", command=cmd)
        return bytes(buf)

