"""The protocol's vocabulary and byte stuffing: frame kinds, commands, error codes, sizes,
ProtocolError, and COBS (Consistent Overhead Byte Stuffing). Part of the protocol's
namespace (tianrt.chip.protocol re-exports every name); numpy only, so the emulator can
import it without the graph modules. docs/protocol.md."""
from __future__ import annotations

import struct

import numpy as np

PROTOCOL_VERSION = 1

# -- frame kinds -------------------------------------------------------------------------------
REQUEST = 0x01   # host -> board
ACK = 0x02       # board -> host: command done, payload is the result
NAK = 0x03       # board -> host: command refused, payload is u16 error code + UTF-8 message
PAGED = 0x04     # board -> host: result too large for one frame: u32 length + u32 crc32, FETCH it
BOOT = 0x05      # board -> host, unsolicited: the firmware (re)started, all session state is gone
BUSY = 0x06      # board -> host: answer to a retransmission of a request still executing: wait
KIND_NAMES = {REQUEST: "REQUEST", ACK: "ACK", NAK: "NAK", PAGED: "PAGED", BOOT: "BOOT", BUSY: "BUSY"}

# -- commands ----------------------------------------------------------------------------------
HELLO = 0x01           # u16 version, u32 session nonce -> JSON {protocol, firmware, max_payload, ...}
INFO = 0x02            # -> JSON of the loaded image (or {})
RESET = 0x03           # clear neuron/encoder/decoder state and the tick counter
UPLOAD_BEGIN = 0x04    # u8 target command, u32 total length, u32 crc32 of the whole blob
UPLOAD_CHUNK = 0x05    # u32 offset, bytes
UPLOAD_COMMIT = 0x06   # check completeness + crc32, then execute the target command on the blob
LOAD_IMAGE = 0x07      # image bytes (usually via UPLOAD_*) -> JSON info
PUSH_INPUT = 0x08      # name, array (int32)
RUN = 0x09             # u32 ticks
PULL_OUTPUTS = 0x0A    # -> u16 count, then per output: name, ticks array, values array
FETCH = 0x0B           # u32 offset, u16 length -> bytes of the pending PAGED result
COUNTERS = 0x0C        # -> JSON {name: number}
RESET_COUNTERS = 0x0D
REBOOT = 0x0E          # firmware restart (drops image and session); replies ACK, then BOOT
STEP = 0x0F            # u16 n, n x (name, array), u32 ticks: push, run, pull in one exchange
ABORT = 0x10           # stop the command being executed at its next tick boundary (answered at once)
STEPS = 0x11           # u16 m, m x STEP bodies: several pushes and runs, one pull, one exchange
LOAD_REGIONS = 0x12    # u16 n, n x (name, u16 row, col, rows, cols): split the chip into regions
REGION = 0x13          # u8 region, u8 command, its payload: a command addressed to one region
COMMAND_NAMES = {HELLO: "HELLO", INFO: "INFO", RESET: "RESET", UPLOAD_BEGIN: "UPLOAD_BEGIN",
                 UPLOAD_CHUNK: "UPLOAD_CHUNK", UPLOAD_COMMIT: "UPLOAD_COMMIT",
                 LOAD_IMAGE: "LOAD_IMAGE", PUSH_INPUT: "PUSH_INPUT", RUN: "RUN",
                 PULL_OUTPUTS: "PULL_OUTPUTS", FETCH: "FETCH", COUNTERS: "COUNTERS",
                 RESET_COUNTERS: "RESET_COUNTERS", REBOOT: "REBOOT", STEP: "STEP", ABORT: "ABORT",
                 STEPS: "STEPS", LOAD_REGIONS: "LOAD_REGIONS", REGION: "REGION"}
# commands whose payload may arrive chunked
UPLOAD_TARGETS = (LOAD_IMAGE, PUSH_INPUT, STEP, STEPS, LOAD_REGIONS, REGION)
# commands a REGION frame may carry (to the region's own engine)
REGION_COMMANDS = (INFO, RESET, LOAD_IMAGE, PUSH_INPUT, RUN, STEP, STEPS, PULL_OUTPUTS, COUNTERS,
                   RESET_COUNTERS)
MAX_REGIONS = 64

# -- error codes (the u16 of a NAK; also EngineError.code) -------------------------------------
E_BAD_FRAME = 1        # not COBS, too short, length field disagrees (truncated), wrong kind
E_BAD_CRC = 2          # CRC-32 mismatch
E_FRAME_TOO_LARGE = 3  # more bytes than MAX_FRAME before a delimiter (oversized command)
E_UNKNOWN_COMMAND = 4
E_BAD_PAYLOAD = 5      # payload does not parse for its command
E_VERSION = 6          # protocol version not supported
E_NO_SESSION = 7       # command before HELLO (e.g. after a firmware reset)
E_UPLOAD_STATE = 8     # chunk without begin, chunk out of range, commit of an incomplete upload
E_UPLOAD_CHECKSUM = 9  # assembled upload does not match its crc32
E_BAD_IMAGE = 10       # image rejected: format, version, checksum
E_CAPACITY = 11        # over capacity: image needs more cores / memory, too many ticks, too big
E_NO_IMAGE = 12        # command needs a loaded image
E_BAD_INPUT = 13       # unknown input name, wrong shape or dtype
E_ENGINE = 14          # the engine failed while executing
E_INTERNAL = 15        # unexpected firmware error (the server survives and reports it)
E_BUSY = 16            # the board is held by another session (socket links)
E_ABORTED = 17         # the command was stopped by ABORT (or a reset) at a tick boundary
E_AUTH = 18            # HELLO without the right shared-secret proof
ERROR_NAMES = {E_BAD_FRAME: "BAD_FRAME", E_BAD_CRC: "BAD_CRC", E_FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
               E_UNKNOWN_COMMAND: "UNKNOWN_COMMAND", E_BAD_PAYLOAD: "BAD_PAYLOAD",
               E_VERSION: "VERSION", E_NO_SESSION: "NO_SESSION", E_UPLOAD_STATE: "UPLOAD_STATE",
               E_UPLOAD_CHECKSUM: "UPLOAD_CHECKSUM", E_BAD_IMAGE: "BAD_IMAGE",
               E_CAPACITY: "CAPACITY", E_NO_IMAGE: "NO_IMAGE", E_BAD_INPUT: "BAD_INPUT",
               E_ENGINE: "ENGINE", E_INTERNAL: "INTERNAL", E_BUSY: "BUSY", E_ABORTED: "ABORTED",
               E_AUTH: "AUTH"}
# A NAK with one of these codes means "the frame did not arrive intact": send it again.
TRANSIENT_ERRORS = frozenset({E_BAD_FRAME, E_BAD_CRC})

# -- sizes -------------------------------------------------------------------------------------
HEADER = struct.Struct("<BBHH")
CRC = struct.Struct("<I")
MAX_PAYLOAD = 16384                                   # bytes of payload in one frame
MAX_FRAME = HEADER.size + MAX_PAYLOAD + CRC.size      # decoded body
MAX_UPLOAD = 64 << 20                                 # largest chunked blob a board accepts
MAX_RUN_TICKS = 1 << 24
# What a board allocates is bounded (docs/protocol.md section 7): checked before allocating.
MAX_BATCH = 4096                  # inferences in one batch (PUSH_INPUT / STEP axis 0)
MAX_STATE_BYTES = 256 << 20       # batch x (buffers + neuron state) x 8 bytes
MAX_HELD_VALUES = 1 << 22         # output values (x batch) held between two pulls
MAX_NAME_BYTES = 255              # input and output names, UTF-8
SEQ_MOD = 1 << 16
NO_SEQ = 0xFFFF   # seq of a NAK for a frame whose header could not be trusted


def cobs_max_len(n: int) -> int:
    """Largest COBS encoding of n bytes (one overhead byte per 254)."""
    return n + n // 254 + 1


MAX_ENCODED = cobs_max_len(MAX_FRAME)


class ProtocolError(Exception):
    """A frame or payload that breaks the protocol; ``code`` is the NAK error code and
    ``offset`` (if known) the byte offset in the decoded frame or payload."""

    def __init__(self, code: int, message: str, offset: int | None = None):
        self.code = int(code)
        self.offset = offset
        self.message = message if offset is None else f"byte {offset}: {message}"
        super().__init__(f"{ERROR_NAMES.get(self.code, self.code)}: {self.message}")


# -- COBS ----------------------------------------------------------------------------------------
# Two implementations of each direction with identical results: a plain loop (fast for short
# frames) and a numpy one (fast for long frames full of zero bytes, such as int32 arrays of
# small values, where the loop would run once per zero).
_VECTOR_MIN = 256            # encode: numpy from this many bytes
_VECTOR_MIN_DECODE = 4096    # decode: the loop below is about as fast up to here
_CODE = [bytes([i]) for i in range(256)]


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result contains no zero byte."""
    data = bytes(data)
    if len(data) >= _VECTOR_MIN:
        a = np.frombuffer(data, np.uint8)
        zeros = np.flatnonzero(a == 0)
        codes = np.diff(np.concatenate(([-1], zeros, [len(a)])))   # piece length + 1
        if codes.max() < 255:
            # the code of piece k+1 takes the place of the zero that ends piece k
            out = np.empty(len(a) + 1, np.uint8)
            out[0] = codes[0]
            out[1:] = a
            out[1 + zeros] = codes[1:]
            return out.tobytes()
    out = bytearray()
    for part in data.split(b"\x00"):
        while len(part) >= 254:
            out.append(0xFF)
            out += part[:254]
            part = part[254:]
        out += _CODE[len(part) + 1]
        out += part
    return bytes(out)


def _cobs_check(ok: bool, message: str, offset: int) -> None:
    if not ok:
        raise ProtocolError(E_BAD_FRAME, message, offset)


def cobs_decode(enc: bytes) -> bytes:
    """Inverse of cobs_encode; raises ProtocolError(E_BAD_FRAME) on a malformed block."""
    enc = bytes(enc)
    n = len(enc)
    if n >= _VECTOR_MIN_DECODE:
        return _cobs_decode_vector(enc)
    if not n:
        return b""
    # every code byte becomes the zero it stands for, except the first one and those after
    # a full (0xFF) block, which are dropped
    out = bytearray(enc)
    after_full = []
    i = last = 0
    while i < n:
        code = enc[i]
        _cobs_check(code != 0, "zero byte inside a COBS block", i)
        out[i] = 0
        if code == 0xFF:
            after_full.append(i + code)
        last = i
        i += code
    _cobs_check(i == n, f"COBS block of {enc[last] - 1} bytes runs past the end of the "
                f"{n}-byte frame (truncated)", last)
    for p in reversed(after_full):
        if p < n:
            del out[p]
    del out[0]
    return bytes(out)


def _cobs_decode_vector(enc: bytes) -> bytes:
    a = np.frombuffer(enc, np.uint8)
    n = len(a)
    if not a.all():
        _cobs_check(False, "zero byte inside a COBS block", int(np.flatnonzero(a == 0)[0]))
    # the code bytes form a chain p -> p + a[p] from 0; find it by pointer doubling
    # (node n = the end, node n + 1 = "ran past the end")
    jump = np.append(np.minimum(np.arange(n, dtype=np.int64) + a, n + 1), [n, n + 1])
    on = np.zeros(n + 2, bool)
    on[0] = True
    while True:
        on[jump[np.flatnonzero(on)]] = True
        if jump[0] >= n:
            break
        jump = jump[jump]
    chain = np.flatnonzero(on[:n])
    if on[n + 1]:
        last = int(chain[-1])
        _cobs_check(False, f"COBS block of {int(a[last]) - 1} bytes runs past the end of the "
                    f"{n}-byte frame (truncated)", last)
    out = a.copy()
    keep = np.ones(n, bool)
    keep[0] = False
    later = chain[1:]
    out[later] = 0                                   # a code byte stands for a zero ...
    keep[later[a[chain[:-1]] == 0xFF]] = False       # ... unless the block before was full
    return out[keep].tobytes()


__all__ = ['PROTOCOL_VERSION', 'REQUEST', 'ACK', 'NAK', 'PAGED', 'BOOT', 'BUSY', 'KIND_NAMES',
           'HELLO', 'INFO', 'RESET', 'UPLOAD_BEGIN', 'UPLOAD_CHUNK', 'UPLOAD_COMMIT', 'LOAD_IMAGE',
           'PUSH_INPUT', 'RUN', 'PULL_OUTPUTS', 'FETCH', 'COUNTERS', 'RESET_COUNTERS', 'REBOOT',
           'STEP', 'ABORT', 'STEPS', 'LOAD_REGIONS', 'REGION', 'COMMAND_NAMES', 'UPLOAD_TARGETS',
           'REGION_COMMANDS', 'MAX_REGIONS', 'E_BAD_FRAME', 'E_BAD_CRC',
           'E_FRAME_TOO_LARGE', 'E_UNKNOWN_COMMAND', 'E_BAD_PAYLOAD', 'E_VERSION', 'E_NO_SESSION',
           'E_UPLOAD_STATE', 'E_UPLOAD_CHECKSUM', 'E_BAD_IMAGE', 'E_CAPACITY', 'E_NO_IMAGE',
           'E_BAD_INPUT', 'E_ENGINE', 'E_INTERNAL', 'E_BUSY', 'E_ABORTED', 'E_AUTH', 'ERROR_NAMES', 'TRANSIENT_ERRORS', 'HEADER',
           'CRC', 'MAX_PAYLOAD', 'MAX_FRAME', 'MAX_UPLOAD', 'MAX_RUN_TICKS', 'SEQ_MOD', 'NO_SEQ',
           'MAX_ENCODED', 'MAX_BATCH', 'MAX_STATE_BYTES', 'MAX_HELD_VALUES', 'MAX_NAME_BYTES', 'cobs_max_len', 'ProtocolError', 'cobs_encode', 'cobs_decode']
