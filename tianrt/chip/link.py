"""ChipLink: the host end of the serial link to a board (or firmware_sim), over pyserial only.

Stop-and-wait: every request waits for its ACK/NAK; a lost or damaged frame is sent again
with the same sequence number, and the board answers a repeat from its cache instead of
executing it twice. Payloads larger than one frame travel as chunked uploads (committed only
when complete and CRC-checked) and paged results. If the board resets (BOOT frame, a
NO_SESSION refusal, or a dropped connection) the link reconnects, uploads the last image
again, replays the pushes and runs acknowledged since the last reset() so the chip state is
what it was, warns (LinkWarning) and counts it in ``stats["reconnects"]``. Protocol:
docs/protocol.md.
"""
from __future__ import annotations

import logging
import random
import subprocess
import time
import warnings
import zlib

import numpy as np
import serial

from . import local_board, protocol as P
from .errors import LinkError, LinkWarning
from .journal import Delivery, Journal

log = logging.getLogger("tianrt.chip.link")

try:   # pyserial lets termios.error (not an OSError) through when a pty's other end is gone
    from termios import error as _TermiosError
except ImportError:  # pragma: no cover - Windows
    class _TermiosError(Exception):
        pass
PORT_ERRORS = (serial.SerialException, OSError, _TermiosError)

JOURNAL_LIMIT = 64 << 20   # bytes of pushed inputs kept for replay after a board reset


class _SessionLost(Exception):
    """The board restarted or the connection dropped; recover and redo the transaction."""


class ChipLink:
    """Host side of the protocol; mirrors firmware_sim's Engine API over a serial port.

    port: a device or pty path ("/dev/ttyUSB0", "/dev/pts/3"), a pyserial URL
    ("socket://127.0.0.1:5555"), or "auto" to start ``python -m tianrt.firmware_sim --pty``
    here (stopped again by close()). ``timeout`` is how long the board may stay silent per
    try, ``retries`` how many times a frame is sent again before giving up. A command that
    takes long (a long RUN) is fine: the board answers the host's repeats with BUSY, for up
    to ``busy_timeout`` seconds. After a board reset the link tries to reconnect for
    ``reconnect_timeout`` seconds; ``replay=False`` skips restoring the state (the image is
    still reloaded). ``spawn_args`` go to the emulator started by port="auto", which may
    take ``connect_timeout`` seconds to print its pty path. Not thread-safe: one user at a time.
    """

    def __init__(self, port: str, *, baudrate: int = 921600, timeout: float = 1.0,
                 retries: int = 5, busy_timeout: float = 600.0, replay: bool = True,
                 spawn_args: tuple[str, ...] = (), connect_timeout: float = 60.0,
                 reconnect_timeout: float = 15.0):
        if timeout <= 0 or retries < 0:
            raise ValueError(f"ChipLink: timeout must be > 0 and retries >= 0, got {timeout}, {retries}")
        self.port = port
        self.baudrate = baudrate
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.busy_timeout = float(busy_timeout)
        self.replay = replay
        self.spawn_args = tuple(spawn_args)
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self.stats = {"frames_sent": 0, "frames_received": 0, "bytes_sent": 0, "bytes_received": 0,
                      "retransmits": 0, "timeouts": 0, "naks": 0, "busy": 0, "bad_frames": 0,
                      "reconnects": 0, "image_reloads": 0, "replayed": 0}
        self.board: dict = {}
        self.max_payload = P.MAX_PAYLOAD
        self._proc: subprocess.Popen | None = None
        self._ser = None
        self._where = port
        self._seq = 0
        self._rx = P.Deframer()
        self._frames: list[P.Frame] = []
        self._image: bytes | None = None
        self._journal = Journal()
        self._outputs = Delivery()
        self._closed = False
        try:
            self._connect()
            self.hello()
        except BaseException:
            self.close()
            raise

    # -- connection ----------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """The port actually in use (with port="auto": the emulator's pty path)."""
        return self._where

    def _stop_proc(self) -> None:
        proc, self._proc = self._proc, None
        local_board.stop(proc)

    def _connect(self) -> None:
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
            self._ser.write(wire)
        except PORT_ERRORS as exc:
            raise _SessionLost(f"write to {self._where} failed ({exc})") from None
        self.stats["frames_sent"] += 1
        self.stats["bytes_sent"] += len(wire)

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
        self._send(wire)
        last_send = time.monotonic()
        deadline = last_send + self.timeout
        while True:
            f = self._next_frame(deadline if resend_at is None else min(deadline, resend_at))
            if f is None:
                now = time.monotonic()
                if resend_at is not None and now < deadline:
                    resend_at = None          # a damaged-frame NAK: send again now
                elif busy:
                    busy = False    # it was working a moment ago: ask again, no retry used
                    if now - started > self.busy_timeout:
                        raise LinkError(f"{self._where}: {name} still executing after "
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

    def _call(self, cmd: int, payload: bytes = b"") -> bytes:
        """A command that survives board resets: recover (reconnect, reload, replay) and redo it."""
        for attempt in range(self.retries + 1):
            try:
                return self._transaction(cmd, payload)
            except _SessionLost as exc:
                reason = str(exc)
            self._recover(reason)
        raise LinkError(f"{self._where}: the board kept resetting; gave up on "
                        f"{P.COMMAND_NAMES.get(cmd)} after {self.retries + 1} recoveries", command=cmd)

    # -- recovery ------------------------------------------------------------------------------
    def _recover(self, reason: str) -> None:
        self.stats["reconnects"] += 1
        deadline = time.monotonic() + self.reconnect_timeout
        last = reason
        while True:
            self._disconnect()
            try:
                self._connect()
                self._hello_raw()
                outputs = self._restore()
                break
            except (_SessionLost, LinkError) as exc:
                last = str(exc)
                if isinstance(exc, LinkError) and exc.code is not None:
                    raise   # the board refused the image or a replayed command: not transient
                if time.monotonic() > deadline:
                    raise LinkError(f"{self._where}: lost the board ({reason}) and could not "
                                    f"reconnect: {last}") from None
                time.sleep(min(0.2, self.timeout))
        what = []
        if self._image is not None:
            what.append(f"reloaded the image ({len(self._image)} bytes)")
            self.stats["image_reloads"] += 1
        restored = self.replay and self._journal.complete
        if self._journal and restored:
            what.append(f"replayed {len(self._journal)} acknowledged commands")
        lost = ""
        if self._image is not None and not restored:
            lost = ("; the chip state was NOT restored ("
                    + ("replay=False" if not self.replay else
                       f"more than {JOURNAL_LIMIT >> 20} MiB of inputs since the last reset()")
                    + "): it starts from a fresh image")
        msg = (f"chip link {self._where}: {reason}; reconnected"
               + (", " + " and ".join(what) if what else "") + lost
               + "; board counters restarted from zero")
        log.info(msg)
        warnings.warn(msg, LinkWarning, stacklevel=4)
        for name, item in outputs.items():
            self._outputs.hold(name, item)

    def _restore(self) -> dict:
        """Reload the image, replay the journal, and return the outputs the replay made that
        the user has not seen yet."""
        if self._image is None:
            return {}
        self._transaction(P.LOAD_IMAGE, self._image)
        if not (self.replay and self._journal.complete and self._journal):
            return {}
        for entry in self._journal:
            if entry[0] == "push":
                self._transaction(P.PUSH_INPUT, entry[1])
            else:
                self._transaction(P.RUN, P.pack_run(entry[1]))
            self.stats["replayed"] += 1
        fresh = {}
        for name, (ticks, values) in P.read_outputs(self._transaction(P.PULL_OUTPUTS)).items():
            keep = self._outputs.unseen(name, ticks)
            fresh[name] = (ticks[keep], values[keep])
        return fresh

    def _journal_add(self, entry: tuple, nbytes: int) -> None:
        self._journal.add(entry, nbytes, JOURNAL_LIMIT, P.MAX_RUN_TICKS)

    def _journal_clear(self) -> None:
        self._journal.clear()
        self._outputs.clear()

    # -- the API (mirrors firmware_sim's Engine) --------------------------------------------------
    def _hello_raw(self) -> dict:
        nonce = random.getrandbits(32)
        info = P.read_json(self._transaction(P.HELLO, P.pack_hello(P.PROTOCOL_VERSION, nonce)),
                           "HELLO reply")
        if info.get("protocol") != P.PROTOCOL_VERSION:
            raise LinkError(f"{self._where}: the board speaks protocol {info.get('protocol')}, "
                            f"this host {P.PROTOCOL_VERSION}", code=P.E_VERSION, command=P.HELLO)
        self.max_payload = max(64, min(P.MAX_PAYLOAD, int(info.get("max_payload", P.MAX_PAYLOAD))))
        self.board = info
        return info

    def hello(self) -> dict:
        """Version handshake; returns the board's description (firmware, limits, image)."""
        for _ in range(self.retries + 1):
            try:
                return self._hello_raw()
            except _SessionLost as exc:
                self._recover(str(exc))
        raise LinkError(f"{self._where}: no stable session after {self.retries + 1} tries")

    def upload_image(self, data: bytes) -> dict:
        """Send an image in chunks; the board verifies it completely before swapping it in
        (a refused image leaves the old one running). Returns the board's image info."""
        data = bytes(data)
        if len(data) > P.MAX_UPLOAD:
            raise LinkError(f"image of {len(data)} bytes exceeds the protocol's MAX_UPLOAD "
                            f"of {P.MAX_UPLOAD}", code=P.E_CAPACITY, command=P.LOAD_IMAGE)
        info = P.read_json(self._call(P.LOAD_IMAGE, data), "LOAD_IMAGE reply")
        self._image = data
        self._journal_clear()
        return info

    def info(self) -> dict:
        return P.read_json(self._call(P.INFO), "INFO reply")

    def reset(self) -> None:
        self._call(P.RESET)
        self._journal_clear()

    @staticmethod
    def _as_int32(name: str, values) -> np.ndarray:
        a = np.asarray(values)
        if a.dtype.kind == "b":
            a = a.astype(np.int32)
        if a.dtype.kind not in "iu":
            raise LinkError(f"input {name!r}: the chip takes integers (int32), got {a.dtype}; "
                            f"quantise on the host first")
        if a.size and (a.min() < -(1 << 31) or a.max() >= (1 << 31)):
            raise LinkError(f"input {name!r}: values outside the int32 range")
        return a.astype(np.int32)

    def push_input(self, name: str, values) -> None:
        payload = P.pack_push(name, self._as_int32(name, values))
        self._call(P.PUSH_INPUT, payload)
        self._journal_add(("push", payload), len(payload))

    def run(self, ticks: int) -> None:
        ticks = int(ticks)
        if ticks < 0:
            raise LinkError(f"run: ticks must be >= 0, got {ticks}")
        while ticks > 0:
            n = min(ticks, P.MAX_RUN_TICKS)
            self._call(P.RUN, P.pack_run(n))
            self._journal_add(("run", n), 8)
            ticks -= n

    def step(self, inputs: dict, ticks: int = 1) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """push_input for each of ``inputs``, run(ticks) and pull_outputs() in one exchange
        (one round trip per tick instead of three); returns what pull_outputs returns."""
        ticks = int(ticks)
        if not 0 <= ticks <= P.MAX_RUN_TICKS:
            raise LinkError(f"step: ticks must be in [0, {P.MAX_RUN_TICKS}], got {ticks}")
        arrays = {name: self._as_int32(name, v) for name, v in inputs.items()}
        blob = self._call(P.STEP, P.pack_step(arrays, ticks))
        for name, a in arrays.items():
            payload = P.pack_push(name, a)
            self._journal_add(("push", payload), len(payload))
        self._journal_add(("run", ticks), 8)
        return self._deliver(P.read_outputs(blob))

    def pull_outputs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """name -> (ticks int64 (n,), values int32 (n, B, *shape)) emitted since the last pull."""
        return self._deliver(P.read_outputs(self._call(P.PULL_OUTPUTS)))

    def _deliver(self, new: dict) -> dict:
        return self._outputs.deliver(new)

    def counters(self) -> dict:
        return P.read_json(self._call(P.COUNTERS), "COUNTERS reply")

    def reset_counters(self) -> None:
        self._call(P.RESET_COUNTERS)

    def reboot(self) -> None:
        """Ask the board to restart (drops its image and state); the next command reconnects,
        reloads the image and replays, as after any other reset."""
        f = self._exchange(P.REBOOT)
        if f.kind == P.NAK:
            self._fail(P.REBOOT, f)
