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

import random
import re
import threading
import time
import warnings

import numpy as np

from . import protocol as P
from .errors import LinkError, LinkWarning
from .exchange import PORT_ERRORS, LinkBase, _SessionLost, log  # noqa: F401 (PORT_ERRORS re-exported)
from .journal import Delivery, Journal

JOURNAL_LIMIT = 64 << 20   # bytes of pushed inputs kept for replay after a board reset


class ChipLink(LinkBase):
    """Host side of the protocol; mirrors firmware_sim's Engine API over a serial port.

    port: a device or pty path ("/dev/ttyUSB0", "/dev/pts/3"), a pyserial URL
    ("socket://127.0.0.1:5555"), "auto" to start ``python -m tianrt.firmware_sim --pty``
    here (stopped again by close()), or a port object with pyserial's Serial methods (an
    in-process board, ``tianrt.firmware_sim.loopback.BoardPort``). ``timeout`` is how long the board may stay silent per
    try, ``retries`` how many times a frame is sent again before giving up. A command that
    takes long (a long RUN) is fine: the board answers the host's repeats with BUSY, for up
    to ``busy_timeout`` seconds. After a board reset the link tries to reconnect for
    ``reconnect_timeout`` seconds; ``replay=False`` skips restoring the state (the image is
    still reloaded). ``spawn_args`` go to the emulator started by port="auto", which may
    take ``connect_timeout`` seconds to print its pty path. Not thread-safe: one user at a
    time, except ``abort()``, which another thread (or a signal handler) may call to stop a
    long RUN at its next tick. ``secret`` (bytes or str) answers a socket board's challenge
    (``--secret-file``); ``take_over=True`` takes a socket board that another host holds;
    ``sparse=False`` asks for dense output arrays (the default lets the board send spike
    outputs as event lists or bitmaps, whichever is smaller).

    The link tracks the board's tick (``tick``): the ticks acknowledged since the last reset.
    When a RUN, STEP or PUSH_INPUT failed without an answer (the board may still have run
    it), the next command first asks the board for its tick; if host and board disagree the
    link resynchronises (reloads the image and replays the journal of acknowledged commands,
    with a LinkWarning), or, when it cannot replay, refuses with a LinkError until reset().
    """

    def __init__(self, port: str, *, baudrate: int = 921600, timeout: float = 1.0,
                 retries: int = 5, busy_timeout: float = 600.0, replay: bool = True,
                 spawn_args: tuple[str, ...] = (), connect_timeout: float = 60.0,
                 reconnect_timeout: float = 15.0, secret: bytes | str | None = None,
                 take_over: bool = False, sparse: bool = True, wait_busy: float = 0.0):
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
        self._image_info: dict = {}
        self._batch = 1
        self._uncertain: int | None = None   # a state command that failed without an answer
        self._desync: str | None = None      # host and board disagree and replay is impossible
        self._interrupted = False
        self._write_lock = threading.Lock()
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.take_over = bool(take_over)
        self.wait_busy = float(wait_busy)    # seconds to wait for a socket board another host holds
        self.sparse = bool(sparse)          # ask for sparse output arrays (docs/protocol.md 3c)
        self.stats.update({"resyncs": 0, "aborts": 0})
        self._closed = False
        try:
            self._connect()
            self.hello()
        except BaseException:
            self.close()
            raise

    STATE_COMMANDS = (P.RUN, P.STEP, P.STEPS, P.PUSH_INPUT)

    @property
    def tick(self) -> int:
        """Ticks the board has run (and acknowledged) since the last reset() or image upload."""
        return self._journal.ticks

    def _call(self, cmd: int, payload: bytes = b"") -> bytes:
        """A command that survives board resets: recover (reconnect, reload, replay) and redo it."""
        if self._desync is not None and cmd not in (P.RESET, P.LOAD_IMAGE, P.INFO, P.COUNTERS,
                                                     P.RESET_COUNTERS, P.HELLO):
            raise LinkError(self._desync, code=P.E_ABORTED, command=cmd)
        if self._uncertain is not None and cmd not in (P.RESET, P.LOAD_IMAGE):
            self._resync()
        for attempt in range(self.retries + 1):
            try:
                return self._transaction(cmd, payload)
            except _SessionLost as exc:
                reason = str(exc)
            except LinkError as exc:
                if exc.code is None and cmd in self.STATE_COMMANDS:
                    self._uncertain = cmd    # no answer: the board may still run it
                raise
            self._recover(reason)
        raise LinkError(f"{self._where}: the board kept resetting; gave up on "
                        f"{P.COMMAND_NAMES.get(cmd)} after {self.retries + 1} recoveries", command=cmd)

    def _board_tick(self) -> int | None:
        t = self.info().get("tick")
        return t if isinstance(t, int) and not isinstance(t, bool) else None

    def _resync(self) -> None:
        """After a state command that got no answer: compare the board's tick with the
        host's and, if they differ (or a push may have landed), rebuild the board's state
        from the journal; refuse (until reset()) when that is impossible."""
        cmd, self._uncertain = self._uncertain, None
        name = P.COMMAND_NAMES.get(cmd)
        try:
            board = self._board_tick()
        except LinkError:
            self._uncertain = cmd
            raise
        if board is None or (board == self.tick and cmd != P.PUSH_INPUT):
            return
        if self._image is not None and self.replay and self._journal.complete:
            outputs = self._restore()
            for k, item in outputs.items():
                self._outputs.hold(k, item)
            self.stats["resyncs"] += 1
            msg = (f"chip link {self._where}: the board ran a {name} the host had given up on "
                   f"(board at tick {board}, host at {self.tick}); resynchronised by reloading "
                   f"the image and replaying {len(self._journal)} acknowledged commands")
            log.info(msg)
            warnings.warn(msg, LinkWarning, stacklevel=4)
            return
        self._desync = (f"{self._where}: host and board disagree after an unanswered {name}: the "
                        f"board is at tick {board}, the host at {self.tick}, and the state cannot be "
                        f"replayed ({'replay=False' if not self.replay else 'journal over its limit'}); "
                        f"call reset() (or upload the image again)")
        raise LinkError(self._desync, code=P.E_ABORTED, command=cmd)

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
                if isinstance(exc, LinkError) and exc.code not in (None, P.E_BUSY):
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
            self._journal_clear()      # the board starts again from tick 0; so does the host
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
        info = P.read_json(self._transaction(P.INFO), "INFO reply")
        if isinstance(info.get("tick"), int) and info["tick"] != self._journal.ticks:
            raise LinkError(f"{self._where}: the replay left the board at tick {info['tick']}, the "
                            f"journal has {self._journal.ticks}", code=P.E_ABORTED)
        return fresh

    def _journal_add(self, entry: tuple, nbytes: int) -> None:
        self._journal.add(entry, nbytes, JOURNAL_LIMIT, P.MAX_RUN_TICKS)

    def _journal_clear(self) -> None:
        self._journal.clear()
        self._outputs.clear()

    # -- the API (mirrors firmware_sim's Engine) --------------------------------------------------
    def _hello_raw(self) -> dict:
        nonce = random.getrandbits(32)
        flags = (P.HELLO_TAKE_OVER if self.take_over else 0) | (P.HELLO_SPARSE if self.sparse else 0)
        try:
            reply = self._transaction(P.HELLO, P.pack_hello(P.PROTOCOL_VERSION, nonce, flags))
        except LinkError as exc:
            if exc.code != P.E_AUTH:
                raise
            m = re.search(r"challenge ([0-9a-f]{32})", str(exc))
            if self.secret is None or m is None:
                raise LinkError(f"{self._where}: the board requires a shared secret: "
                                f"ChipLink(..., secret=...) (tianrt chip --secret-file)",
                                code=P.E_AUTH, command=P.HELLO) from None
            proof = P.hello_proof(self.secret, bytes.fromhex(m.group(1)), nonce)
            try:
                reply = self._transaction(P.HELLO, P.pack_hello(P.PROTOCOL_VERSION, nonce,
                                                                flags | P.HELLO_PROOF, proof))
            except LinkError as again:
                if again.code == P.E_AUTH:
                    raise LinkError(f"{self._where}: the board refused the shared secret (wrong "
                                    f"secret)", code=P.E_AUTH, command=P.HELLO) from None
                raise
        info = P.read_json(reply, "HELLO reply")
        if info.get("protocol") != P.PROTOCOL_VERSION:
            raise LinkError(f"{self._where}: the board speaks protocol {info.get('protocol')}, "
                            f"this host {P.PROTOCOL_VERSION}", code=P.E_VERSION, command=P.HELLO)
        self.max_payload = max(64, min(P.MAX_PAYLOAD, int(info.get("max_payload", P.MAX_PAYLOAD))))
        self.board = info
        return info

    def hello(self) -> dict:
        """Version handshake; returns the board's description (firmware, limits, image).
        A socket board held by another host: wait up to ``wait_busy`` seconds for it (with
        a LinkWarning naming the holder), then LinkError(code=BUSY)."""
        deadline = time.monotonic() + self.wait_busy
        warned = False
        for _ in range(self.retries + 1):
            while True:
                try:
                    return self._hello_raw()
                except _SessionLost as exc:
                    self._recover(str(exc))
                    break
                except LinkError as exc:
                    if exc.code != P.E_BUSY or time.monotonic() > deadline:
                        raise
                    if not warned:
                        warned = True
                        warnings.warn(f"{exc}; waiting up to {self.wait_busy:g} s", LinkWarning, stacklevel=3)
                    time.sleep(min(0.25, self.timeout))
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
        self._image_info = info if isinstance(info, dict) else {}
        self._desync = self._uncertain = None
        self._journal_clear()
        return info

    def info(self) -> dict:
        return P.read_json(self._call(P.INFO), "INFO reply")

    def reset(self) -> None:
        self._call(P.RESET)
        self._desync = self._uncertain = None
        self._batch = 1
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

    def _pack(self, fn, *args) -> bytes:
        """A request payload; a name or array the protocol cannot carry is a LinkError."""
        try:
            return fn(*args)
        except P.ProtocolError as exc:
            raise LinkError(f"{self._where}: cannot send this request: {exc.message}",
                            code=exc.code) from None

    def _sparse_in(self) -> bool:
        return self.sparse and bool(self.board.get("sparse_inputs"))

    def _note_batch(self, name: str, a: np.ndarray) -> None:
        for i in self._image_info.get("inputs", []):
            if i.get("name") == name and a.ndim == len(i.get("shape", ())) + 1:
                self._batch = int(a.shape[0])

    def push_input(self, name: str, values) -> None:
        a = self._as_int32(name, values)
        payload = self._pack(P.pack_push, name, a, self._sparse_in())
        self._call(P.PUSH_INPUT, payload)
        self._note_batch(name, a)
        self._journal_add(("push", payload), len(payload))

    def _run_chunk(self) -> int:
        """The most ticks one RUN may take without the board holding more unpulled output
        values than it can (HELLO/INFO: max_held_values, out_values_per_tick)."""
        per = self._image_info.get("out_values_per_tick")
        held = self._image_info.get("max_held_values", P.MAX_HELD_VALUES)
        if not isinstance(per, int) or per <= 0:
            return P.MAX_RUN_TICKS
        return max(1, min(P.MAX_RUN_TICKS, int(held) // (per * max(1, self._batch))))

    def run(self, ticks: int, on_outputs=None) -> None:
        """Run ``ticks`` ticks. A run longer than the board can hold outputs for is cut into
        RUNs with a pull after each: the outputs are held here for pull_outputs(), or, with
        ``on_outputs``, streamed: ``on_outputs(outputs)`` gets each piece (as pull_outputs
        returns it) and nothing is held. ``abort()`` (another thread) or Ctrl-C stops it at
        the board's next tick: LinkError(code=ABORTED) (KeyboardInterrupt for Ctrl-C); the
        ticks that ran are journalled and their outputs can be pulled."""
        ticks = int(ticks)
        if ticks < 0:
            raise LinkError(f"run: ticks must be >= 0, got {ticks}")
        chunk = self._run_chunk()
        pieces = on_outputs is not None or ticks > chunk
        if pieces:
            self._hold_or_stream(on_outputs)
        while ticks > 0:
            n = min(ticks, chunk)
            self._state_command(P.RUN, P.pack_run(n), n)
            self._journal_add(("run", n), 8)
            ticks -= n
            if pieces:
                self._hold_or_stream(on_outputs)

    def _hold_or_stream(self, on_outputs) -> None:
        got = P.read_outputs(self._call(P.PULL_OUTPUTS))
        if on_outputs is not None:
            on_outputs(self._deliver(got))
        else:
            for name, item in got.items():
                if len(item[0]):
                    self._outputs.hold(name, item)

    def _state_command(self, cmd: int, payload: bytes, ticks: int) -> bytes:
        """RUN, STEP or STEPS; an aborted RUN journals the ticks that did run, an aborted
        STEP(S) is undone (the board is restored to the journal's state)."""
        self._interrupted = False
        try:
            return self._call(cmd, payload)
        except LinkError as exc:
            if exc.code != P.E_ABORTED or self._desync is not None:
                raise
            self.stats["aborts"] += 1
            name = P.COMMAND_NAMES[cmd]
            if cmd != P.RUN:
                # a STEP's (or STEPS') inputs were pushed and part of it ran: the journal
                # cannot say which, so the board goes back to the state before it
                self._uncertain = P.PUSH_INPUT
                self._resync()
                what = f"{name} aborted and undone: the board is back at tick {self.tick}"
                if self._interrupted:
                    raise KeyboardInterrupt(f"chip {what}") from None
                raise LinkError(f"{self._where}: {what}", code=P.E_ABORTED, command=cmd) from None
            board = self._board_tick()
            ran = board - self.tick if board is not None else 0
            if ran > 0:
                self._journal_add(("run", ran), 8)
            if self._interrupted:
                raise KeyboardInterrupt(f"chip RUN interrupted at tick {board} ({ran} of {ticks} ticks ran)") from None
            raise LinkError(f"{self._where}: {name} aborted at tick {board}: {ran} of "
                            f"{ticks} ticks ran (their outputs can be pulled)", code=P.E_ABORTED,
                            command=cmd) from None

    def abort(self) -> None:
        """Ask the board to stop the command it is executing at its next tick boundary.
        Safe to call from another thread while run() or step() waits; the waiting call then
        raises LinkError(code=ABORTED)."""
        self._send_abort()

    def step(self, inputs: dict, ticks: int = 1) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """push_input for each of ``inputs``, run(ticks) and pull_outputs() in one exchange
        (one round trip per tick instead of three); returns what pull_outputs returns, with
        the board's tick numbers (compare them with ``tick`` before the call)."""
        ticks = int(ticks)
        if not 0 <= ticks <= P.MAX_RUN_TICKS:
            raise LinkError(f"step: ticks must be in [0, {P.MAX_RUN_TICKS}], got {ticks}")
        arrays = {name: self._as_int32(name, v) for name, v in inputs.items()}
        payload = self._pack(P.pack_step, arrays, ticks, self._sparse_in())
        blob = self._state_command(P.STEP, payload, ticks)
        self._journal_segment(arrays, ticks)
        return self._deliver(P.read_outputs(blob))

    def _journal_segment(self, arrays: dict, ticks: int) -> None:
        """An acknowledged step as the journal replays it: its pushes, then its run."""
        for name, a in arrays.items():
            push = P.pack_push(name, a, self._sparse_in())
            self._note_batch(name, a)
            self._journal_add(("push", push), len(push))
        self._journal_add(("run", ticks), 8)

    def steps(self, segments: list) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Several steps in one exchange: ``segments`` is a list of (inputs dict, ticks);
        the board pushes and runs each in turn and returns the outputs once (as
        pull_outputs). A clip of frames thus costs one round trip per piece, not per tick."""
        segs = [({n: self._as_int32(n, v) for n, v in inputs.items()}, int(t)) for inputs, t in segments]
        total = sum(t for _, t in segs)
        if any(t < 0 for _, t in segs) or total > P.MAX_RUN_TICKS:
            raise LinkError(f"steps: ticks must be >= 0 and at most {P.MAX_RUN_TICKS} in all")
        payload = self._pack(P.pack_steps, segs, self._sparse_in())
        blob = self._state_command(P.STEPS, payload, total)
        for arrays, ticks in segs:
            self._journal_segment(arrays, ticks)
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
