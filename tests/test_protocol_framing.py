"""Frame layer of the serial protocol: COBS, CRC-32, header checks, resynchronisation,
payload codecs (tianrt.chip.protocol)."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tianrt.chip import protocol as P
from tianrt.chip import wire


@settings(derandomize=True, deadline=None, max_examples=200)
@given(st.binary(max_size=1200))
def test_cobs_round_trip_and_no_zero_bytes(data):
    enc = P.cobs_encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= P.cobs_max_len(len(data))
    assert P.cobs_decode(enc) == data


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"\x11" * 254, b"\x11" * 254 + b"\x00",
                                  b"\x11" * 253, b"\x11" * 255, b"\x00" + b"\x22" * 600 + b"\x00"])
def test_cobs_edge_cases(data):
    assert P.cobs_decode(P.cobs_encode(data)) == data


def test_known_frame_bytes():
    # RUN 7 ticks, seq 5: header 01 09 0500 0400, payload 07000000, then the CRC-32
    body = P.frame_body(P.REQUEST, P.RUN, 5, P.pack_run(7))
    assert body[:10] == bytes.fromhex("01090500040007000000")
    assert body[10:] == struct.pack("<I", zlib.crc32(body[:10]))
    wire = P.encode_frame(P.REQUEST, P.RUN, 5, P.pack_run(7))
    assert wire[0] == 0 and wire[-1] == 0 and b"\x00" not in wire[1:-1]
    assert P.decode_frame(wire[1:-1]) == P.Frame(P.REQUEST, P.RUN, 5, P.pack_run(7))


def test_every_single_bit_flip_is_detected():
    body = P.frame_body(P.REQUEST, P.PUSH_INPUT, 77, P.pack_push("x", np.arange(5, dtype=np.int32)))
    for bit in range(len(body) * 8):
        bad = bytearray(body)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(P.ProtocolError) as e:
            P.parse_body(bytes(bad))
        assert e.value.code in (P.E_BAD_CRC, P.E_BAD_FRAME)


def test_truncated_and_padded_frames_name_the_length():
    body = P.frame_body(P.REQUEST, P.RUN, 1, P.pack_run(3))
    for cut in range(1, len(body)):
        with pytest.raises(P.ProtocolError) as e:
            P.parse_body(body[:cut])
        assert e.value.code == P.E_BAD_FRAME
    with pytest.raises(P.ProtocolError, match="truncated"):
        P.parse_body(body[:-1])
    with pytest.raises(P.ProtocolError, match="should be 14 bytes, got 15"):
        P.parse_body(body + b"\x01")


def test_cobs_decode_rejects_a_block_running_past_the_end():
    with pytest.raises(P.ProtocolError, match="byte 0: COBS block of 9 bytes runs past"):
        P.cobs_decode(b"\x0a\x01\x02")


def test_deframer_resynchronises_after_garbage():
    rng = np.random.default_rng(1)
    frames = [P.encode_frame(P.REQUEST, P.RUN, s, P.pack_run(s)) for s in range(1, 6)]
    stream = b""
    for f in frames:
        stream += rng.integers(0, 256, 37, dtype=np.uint8).tobytes() + f
    d = P.Deframer()
    got = []
    for i in range(0, len(stream), 7):   # arbitrary read sizes
        for block in d.feed(stream[i:i + 7]):
            try:
                got.append(P.decode_frame(block))
            except P.ProtocolError:
                pass
    assert [f.seq for f in got] == [1, 2, 3, 4, 5]


def test_deframer_reports_an_oversized_frame_once_and_recovers():
    d = P.Deframer(limit=100)
    out = d.feed(b"\x01" * 250 + b"\x00")
    assert out == [None]
    ok = P.encode_frame(P.REQUEST, P.INFO, 9)
    assert [P.decode_frame(b).cmd for b in d.feed(ok)] == [P.INFO]


def test_payload_too_large_for_a_frame_is_refused_when_encoding():
    with pytest.raises(P.ProtocolError, match="MAX_PAYLOAD"):
        P.encode_frame(P.REQUEST, P.PUSH_INPUT, 1, b"\x01" * (P.MAX_PAYLOAD + 1))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "float32", "float64", ">i4"])
def test_array_codec_round_trip(dtype):
    a = (np.arange(24) - 12).astype(dtype).reshape(2, 3, 4)
    r = P.Reader(P.pack_array(a), "t")
    b = P.read_array(r)
    r.end()
    assert b.shape == a.shape and np.array_equal(a, b) and b.dtype == a.dtype.newbyteorder("=")


def test_outputs_codec_round_trip():
    outs = {"y": (np.array([2, 4]), np.arange(12, dtype=np.int32).reshape(2, 2, 3)),
            "spikes": (np.array([], np.int64), np.zeros((0, 1, 5), np.int32))}
    back = P.read_outputs(P.pack_outputs(outs))
    assert list(back) == ["y", "spikes"]
    for k in outs:
        assert np.array_equal(back[k][0], outs[k][0]) and np.array_equal(back[k][1], outs[k][1])
        assert back[k][1].shape == outs[k][1].shape


def test_bad_payloads_name_field_and_offset():
    with pytest.raises(P.ProtocolError, match=r"byte 0: RUN: ticks needs 4 bytes, only 3 left"):
        P.read_run(b"\x01\x02\x03")
    with pytest.raises(P.ProtocolError, match=r"byte 4: RUN: 1 unexpected trailing bytes"):
        P.read_run(b"\x01\x00\x00\x00\x09")
    bad = P.pack_push("x", np.zeros(4, np.int32))[:-3]
    with pytest.raises(P.ProtocolError, match=r"input 'x' data \(\(4,\) int32\) needs 16 bytes"):
        P.read_push(bad)
    with pytest.raises(P.ProtocolError, match="unknown dtype code 99"):
        P.read_push(b"\x01x" + bytes([99, 0]))
    with pytest.raises(P.ProtocolError, match="cannot be sent"):
        P.pack_array(np.zeros(2, dtype=np.complex64))


def _draw(seed, values, lo, hi):
    rng = np.random.default_rng(seed)
    return bytes(rng.choice(np.array(values, np.uint8), int(rng.integers(lo, hi))).tobytes())


@settings(derandomize=True, deadline=None, max_examples=300)
@given(st.integers(0, 2 ** 32 - 1))
def test_long_and_short_cobs_decoders_agree_on_any_input(seed):
    """Both decoders (numpy for long frames, a loop for short ones) accept and refuse exactly
    what a plain COBS decoder does."""
    def loop(e):
        try:
            out, i = [], 0
            while i < len(e):
                code = e[i]
                if i + code > len(e):
                    return "error"
                out.append(e[i + 1:i + code])
                if code != 0xFF and i + code < len(e):
                    out.append(b"\x00")
                i += code
            return b"".join(out)
        except IndexError:
            return "error"

    if seed % 3 == 0:     # arbitrary code bytes: mostly malformed
        enc = _draw(seed, [1, 2, 3, 7, 100, 253, 254, 255], 256, 900)
    else:                 # a valid encoding, whole or cut anywhere
        enc = P.cobs_encode(_draw(seed, [0, 0, 1, 9, 255], 300, 1500))
        if seed % 3 == 2:
            enc = enc[:256 + seed % (len(enc) - 256)]
    for decode in (P.cobs_decode, wire._cobs_decode_vector):   # the byte loop and numpy
        try:
            got = decode(enc)
        except P.ProtocolError as exc:
            assert exc.code == P.E_BAD_FRAME and "runs past the end" in str(exc)
            got = "error"
        assert got == loop(enc), decode.__name__


@settings(derandomize=True, deadline=None, max_examples=150)
@given(st.integers(0, 2 ** 32 - 1))
def test_cobs_round_trip_long_frames_with_many_zeros(seed):
    data = _draw(seed, [0, 0, 1, 5, 255], 250, 9000)
    enc = P.cobs_encode(data)
    assert b"\x00" not in enc and P.cobs_decode(enc) == data
