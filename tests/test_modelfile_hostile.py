"""Hostile model files (issue 12, items 1-4): decompression bombs, absurd shapes, deep JSON,
directories, FIFOs and devices, prepended junk, odd versions, saves that cannot work; and a
seeded fuzz of the whole boundary. Every refusal is a ModelFileError naming the file, within
a time limit and an allocation cap, and leaves the files on disk as they were."""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from hostile import allocation_cap, within
from hypothesis import given, settings
from hypothesis import strategies as st

import tianrt as tr
from tianrt import modelfile


def small_graph():
    g = tr.Graph(name="small")
    x = g.input("x", (4,))
    h = g.add(tr.ann.Dense(4, 4, seed=1), x)
    g.output("y", g.add(tr.ann.ReLU(), h))
    return g


@pytest.fixture
def model(tmp_path):
    return tr.save(small_graph(), tmp_path / "m.tnr")


def members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_zip(path, files: dict, compress=()):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED)


def npy_bytes(a=None, header_only=None):
    """An .npy member: an array, or just a header declaring ``header_only`` = (dtype, shape)."""
    f = io.BytesIO()
    if header_only:
        dt, shape = header_only
        np.lib.format.write_array_header_1_0(f, {"descr": np.dtype(dt).str, "fortran_order": False,
                                                 "shape": shape})
    else:
        np.lib.format.write_array(f, a)
    return f.getvalue()


def header_of(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(z["__header__"].tobytes())


def with_header(files, header):
    files = dict(files)
    files["__header__.npy"] = npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
    return files


# -- 1. decompression bombs ------------------------------------------------------------------

def test_compressed_bomb_member_is_refused_before_its_data_is_read(model, tmp_path):
    """a0 is declared (4, 4) float32 in the JSON header; the member holds a deflated 256 MiB array."""
    files = members(model)
    bomb = io.BytesIO()
    np.lib.format.write_array_header_1_0(bomb, {"descr": "<f4", "fortran_order": False, "shape": (1 << 26,)})
    bomb.write(bytes(1 << 28))
    files["a0.npy"] = bomb.getvalue()
    bad = tmp_path / "bomb.tnr"
    write_zip(bad, files, compress={"a0.npy"})
    assert bad.stat().st_size < 2 << 20
    with within(5), allocation_cap(4 << 20):
        with pytest.raises(tr.ModelFileError, match=r"bomb\.tnr: member a0\.npy: its \.npy header says shape "
                                                    r"\[67108864\], the file's header says \[4, 4\]"):
            tr.load(bad)


def test_zip_entry_larger_than_the_declared_array_is_refused(model, tmp_path):
    """Same dtype and shape as declared, but the zip entry carries (compressed) trailing bytes."""
    files = members(model)
    files["a0.npy"] = files["a0.npy"] + bytes(64 << 20)
    bad = tmp_path / "tail.tnr"
    write_zip(bad, files, compress={"a0.npy"})
    with within(5), allocation_cap(4 << 20):
        with pytest.raises(tr.ModelFileError, match=r"tail\.tnr: member a0\.npy: zip entry holds \d+ bytes "
                                                    r"but its \.npy header declares 192 \(<f4 \[4, 4\]\)"):
            tr.load(bad)


def test_header_declaring_more_than_the_array_cap_is_refused(model, tmp_path, monkeypatch):
    files = members(model)
    h = header_of(model)
    h["graph"]["array_info"]["a0"]["shape"] = [1 << 20, 1 << 20]
    bad = tmp_path / "big.tnr"
    write_zip(bad, with_header(files, h))
    with within(5), allocation_cap(4 << 20):
        with pytest.raises(tr.ModelFileError, match=r"big\.tnr: header declares more than 4 GiB of arrays "
                                                    r"\(reached at a0: <f4 \[1048576, 1048576\]\)"):
            tr.load(bad)
    monkeypatch.setattr(modelfile, "MAX_ARRAY_BYTES", 70)  # a0 is 64 bytes, a1 16
    with pytest.raises(tr.ModelFileError, match=r"m\.tnr: header declares more than 70 bytes of arrays "
                                                r"\(reached at a1: <f4 \[4\]\)"):
        tr.load(model)


# -- 2. raw exceptions -----------------------------------------------------------------------

def test_directory_path(tmp_path):
    with within(5), pytest.raises(tr.ModelFileError, match=r": is a directory, not a file"):
        tr.load(tmp_path)


def test_member_declaring_an_absurd_shape(model, tmp_path):
    files = members(model)
    files["a0.npy"] = npy_bytes(header_only=("<f4", (1 << 20, 1 << 20, 1 << 10)))
    h = header_of(model)
    h["graph"]["array_info"]["a0"]["shape"] = [1 << 20, 1 << 20, 1 << 10]
    bad = tmp_path / "huge.tnr"
    write_zip(bad, with_header(files, h))
    with within(5), allocation_cap(4 << 20):
        with pytest.raises(tr.ModelFileError, match=r"huge\.tnr: header declares more than"):
            tr.load(bad)
    # the JSON header left alone: the member's own header is compared with it first
    write_zip(bad, files)
    with within(5), allocation_cap(4 << 20):
        with pytest.raises(tr.ModelFileError, match=r"huge\.tnr: member a0\.npy: its \.npy header says shape "
                                                    r"\[1048576, 1048576, 1024\]"):
            tr.load(bad)


def test_json_header_nested_100000_levels(model, tmp_path):
    files = members(model)
    deep = '{"format": "tianrt-model", "version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    files["__header__.npy"] = npy_bytes(np.frombuffer(deep.encode(), np.uint8))
    bad = tmp_path / "deep.tnr"
    write_zip(bad, files)
    with within(5), pytest.raises(tr.ModelFileError, match=r"deep\.tnr: header is nested 100001 levels deep; "
                                                           r"at most 64 are read"):
        tr.load(bad)


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert modelfile._json_depth('{"a": "[[[[{{{{\\"]]]]", "b": [[1]]}') == 3


def test_nesting_scan_is_linear_on_unterminated_escaped_strings():
    with within(5):  # a quadratic scan takes minutes here
        assert modelfile._json_depth('"' + '\\"' * 2_000_000) == 0
        assert modelfile._json_depth('"' + '\\"' * 2_000_000 + "\\") == 0


# -- 3. hangs --------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.tnr"
    os.mkfifo(fifo)
    with within(5), pytest.raises(tr.ModelFileError, match=r"pipe\.tnr: is a FIFO \(named pipe\); only regular"):
        tr.load(fifo)


def test_failed_write_removes_the_temporary_file(tmp_path, monkeypatch):
    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(tr.ModelFileError, match=r"m\.tnr: cannot save \(No space left on device\)"):
        tr.save(small_graph(), tmp_path / "m.tnr")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_is_refused_without_reading():
    with within(5), allocation_cap(1 << 20):
        with pytest.raises(tr.ModelFileError, match=r"/dev/zero: is a character device; only regular files"):
            tr.load("/dev/zero")


def test_file_larger_than_the_cap_is_refused_unread(model, monkeypatch):
    monkeypatch.setattr(modelfile, "MAX_FILE_BYTES", 1000)
    with pytest.raises(tr.ModelFileError, match=r"m\.tnr: is \d\.\d+ KiB, more than the 1000 bytes this reader"):
        tr.load(model)


# -- 4. misleading messages, odd versions, saves -------------------------------------------

def test_junk_prepended_is_named_as_such(model, tmp_path):
    bad = tmp_path / "junk.tnr"
    bad.write_bytes(b"#!/bin/sh\nexit 0\n" + model.read_bytes())
    with pytest.raises(tr.ModelFileError) as e:
        tr.load(bad)
    msg = str(e.value)
    assert "junk.tnr: does not start with a zip archive" in msg and "prepended" in msg
    assert "pickle" not in msg


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_version_must_be_a_plain_integer(model, tmp_path, version):
    h = header_of(model)
    h["version"] = version
    bad = tmp_path / "v.tnr"
    write_zip(bad, with_header(members(model), h))
    with pytest.raises(tr.ModelFileError, match=r"v\.tnr: header version .* is not an integer"):
        tr.load(bad)


def test_save_to_a_directory_leaves_nothing_behind(tmp_path):
    before = sorted(tmp_path.iterdir())
    with pytest.raises(tr.ModelFileError, match=r"cannot save: it is a directory; give a file name such as"):
        tr.save(small_graph(), tmp_path)
    assert sorted(tmp_path.iterdir()) == before


def test_save_to_a_missing_directory_names_the_directory(tmp_path):
    with pytest.raises(tr.ModelFileError) as e:
        tr.save(small_graph(), tmp_path / "nope" / "m.tnr")
    assert str(e.value) == f"{tmp_path / 'nope' / 'm.tnr'}: cannot save: directory {tmp_path / 'nope'} does not exist"
    assert ".tmp" not in str(e.value) and not (tmp_path / "nope").exists()


def test_failed_save_touches_nothing_it_did_not_create(tmp_path):
    target = tmp_path / "m.tnr"
    (tmp_path / "m.tnr.tmp").mkdir()  # the temporary name cannot be written
    with pytest.raises(tr.ModelFileError, match=r"m\.tnr: cannot save \(Is a directory\)"):
        tr.save(small_graph(), target)
    assert not target.exists() and (tmp_path / "m.tnr.tmp").is_dir()  # nothing of the user's removed


def test_fortran_order_members_still_load(model, tmp_path):
    """A third-party writer may store arrays in Fortran order: read, same values."""
    files = members(model)
    with np.load(model) as z:
        a0 = z["a0"]
    files["a0.npy"] = npy_bytes(np.asfortranarray(a0))
    ok = tmp_path / "f.tnr"
    write_zip(ok, files)
    g = tr.load(ok)
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(tr.Runtime(g).run({"x": x}, ticks=1)["y"],
                                  tr.Runtime(small_graph()).run({"x": x}, ticks=1)["y"])


# -- the fuzz: seeded, bounded, every outcome a load or a ModelFileError ----------------------

CAP = 8 << 20     # allocation cap per load: the tiny model's arrays plus the reader's buffers


def _byte_mutants(data: bytes, rng, n: int):
    for i in range(n):
        b = bytearray(data)
        op = i % 5
        if op == 0:                                            # flip 1-4 bytes
            for j in rng.integers(0, len(b), rng.integers(1, 5)):
                b[j] ^= int(rng.integers(1, 256))
        elif op == 1:                                          # truncate
            b = b[: int(rng.integers(0, len(b)))]
        elif op == 2:                                          # insert junk
            j = int(rng.integers(0, len(b) + 1))
            b[j:j] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif op == 3:                                          # overwrite a run with a boundary value
            j, k = sorted(rng.integers(0, len(b), 2))
            b[j:k + 1] = bytes([int(rng.choice([0, 0xFF, 0x7F, 0x80]))]) * (k + 1 - j)
        else:                                                  # drop a range
            j, k = sorted(rng.integers(0, len(b), 2))
            del b[j:k]
        yield bytes(b)


HOSTILE_VALUES = [None, True, -1, 0, 2 ** 63, 1e308, float("nan"), "", "x" * 300, [], {}, [[[]]],
                  [1 << 40, 1 << 40], [-3], ["4"], "<f4", "|O", "V8", {"a": 1}]


def _header_mutants(files: dict, header: dict, rng, n: int):
    """JSON-level mutations with the digest recomputed, so they reach the graph rebuild."""
    with np.load(io.BytesIO(_zip_bytes(files))) as z:
        arrays = {k: z[k] for k in z.files if k != "__header__"}
    for _ in range(n):
        h = json.loads(json.dumps(header))
        node = h
        path = []
        while isinstance(node, (dict, list)) and node and rng.random() < 0.8:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            k = keys[int(rng.integers(0, len(keys)))]
            if not isinstance(node[k], (dict, list)) or rng.random() < 0.3:
                path.append(k)
                break
            path.append(k)
            node = node[k]
        target = h
        for k in path[:-1]:
            target = target[k]
        if path:
            target[path[-1]] = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
        if rng.random() < 0.8 and isinstance(h.get("graph"), dict):
            try:
                h["digest"] = modelfile._digest(h["graph"], arrays)
            except (TypeError, ValueError):
                pass
        yield _zip_bytes(with_header(files, h))


def _zip_bytes(files, compression=zipfile.ZIP_STORED):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", compression=compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return f.getvalue()


def test_fuzz_model_files(model, tmp_path):
    rng = np.random.default_rng(12)
    data = model.read_bytes()
    files = members(model)
    deflated = _zip_bytes(files, zipfile.ZIP_DEFLATED)
    cases = (list(_byte_mutants(data, rng, 200)) + list(_byte_mutants(deflated, rng, 100))
             + list(_header_mutants(files, header_of(model), rng, 200)))
    path = tmp_path / "fuzz.tnr"
    outcomes = {"loaded": 0, "refused": 0}
    with allocation_cap(CAP):
        for i, blob in enumerate(cases):
            path.write_bytes(blob)
            with within(5):
                try:
                    g = tr.load(path)
                except tr.ModelFileError as exc:
                    assert str(exc).startswith(f"{path}: "), (i, exc)
                    outcomes["refused"] += 1
                else:
                    g.validate()
                    outcomes["loaded"] += 1
            assert path.read_bytes() == blob  # loading never changes the file
    assert outcomes["refused"] > 300 and outcomes["loaded"] > 0, outcomes


def _depth(v) -> int:
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a'), c, max_size=3),
                     max_leaves=20)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_json)
def test_json_depth_matches_the_structure(v):
    assert modelfile._json_depth(json.dumps(v)) == _depth(v)
