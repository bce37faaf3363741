"""The image format: round trip, and every kind of damage refused with its byte offset."""
import struct

import numpy as np
import pytest

from tianrt.chip import image_format as F


def sample():
    arrays = [np.arange(-5, 5, dtype=np.int8).reshape(2, 5), np.array([1, 2**31 - 1], np.int32),
              np.zeros(0, np.int64), np.array([[1, 2, 3]], np.uint16), np.array([0.5])]
    return F.pack({"kind": F.IMAGE_KIND, "name": "x", "list": [1, 2]}, arrays), arrays


def test_round_trip_and_layout():
    data, arrays = sample()
    img = F.unpack(data)
    assert img.meta["name"] == "x" and img.version == (F.VERSION_MAJOR, F.VERSION_MINOR)
    for a, b in zip(arrays, img.arrays):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert data[:8] == b"TNRCHIP\0" and len(data) % 8 == 0
    assert struct.unpack_from("<Q", data, 16)[0] == len(data)


@pytest.mark.parametrize("offset,message", [
    (0, "bad magic"), (8, "version"), (12, "flags"), (16, "says"),
])
def test_header_damage_names_its_offset(offset, message):
    data = bytearray(sample()[0])
    data[offset] ^= 0x5A
    with pytest.raises(F.ImageFormatError) as e:
        F.unpack(bytes(data))
    assert e.value.offset == offset and message in e.value.message


def test_any_flipped_bit_or_truncation_is_refused():
    data = sample()[0]
    rng = np.random.default_rng(0)
    for pos in rng.integers(F.HEADER_SIZE, len(data), 50):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(F.ImageFormatError, match="checksum"):
            F.unpack(bytes(bad))
    for n in (0, 10, F.HEADER_SIZE, len(data) - 1):
        with pytest.raises(F.ImageFormatError):
            F.unpack(data[:n])
    with pytest.raises(F.ImageFormatError, match="trailing"):
        F.unpack(data + b"\0")


def _reseal(buf):
    buf[F.CHECKSUM_OFFSET:F.CHECKSUM_OFFSET + 32] = b"\0" * 32
    import hashlib
    buf[F.CHECKSUM_OFFSET:F.CHECKSUM_OFFSET + 32] = hashlib.sha256(buf).digest()
    return bytes(buf)


def test_consistent_checksum_but_bad_table_is_refused_at_the_entry():
    data = bytearray(sample()[0])
    mlen = struct.unpack_from("<Q", data, 24)[0]
    table = F.HEADER_SIZE + mlen + (-mlen) % 8
    data[table] = 99  # unknown dtype code
    with pytest.raises(F.ImageFormatError, match="dtype code") as e:
        F.unpack(_reseal(data))
    assert e.value.offset == table
    data = bytearray(sample()[0])
    struct.pack_into("<Q", data, table + 20, 1 << 40)  # data offset past the end
    with pytest.raises(F.ImageFormatError, match="past the end") as e:
        F.unpack(_reseal(data))
    assert e.value.offset == table + 20


def test_unstorable_arrays_are_refused_when_packing():
    with pytest.raises(ValueError, match="dtype"):
        F.pack({}, [np.zeros(2, np.complex64)])
    with pytest.raises(ValueError, match="dimensions"):
        F.pack({}, [np.zeros((1,) * 5, np.int8)])
