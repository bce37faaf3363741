"""The board side of the serial protocol: frames in, engine calls, frames out.

``Server`` is transport-free (``feed(bytes) -> bytes`` to send back), so it can be fuzzed in
process; transport.py connects it to a pseudo-terminal or a TCP socket. The server never raises out of ``feed``:
every bad frame or command becomes a NAK with an error code. Protocol: docs/protocol.md and
tianrt.chip.protocol.
"""
from __future__ import annotations

import hmac
import os
import traceback
import zlib

import tianrt.chip.protocol as P
from tianrt.chip import regionwire

from .regions import Regions

FIRMWARE = "tianrt-firmware_sim/1"


class _Upload:
    """A chunked blob being assembled; chunks arrive in order (stop-and-wait link), and a
    re-sent chunk that is already stored must carry the same bytes."""

    def __init__(self, target: int, total: int, crc: int):
        self.target, self.total, self.crc = target, total, crc
        self.buf = bytearray()

    def add(self, offset: int, data: bytes) -> None:
        have = len(self.buf)
        if offset + len(data) <= have:  # a chunk already stored (its ACK was lost)
            if self.buf[offset:offset + len(data)] != data:
                raise P.ProtocolError(P.E_UPLOAD_STATE, f"chunk at offset {offset} differs from "
                                      f"the bytes already stored there")
            return
        if offset != have:
            raise P.ProtocolError(P.E_UPLOAD_STATE, f"chunk at offset {offset}, expected offset "
                                  f"{have} (chunks are sent in order)")
        if have + len(data) > self.total:
            raise P.ProtocolError(P.E_UPLOAD_STATE, f"chunk of {len(data)} bytes at offset {offset} "
                                  f"overruns the announced length {self.total}")
        self.buf += data


class Server:
    """Protocol state machine around one engine.

    engine_factory() builds a fresh engine at every (re)boot, so a reboot really loses the
    image and all state, as a board's would.
    """

    def __init__(self, engine_factory, *, firmware: str = FIRMWARE, log=None,
                 max_payload: int = P.MAX_PAYLOAD, secret: bytes | None = None):
        if not 64 <= max_payload <= P.MAX_PAYLOAD:
            raise ValueError(f"max_payload must be in [64, {P.MAX_PAYLOAD}], got {max_payload}")
        self.max_payload = max_payload     # a small board has small receive buffers
        self.max_encoded = P.cobs_max_len(P.HEADER.size + max_payload + P.CRC.size)
        self.engine_factory = engine_factory
        self.firmware = firmware
        self.log = log or (lambda msg: None)
        self.protocol_version = P.PROTOCOL_VERSION
        self.boots = 0
        self.secret = secret              # socket boards: HELLO must prove it knows this
        self.challenge = os.urandom(16)   # per connection (new_session)
        self.deframer = P.Deframer(self.max_encoded)
        self.boot()

    # -- state ----------------------------------------------------------------------------------
    def boot(self) -> bytes:
        """(Re)start the firmware: new engine, no session, no image. Returns the BOOT frame."""
        self.boots += 1
        self.engine = self.engine_factory()
        self.regions: Regions | None = None   # the chip split into regions (LOAD_REGIONS)
        self._active = None                   # the engine executing a command (for ABORT)
        self.session: int | None = None
        self.sparse = False                 # the host reads sparse outputs (HELLO flag)
        # (body of the last request, its reply); one tuple so that the read loop never sees
        # a new body with an old reply while the worker stores them
        self._last: tuple[bytes, bytes] | None = None
        self._upload: _Upload | None = None
        self._outbox: bytes | None = None
        self._reboot_after_reply = False
        self.stats = {"link_frames": 0, "link_bad_frames": 0, "link_duplicates": 0,
                      "link_naks": 0, "link_boots": self.boots}
        self.log(f"boot #{self.boots}")
        return P.encode_frame(P.BOOT, 0, 0, P.pack_json({"firmware": self.firmware,
                                                          "protocol": P.PROTOCOL_VERSION,
                                                          "boot": self.boots}))

    def new_session(self, challenge: bytes | None = None) -> None:
        """A new host connection (socket links): the previous session's state, inputs,
        outputs, uploads and cached replies are dropped (the image stays loaded, as a
        flashed board's would); the next command must be a HELLO."""
        self.engine.reset()     # (the transport has stopped any command still running first)
        if self.regions is not None:
            self.regions.reset()
        self.session = None
        self._last = None
        self._upload = None
        self._outbox = None
        self.challenge = challenge if challenge is not None else os.urandom(16)

    def check_proof(self, nonce: int, flags: int, proof: bytes, challenge: bytes | None = None) -> None:
        """Refuse a HELLO that does not prove the shared secret (when one is set)."""
        if self.secret is None:
            return
        challenge = self.challenge if challenge is None else challenge
        if not (flags & P.HELLO_PROOF) or not hmac.compare_digest(
                proof, P.hello_proof(self.secret, challenge, nonce)):
            what = "wrong" if flags & P.HELLO_PROOF else "missing"
            raise P.ProtocolError(P.E_AUTH, f"this board requires a shared secret and the HELLO proof "
                                  f"is {what}; challenge {challenge.hex()}")

    # -- bytes in, bytes out --------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Bytes from the host in, reply bytes out, executing each request before the next
        (in-process use and tests; the transports use ``admit``/``complete`` on a worker)."""
        out = bytearray()
        for block in self.deframer.feed(data):
            r = self.admit(block)
            out += r if isinstance(r, bytes) else self.complete(*r)
        return bytes(out)

    def admit(self, block: bytes | None):
        """Check one delimited block (``None``: an oversized one). Returns reply bytes when
        no execution is needed (a NAK for a bad frame, the stored reply to a retransmission),
        else ``(frame, body)`` to pass to ``complete``."""
        try:
            if block is None:
                raise P.ProtocolError(P.E_FRAME_TOO_LARGE, f"frame longer than {self.max_encoded} "
                                      f"encoded bytes (this board's max payload is "
                                      f"{self.max_payload}); discarded")
            body = P.cobs_decode(block)
            frame = P.parse_body(body)
            if frame.kind != P.REQUEST:
                raise P.ProtocolError(P.E_BAD_FRAME, f"a board accepts REQUEST frames only, got "
                                      f"{P.KIND_NAMES[frame.kind]}", 0)
        except P.ProtocolError as exc:
            self.stats["link_bad_frames"] += 1
            self.stats["link_naks"] += 1
            return P.encode_frame(P.NAK, 0, P.NO_SEQ, P.pack_nak(exc.code, exc.message))
        self.stats["link_frames"] += 1
        last = self._last
        if last is not None and body == last[0]:
            # same seq and same bytes: a retransmission (our reply was lost) - answer again,
            # do not execute again
            self.stats["link_duplicates"] += 1
            return last[1]
        return frame, body

    def complete(self, frame: P.Frame, body: bytes) -> bytes:
        """Execute an admitted request; returns the reply bytes (plus a BOOT frame after
        REBOOT) and remembers the reply for retransmissions."""
        boots = self.boots
        kind, payload = self.execute(frame)
        if kind == P.NAK:
            self.stats["link_naks"] += 1
        reply = P.encode_frame(kind, frame.cmd, frame.seq, payload)
        if self.boots == boots:   # not from before a reset that happened meanwhile
            self._last = (body, reply)
        if self._reboot_after_reply:
            reply += self.boot()
        return reply

    def busy(self, frame: P.Frame, queued: bool = False) -> bytes:
        """The reply to a retransmission of a request that is still executing (payload
        ``01``) or still queued behind another (``02``)."""
        self.stats["link_duplicates"] += 1
        return P.encode_frame(P.BUSY, frame.cmd, frame.seq, b"\x02" if queued else b"\x01")

    def execute(self, frame: P.Frame) -> tuple[int, bytes]:
        """Run one request; returns (kind, payload). Never raises."""
        try:
            if frame.cmd not in P.COMMAND_NAMES:
                raise P.ProtocolError(P.E_UNKNOWN_COMMAND, f"unknown command {frame.cmd:#04x}; "
                                      f"known: {', '.join(f'{c:#04x} {n}' for c, n in P.COMMAND_NAMES.items())}")
            if frame.cmd != P.HELLO and self.session is None:
                raise P.ProtocolError(P.E_NO_SESSION, f"{P.COMMAND_NAMES[frame.cmd]} before HELLO "
                                      f"(the board booted, boot #{self.boots}); say HELLO first")
            result = self.dispatch(frame.cmd, frame.payload)
            if len(result) > self.max_payload:
                self._outbox = result
                return P.PAGED, P.pack_paged(len(result), zlib.crc32(result))
            return P.ACK, result
        except P.ProtocolError as exc:
            return P.NAK, P.pack_nak(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - the firmware must survive anything
            code = getattr(exc, "code", None)
            if isinstance(code, int) and code in P.ERROR_NAMES:   # the engine's EngineError
                return P.NAK, P.pack_nak(code, str(getattr(exc, "message", exc)))
            self.log("internal error:\n" + traceback.format_exc())
            return P.NAK, P.pack_nak(P.E_INTERNAL, f"{type(exc).__name__}: {exc}")

    # -- commands ----------------------------------------------------------------------------------
    def dispatch(self, cmd: int, payload: bytes) -> bytes:
        eng = self.engine
        if cmd in P.REGION_COMMANDS:
            if self.regions is None:
                return self._engine_command(eng, cmd, payload)
            return self._whole_chip(cmd, payload)
        if cmd == P.HELLO:
            version, nonce, flags, proof = P.read_hello_full(payload)
            if version != self.protocol_version:
                raise P.ProtocolError(P.E_VERSION, f"host speaks protocol version {version}, this "
                                      f"firmware ({self.firmware}) speaks {self.protocol_version}")
            self.check_proof(nonce, flags, proof)
            self.sparse = bool(flags & P.HELLO_SPARSE)
            self.session = nonce
            self._upload = None
            return P.pack_json({"protocol": self.protocol_version, "firmware": self.firmware,
                                "boot": self.boots, "max_payload": self.max_payload,
                                "max_upload": P.MAX_UPLOAD, "max_run_ticks": P.MAX_RUN_TICKS,
                                "sparse_inputs": True, "max_regions": P.MAX_REGIONS,
                                "image": eng.info(), "spec": getattr(eng, "spec", None),
                                "regions": self.regions.describe() if self.regions is not None else None})
        if cmd == P.LOAD_REGIONS:
            spec = getattr(eng, "spec", None)
            if not isinstance(spec, dict):
                raise P.ProtocolError(P.E_CAPACITY, "LOAD_REGIONS: this board's engine has no chip spec "
                                      "and cannot be split into regions")
            regions = Regions(payload, spec, type(eng))   # checked in full before anything changes
            self.engine, self.regions = self.engine_factory(), regions   # the whole-chip image goes
            return P.pack_json({"regions": regions.describe()})
        if cmd == P.REGION:
            if self.regions is None:
                raise P.ProtocolError(P.E_NO_IMAGE, "REGION: the chip is not split into regions; "
                                      "LOAD_REGIONS first")
            index, inner, body = regionwire.read_call(payload, len(self.regions))
            return self._engine_command(self.regions.engines[index], inner, body)
        if cmd == P.UPLOAD_BEGIN:
            target, total, crc = P.read_upload_begin(payload)
            if target not in P.UPLOAD_TARGETS:
                raise P.ProtocolError(P.E_BAD_PAYLOAD, f"UPLOAD_BEGIN target {target:#04x} is not one "
                                      f"of {', '.join(P.COMMAND_NAMES[t] for t in P.UPLOAD_TARGETS)}", 0)
            if total > P.MAX_UPLOAD:
                raise P.ProtocolError(P.E_CAPACITY, f"upload of {total} bytes exceeds this board's "
                                      f"MAX_UPLOAD of {P.MAX_UPLOAD} bytes", 1)
            self._upload = _Upload(target, total, crc)
            return b""
        if cmd == P.UPLOAD_CHUNK:
            if self._upload is None:
                raise P.ProtocolError(P.E_UPLOAD_STATE, "UPLOAD_CHUNK without UPLOAD_BEGIN")
            self._upload.add(*P.read_chunk(payload))
            return b""
        if cmd == P.UPLOAD_COMMIT:
            self._empty(payload, "UPLOAD_COMMIT")
            up, self._upload = self._upload, None   # one try: any failure needs a new BEGIN
            if up is None:
                raise P.ProtocolError(P.E_UPLOAD_STATE, "UPLOAD_COMMIT without UPLOAD_BEGIN")
            if len(up.buf) != up.total:
                raise P.ProtocolError(P.E_UPLOAD_STATE, f"UPLOAD_COMMIT after {len(up.buf)} of "
                                      f"{up.total} bytes; the upload is discarded")
            crc = zlib.crc32(up.buf)
            if crc != up.crc:
                raise P.ProtocolError(P.E_UPLOAD_CHECKSUM, f"uploaded {up.total} bytes have CRC-32 "
                                      f"{crc:#010x}, UPLOAD_BEGIN announced {up.crc:#010x}; discarded")
            return self.dispatch(up.target, bytes(up.buf))
        if cmd == P.ABORT:
            return self.abort(payload)
        if cmd == P.FETCH:
            offset, length = P.read_fetch(payload)
            if self._outbox is None:
                raise P.ProtocolError(P.E_UPLOAD_STATE, "FETCH with no PAGED result pending")
            if offset > len(self._outbox):
                raise P.ProtocolError(P.E_BAD_PAYLOAD, f"FETCH at offset {offset} of a "
                                      f"{len(self._outbox)}-byte result", 0)
            length = min(length, self.max_payload)    # a host may ask before it knows our limit
            return self._outbox[offset:offset + length]
        if cmd == P.REBOOT:
            self._empty(payload, "REBOOT")
            self._reboot_after_reply = True
            return b""
        raise P.ProtocolError(P.E_UNKNOWN_COMMAND, f"command {cmd:#04x} cannot be executed here")

    def _whole_chip(self, cmd: int, payload: bytes) -> bytes:
        """A command not addressed to a region while the chip is split into regions: INFO,
        RESET and the counters act on all of them, LOAD_IMAGE replaces them by a whole-chip
        image, the rest is refused (it must name a region)."""
        regions = self.regions
        if cmd == P.INFO:
            self._empty(payload, "INFO")
            return P.pack_json({"regions": regions.describe()})
        if cmd == P.RESET:
            self._empty(payload, "RESET")
            regions.reset()
            return b""
        if cmd == P.COUNTERS:
            self._empty(payload, "COUNTERS")
            return P.pack_json({**regions.counters(), **self.stats})
        if cmd == P.RESET_COUNTERS:
            self._empty(payload, "RESET_COUNTERS")
            regions.reset_counters()
            self._reset_stats()
            return b""
        if cmd == P.LOAD_IMAGE:
            info = self.engine.load_image(payload)    # a refused image leaves the regions running
            self.regions = None
            return P.pack_json(info)
        regions.refuse(cmd)

    def _reset_stats(self) -> None:
        for k in self.stats:
            if k != "link_boots":
                self.stats[k] = 0

    def _engine_command(self, eng, cmd: int, payload: bytes) -> bytes:
        """One of REGION_COMMANDS on one engine (the whole chip's, or a region's)."""
        self._active = eng
        try:
            return self._on_engine(eng, cmd, payload)
        finally:
            self._active = None

    def _on_engine(self, eng, cmd: int, payload: bytes) -> bytes:
        if cmd == P.INFO:
            self._empty(payload, "INFO")
            return P.pack_json(eng.info())
        if cmd == P.RESET:
            self._empty(payload, "RESET")
            eng.reset()
            return b""
        if cmd == P.LOAD_IMAGE:
            return P.pack_json(eng.load_image(payload))
        if cmd == P.PUSH_INPUT:
            name, values = P.read_push(payload)
            eng.push_input(name, values)
            return b""
        if cmd == P.RUN:
            ticks = P.read_run(payload)
            if ticks > P.MAX_RUN_TICKS:
                raise P.ProtocolError(P.E_CAPACITY, f"RUN of {ticks} ticks; at most "
                                      f"{P.MAX_RUN_TICKS} per command", 0)
            eng.run(ticks)
            return b""
        if cmd == P.STEP:
            inputs, ticks = P.read_step(payload)
            if ticks > P.MAX_RUN_TICKS:
                raise P.ProtocolError(P.E_CAPACITY, f"STEP of {ticks} ticks; at most "
                                      f"{P.MAX_RUN_TICKS} per command")
            self._check_inputs(eng, inputs)
            for name, values in inputs:
                eng.push_input(name, values)
            eng.run(ticks)
            return self._pull(eng)
        if cmd == P.STEPS:
            segments = P.read_steps(payload)
            total = sum(t for _, t in segments)
            if total > P.MAX_RUN_TICKS:
                raise P.ProtocolError(P.E_CAPACITY, f"STEPS of {total} ticks; at most {P.MAX_RUN_TICKS}")
            for inputs, _ in segments:      # everything is checked before anything runs
                self._check_inputs(eng, inputs)
            prog = getattr(eng, "prog", None)
            if prog is not None:
                ndim = {x["name"]: len(x["shape"]) for x in eng.info()["inputs"]}
                B = max([v.shape[0] for i, _ in segments for name, v in i if v.ndim > ndim[name]]
                        or [eng.batch or 1])
                worst = eng.held_values + total * B * prog.out_values
                if worst > P.MAX_HELD_VALUES:
                    raise P.ProtocolError(P.E_CAPACITY, f"STEPS of {total} ticks could hold {worst} output "
                                          f"values, this board holds {P.MAX_HELD_VALUES}: send fewer ticks")
            for inputs, ticks in segments:
                for name, values in inputs:
                    eng.push_input(name, values)
                eng.run(ticks)
            return self._pull(eng)
        if cmd == P.PULL_OUTPUTS:
            self._empty(payload, "PULL_OUTPUTS")
            return self._pull(eng)
        if cmd == P.COUNTERS:
            self._empty(payload, "COUNTERS")
            return P.pack_json({**eng.counters(), **self.stats})
        if cmd == P.RESET_COUNTERS:
            self._empty(payload, "RESET_COUNTERS")
            eng.reset_counters()
            self._reset_stats()
            return b""
        raise P.ProtocolError(P.E_UNKNOWN_COMMAND, f"command {cmd:#04x} cannot be executed here")

    def _pull(self, eng) -> bytes:
        """The outputs, encoded before they are cleared: outputs that cannot be delivered
        stay on the board."""
        if not hasattr(eng, "peek_outputs"):
            return P.pack_outputs(eng.pull_outputs(), self.sparse)
        blob = P.pack_outputs(eng.peek_outputs(), self.sparse)
        eng.clear_outputs()
        return blob

    def abort(self, payload: bytes = b"", running: int | None = None) -> bytes:
        """ABORT: the command being executed (``running``, by the transport's worker) stops
        at its next tick boundary with NAK ABORTED; the reply says what was running."""
        self._empty(payload, "ABORT")
        if running is not None:
            self.stop_running()
        eng = self._active or self.engine
        return P.pack_json({"running": P.COMMAND_NAMES.get(running) if running is not None else None,
                            "tick": getattr(eng, "t", None)})

    def stop_running(self) -> None:
        """Stop the engine executing a command (the whole chip's or a region's) at its next
        tick boundary (called from the transport's reader thread)."""
        (self._active or self.engine).abort = True

    def _check_inputs(self, eng, inputs) -> None:
        """Names and shapes of a STEP's inputs, checked before any is pushed, so that a
        refused STEP changes nothing."""
        info = eng.info()
        if not info:
            raise P.ProtocolError(P.E_NO_IMAGE, "STEP: no image is loaded; upload one first")
        specs = {i["name"]: tuple(i["shape"]) for i in info.get("inputs", [])}
        for name, values in inputs:
            if name not in specs:
                raise P.ProtocolError(P.E_BAD_INPUT, f"STEP: the image has no input {name!r}; "
                                      f"its inputs are {', '.join(specs) or 'none'}")
            shape = specs[name]
            if values.shape != shape and values.shape[1:] != shape:
                raise P.ProtocolError(P.E_BAD_INPUT, f"STEP: input {name!r} has shape {values.shape}, "
                                      f"expected {shape} or (batch, {', '.join(map(str, shape))})")

    @staticmethod
    def _empty(payload: bytes, what: str) -> None:
        if payload:
            raise P.ProtocolError(P.E_BAD_PAYLOAD, f"{what} takes no payload, got {len(payload)} bytes", 0)
