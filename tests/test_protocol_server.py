"""firmware_sim's protocol server in process: every command, every error code, duplicate
suppression, atomic image loads, and a fuzz run that never crashes it."""
import zlib

import numpy as np
import pytest

from tianrt.chip import protocol as P
from tianrt.firmware_sim.server import Server

from link_engine_double import FakeEngine, make_image


class Host:
    """A minimal in-process host: one frame in, the decoded replies out."""

    def __init__(self, engine_factory=FakeEngine):
        self.server = Server(engine_factory)
        self.seq = 0

    def raw(self, wire: bytes) -> list[P.Frame]:
        d = P.Deframer()
        return [P.decode_frame(b) for b in d.feed(self.server.feed(wire))]

    def send(self, cmd, payload=b"", seq=None) -> P.Frame:
        if seq is None:
            self.seq += 1
            seq = self.seq
        (reply,) = self.raw(P.encode_frame(P.REQUEST, cmd, seq, payload))
        assert reply.seq == seq and reply.cmd == cmd
        return reply

    def ok(self, cmd, payload=b"") -> bytes:
        f = self.send(cmd, payload)
        assert f.kind == P.ACK, P.read_nak(f.payload)
        return f.payload

    def nak(self, cmd, payload=b"") -> tuple[int, str]:
        f = self.send(cmd, payload)
        assert f.kind == P.NAK, f
        return P.read_nak(f.payload)

    def hello(self):
        return P.read_json(self.ok(P.HELLO, P.pack_hello(P.PROTOCOL_VERSION, 1234)), "hello")

    def upload(self, data: bytes, step=1000):
        self.ok(P.UPLOAD_BEGIN, P.pack_upload_begin(P.LOAD_IMAGE, len(data), zlib.crc32(data)))
        for off in range(0, len(data), step):
            self.ok(P.UPLOAD_CHUNK, P.pack_chunk(off, data[off:off + step]))
        return self.send(P.UPLOAD_COMMIT)


@pytest.fixture
def host():
    h = Host()
    h.hello()
    return h


def info(h):
    return P.read_json(h.ok(P.INFO), "info")


def test_boot_frame_and_commands_before_hello_are_refused():
    h = Host()
    code, msg = h.nak(P.RUN, P.pack_run(1))
    assert code == P.E_NO_SESSION and "HELLO" in msg
    hello = h.hello()
    assert hello["protocol"] == P.PROTOCOL_VERSION and hello["max_payload"] == P.MAX_PAYLOAD
    assert hello["image"] == {}


def test_version_mismatch_is_refused():
    h = Host()
    code, msg = h.nak(P.HELLO, P.pack_hello(P.PROTOCOL_VERSION + 1, 1))
    assert code == P.E_VERSION and f"speaks {P.PROTOCOL_VERSION}" in msg


def test_full_session(host):
    r = host.upload(make_image(shape=(3,), gain=3, window=2))
    assert r.kind == P.ACK and P.read_json(r.payload, "x")["name"] == "fake"
    host.ok(P.PUSH_INPUT, P.pack_push("x", np.array([1, 2, 3], np.int32)))
    host.ok(P.RUN, P.pack_run(4))
    outs = P.read_outputs(host.ok(P.PULL_OUTPUTS))
    assert outs["y"][0].tolist() == [2, 4]
    assert outs["y"][1][:, 0].tolist() == [[6, 12, 18], [12, 24, 36]]
    c = P.read_json(host.ok(P.COUNTERS), "c")
    assert c["rounds"] == 4 and c["link_frames"] >= 6
    host.ok(P.RESET_COUNTERS)
    assert P.read_json(host.ok(P.COUNTERS), "c")["rounds"] == 0
    host.ok(P.RESET)
    host.ok(P.RUN, P.pack_run(2))
    assert P.read_outputs(host.ok(P.PULL_OUTPUTS)) == {}


def test_duplicate_request_is_answered_again_but_executed_once(host):
    host.upload(make_image(window=1))
    host.ok(P.PUSH_INPUT, P.pack_push("x", np.ones(3, np.int32)))
    wire = P.encode_frame(P.REQUEST, P.RUN, 500, P.pack_run(3))
    first = host.raw(wire)
    again = host.raw(wire)
    assert first == again and first[0].kind == P.ACK
    c = P.read_json(host.ok(P.COUNTERS), "c")
    assert c["rounds"] == 3 and c["link_duplicates"] == 1


def test_same_seq_with_other_content_is_a_new_request(host):
    host.upload(make_image())
    host.send(P.RUN, P.pack_run(1), seq=900)
    host.send(P.RUN, P.pack_run(2), seq=900)
    assert P.read_json(host.ok(P.COUNTERS), "c")["rounds"] == 3


def test_garbage_gets_a_nak_and_the_next_frame_still_works(host):
    replies = host.raw(b"\x13\x37garbage\x00" + P.encode_frame(P.REQUEST, P.INFO, 42))
    assert [f.kind for f in replies] == [P.NAK, P.ACK]
    assert replies[0].seq == P.NO_SEQ and P.read_nak(replies[0].payload)[0] in P.TRANSIENT_ERRORS
    assert replies[1].seq == 42


def test_bit_flipped_frame_gets_bad_crc(host):
    wire = bytearray(P.encode_frame(P.REQUEST, P.RUN, 7, P.pack_run(1)))
    wire[6] ^= 0x10
    (f,) = host.raw(bytes(wire))
    assert f.kind == P.NAK and P.read_nak(f.payload)[0] in (P.E_BAD_CRC, P.E_BAD_FRAME)


def test_unknown_command(host):
    code, msg = host.nak(0x7E)
    assert code == P.E_UNKNOWN_COMMAND and "0x7e" in msg and "0x09 RUN" in msg


def test_oversized_frame_is_refused_and_the_server_recovers(host):
    huge = b"\x00" + b"\x05" * (P.MAX_ENCODED + 10) + b"\x00"
    (f,) = host.raw(huge)
    assert f.kind == P.NAK and P.read_nak(f.payload)[0] == P.E_FRAME_TOO_LARGE
    assert host.send(P.INFO).kind == P.ACK


def test_a_board_with_a_smaller_max_payload_refuses_larger_frames():
    h = Host()
    h.server = Server(FakeEngine, max_payload=64)
    f = h.send(P.HELLO, P.pack_hello(P.PROTOCOL_VERSION, 1))
    assert f.kind == P.PAGED            # the HELLO reply itself needs two FETCHes
    total, _crc = P.read_paged(f.payload)
    blob = b""
    while len(blob) < total:
        piece = h.ok(P.FETCH, P.pack_fetch(len(blob), 1000))   # asks for more than fits
        assert 0 < len(piece) <= 64
        blob += piece
    assert P.read_json(blob, "hello")["max_payload"] == 64
    (f,) = h.raw(P.encode_frame(P.REQUEST, P.PUSH_INPUT, 5, P.pack_push("x", np.zeros(40, np.int32))))
    code, msg = P.read_nak(f.payload)
    assert code == P.E_FRAME_TOO_LARGE and "max payload is 64" in msg
    with pytest.raises(ValueError, match=r"max_payload must be in \[64, 16384\]"):
        Server(FakeEngine, max_payload=10)


def test_a_reply_too_big_for_one_frame_is_paged(host):
    host.upload(make_image(shape=(3000,), window=1))
    host.ok(P.PUSH_INPUT, P.pack_push("x", np.arange(3000, dtype=np.int32)))
    host.ok(P.RUN, P.pack_run(3))
    f = host.send(P.PULL_OUTPUTS)
    assert f.kind == P.PAGED
    total, crc = P.read_paged(f.payload)
    assert total > P.MAX_PAYLOAD
    blob = b""
    while len(blob) < total:
        blob += host.ok(P.FETCH, P.pack_fetch(len(blob), P.MAX_PAYLOAD))
    assert zlib.crc32(blob) == crc
    ticks, vals = P.read_outputs(blob)["y"]
    assert ticks.tolist() == [1, 2, 3] and vals[2, 0, 10] == 3 * 2 * 10
    # a FETCH larger than the board's frames gets what fits; past the end is refused
    assert len(host.ok(P.FETCH, P.pack_fetch(0, P.MAX_PAYLOAD + 1))) == P.MAX_PAYLOAD
    assert host.nak(P.FETCH, P.pack_fetch(total + 1, 10))[0] == P.E_BAD_PAYLOAD


def test_fetch_without_a_paged_result(host):
    assert host.nak(P.FETCH, P.pack_fetch(0, 10))[0] == P.E_UPLOAD_STATE


def test_upload_errors_leave_the_old_image_running(host):
    host.upload(make_image(name="old"))
    new = make_image(name="new", pad=3000)
    assert host.nak(P.UPLOAD_CHUNK, P.pack_chunk(0, new[:100]))[0] == P.E_UPLOAD_STATE
    # incomplete
    host.ok(P.UPLOAD_BEGIN, P.pack_upload_begin(P.LOAD_IMAGE, len(new), zlib.crc32(new)))
    host.ok(P.UPLOAD_CHUNK, P.pack_chunk(0, new[:1000]))
    code, msg = host.nak(P.UPLOAD_COMMIT)
    assert code == P.E_UPLOAD_STATE and "after 1000 of" in msg
    # out of order
    host.ok(P.UPLOAD_BEGIN, P.pack_upload_begin(P.LOAD_IMAGE, len(new), zlib.crc32(new)))
    code, msg = host.nak(P.UPLOAD_CHUNK, P.pack_chunk(500, new[500:900]))
    assert "expected offset 0" in msg
    # a resent chunk with other bytes
    host.ok(P.UPLOAD_CHUNK, P.pack_chunk(0, new[:1000]))
    host.ok(P.UPLOAD_CHUNK, P.pack_chunk(0, new[:1000]))   # same bytes: fine (lost ACK)
    assert host.nak(P.UPLOAD_CHUNK, P.pack_chunk(0, b"Z" * 1000))[0] == P.E_UPLOAD_STATE
    # overrun
    assert host.nak(P.UPLOAD_CHUNK, P.pack_chunk(1000, b"a" * len(new)))[0] == P.E_UPLOAD_STATE
    # corrupted in transit: crc of the whole blob disagrees
    bad = bytearray(new)
    bad[2000] ^= 1
    host.ok(P.UPLOAD_BEGIN, P.pack_upload_begin(P.LOAD_IMAGE, len(new), zlib.crc32(new)))
    host.ok(P.UPLOAD_CHUNK, P.pack_chunk(0, bytes(bad)))
    code, msg = host.nak(P.UPLOAD_COMMIT)
    assert code == P.E_UPLOAD_CHECKSUM and "discarded" in msg
    assert info(host)["name"] == "old"


def test_corrupted_image_is_refused_and_the_old_one_keeps_running(host):
    host.upload(make_image(name="old", gain=5, window=1))
    host.ok(P.PUSH_INPUT, P.pack_push("x", np.ones(3, np.int32)))
    host.ok(P.RUN, P.pack_run(1))
    img = bytearray(make_image(name="new"))
    img[-3] ^= 0x40          # damaged before it was sent: the transfer is fine, the image is not
    r = host.upload(bytes(img))
    assert r.kind == P.NAK
    code, msg = P.read_nak(r.payload)
    assert code == P.E_BAD_IMAGE and "checksum" in msg
    assert info(host)["name"] == "old"
    host.ok(P.RUN, P.pack_run(1))    # the old image's state went on untouched
    ticks, vals = P.read_outputs(host.ok(P.PULL_OUTPUTS))["y"]
    assert ticks.tolist() == [1, 2] and vals[-1, 0].tolist() == [10, 10, 10]


def test_no_image_and_over_capacity(host):
    assert host.nak(P.RUN, P.pack_run(1))[0] == P.E_NO_IMAGE
    r = host.upload(make_image(cores=9999))
    assert r.kind == P.NAK and P.read_nak(r.payload)[0] == P.E_CAPACITY
    assert info(host) == {}
    code, msg = host.nak(P.UPLOAD_BEGIN, P.pack_upload_begin(P.LOAD_IMAGE, P.MAX_UPLOAD + 1, 0))
    assert code == P.E_CAPACITY and "MAX_UPLOAD" in msg
    host.upload(make_image())
    assert host.nak(P.RUN, P.pack_run(P.MAX_RUN_TICKS + 1))[0] == P.E_CAPACITY


def test_bad_inputs_and_payloads(host):
    host.upload(make_image())
    code, msg = host.nak(P.PUSH_INPUT, P.pack_push("nope", np.ones(3, np.int32)))
    assert code == P.E_BAD_INPUT and "nope" in msg
    assert host.nak(P.PUSH_INPUT, P.pack_push("x", np.ones(4, np.int32)))[0] == P.E_BAD_INPUT
    assert host.nak(P.RUN, b"\x01")[0] == P.E_BAD_PAYLOAD
    assert host.nak(P.INFO, b"\x01")[0] == P.E_BAD_PAYLOAD
    assert host.nak(P.UPLOAD_BEGIN, P.pack_upload_begin(P.RUN, 4, 0))[0] == P.E_BAD_PAYLOAD


def test_engine_crash_becomes_internal_error_and_server_survives():
    class Crashy(FakeEngine):
        def run(self, ticks):
            raise ZeroDivisionError("boom")

    h = Host(Crashy)
    h.hello()
    h.upload(make_image())
    code, msg = h.nak(P.RUN, P.pack_run(1))
    assert code == P.E_INTERNAL and "ZeroDivisionError: boom" in msg
    assert h.send(P.INFO).kind == P.ACK


def test_reboot_drops_image_and_session(host):
    host.upload(make_image())
    replies = host.raw(P.encode_frame(P.REQUEST, P.REBOOT, 99))
    assert [f.kind for f in replies] == [P.ACK, P.BOOT]
    assert P.read_json(replies[1].payload, "boot")["boot"] == 2
    assert host.nak(P.INFO)[0] == P.E_NO_SESSION
    assert host.hello()["image"] == {}


def test_fuzz_thousands_of_random_frames_never_crash_the_server():
    """Random bytes, valid frames with random commands and payloads, and valid frames with
    damage, in one stream; every complete block gets exactly one reply and the server
    still serves a normal session afterwards."""
    rng = np.random.default_rng(2024)
    h = Host()
    h.hello()
    h.upload(make_image(window=3))
    good = [P.encode_frame(P.REQUEST, c, 0, p) for c, p in [
        (P.RUN, P.pack_run(2)), (P.PUSH_INPUT, P.pack_push("x", np.ones(3, np.int32))),
        (P.PULL_OUTPUTS, b""), (P.COUNTERS, b""), (P.INFO, b""), (P.RESET, b"")]]
    replies = 0
    for i in range(4000):
        kind = i % 4
        if kind == 0:      # pure noise, zeros included
            wire = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
        elif kind == 1:    # a well-formed frame with a random command and payload
            cmd = int(rng.integers(0, 256))
            if cmd == P.REBOOT:
                cmd = P.INFO
            payload = rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
            wire = P.encode_frame(P.REQUEST, cmd, int(rng.integers(0, 65535)), payload)
        elif kind == 2:    # a known-good frame with flipped bits
            wire = bytearray(good[int(rng.integers(len(good)))])
            for _ in range(int(rng.integers(1, 4))):
                j = int(rng.integers(1, len(wire) - 1))
                wire[j] ^= 1 << int(rng.integers(8))
            wire = bytes(wire)
        else:              # a known-good frame, truncated or duplicated, new seq
            f = P.decode_frame(good[int(rng.integers(len(good)))][1:-1])
            wire = P.encode_frame(P.REQUEST, f.cmd, i, f.payload)
            wire = wire[:int(rng.integers(2, len(wire)))] if rng.random() < 0.5 else wire * 2
        out = h.server.feed(wire)
        replies += len(P.Deframer().feed(out))
    assert replies > 3000
    h.hello()   # the session may have been replaced by a fuzzed HELLO
    assert h.send(P.INFO).kind == P.ACK
    h.upload(make_image(name="after", window=1))
    h.ok(P.PUSH_INPUT, P.pack_push("x", np.ones(3, np.int32)))
    h.ok(P.RESET)
    h.ok(P.PUSH_INPUT, P.pack_push("x", np.ones(3, np.int32)))
    h.ok(P.RUN, P.pack_run(2))
    assert P.read_outputs(h.ok(P.PULL_OUTPUTS))["y"][1][:, 0, 0].tolist() == [2, 4]
