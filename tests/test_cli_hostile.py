"""Hostile command-line input to `tianrt run` / `tianrt info` (issue 12, items 5-6): unreadable
input files, .npy inputs, output paths, how axis 0 is read, the documented exit status
(0 done, 1 bad input, 2 bad usage, 3 runtime failure); and a seeded fuzz of input files."""
import io
import os
import zipfile

import numpy as np
import pytest
from hostile import allocation_cap, within
from hypothesis import given, settings
from hypothesis import strategies as st

import tianrt as tr
from tianrt.cli import EXIT_BAD_INPUT, EXIT_RUNTIME, EXIT_USAGE, main


@pytest.fixture
def model(tmp_path):
    g = tr.Graph(name="cli")
    x = g.input("x", (3,))
    s = g.add(tr.bridge.RateEncoder(), g.add(tr.ann.ReLU(), x))
    s = g.add(tr.snn.LIF(beta=1.0, threshold=1.0), g.add(tr.snn.Dense(3, 2, weight=np.eye(2, 3)), s))
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), s))
    return tr.save(g, tmp_path / "m.tnr")


@pytest.fixture
def two_inputs(tmp_path):
    g = tr.Graph(name="two")
    a, b = g.input("a", (2,)), g.input("b", (2,))
    g.output("y", g.add(tr.ann.Add(), a, b))
    return tr.save(g, tmp_path / "two.tnr")


@pytest.fixture
def image_model(tmp_path):
    g = tr.Graph(name="img")
    g.output("y", g.add(tr.ann.ReLU(), g.input("img", (3, 28, 28))))
    return tr.save(g, tmp_path / "img.tnr")


def run(capsys, *argv):
    rc = main(["run", *map(str, argv)])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap.out, cap.err


X = np.array([1.0, 0.5, 0.0], np.float32)


def test_npy_input_for_a_single_input_model(model, tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", x=X)
    rc, out_npy, _ = run(capsys, model, "--input", tmp_path / "x.npy", "--ticks", 8)
    assert rc == 0 and "count: 2 value(s) at ticks [3, 7]" in out_npy
    assert run(capsys, model, "--input", tmp_path / "x.npz", "--ticks", 8)[1] == out_npy


def test_npy_input_for_a_two_input_model_says_to_use_npz(two_inputs, tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros(2))
    rc, _, err = run(capsys, two_inputs, "--input", tmp_path / "a.npy", "--ticks", 1)
    assert rc == EXIT_BAD_INPUT
    assert "a.npy: an .npy file holds one array, but graph 'two' has 2 inputs (a, b); give an .npz" in err


def test_input_npz_with_a_flipped_byte(model, tmp_path, capsys):
    p = tmp_path / "in.npz"
    np.savez(p, x=X)
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("x.npy")
    data[info.header_offset + 30 + len(info.filename) + 128 + 2] ^= 0x01  # inside x's data
    p.write_bytes(bytes(data))
    rc, _, err = run(capsys, model, "--input", p, "--ticks", 2)
    assert rc == EXIT_BAD_INPUT
    assert f"tianrt run: cannot read inputs from {p}: member x.npy: corrupt (BadZipFile: Bad CRC-32" in err


@pytest.mark.parametrize("keep", [0, 10, 60, 200])
def test_truncated_input_npz(model, tmp_path, capsys, keep):
    p = tmp_path / "in.npz"
    np.savez(p, x=X)
    p.write_bytes(p.read_bytes()[:keep])
    rc, _, err = run(capsys, model, "--input", p, "--ticks", 2)
    assert rc == EXIT_BAD_INPUT and f"cannot read inputs from {p}: " in err


def test_output_into_a_missing_directory_is_refused_before_running(model, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=X)
    out = tmp_path / "nope" / "out.npz"
    rc, stdout, err = run(capsys, model, "--input", tmp_path / "in.npz", "--ticks", 2, "--output", out)
    assert rc == EXIT_USAGE and stdout == ""
    assert f"--output {out}: directory {out.parent} does not exist" in err
    assert not out.parent.exists()
    rc, _, err = run(capsys, model, "--input", tmp_path / "in.npz", "--ticks", 2, "--output", tmp_path)
    assert rc == EXIT_USAGE and "is a directory; give a file name such as" in err


def test_output_is_written_to_exactly_the_name_given(model, tmp_path, capsys, monkeypatch):
    np.savez(tmp_path / "in.npz", x=X)
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, model, "--input", "in.npz", "--ticks", 8, "--output", "myout")
    assert rc == 0 and out.strip() == "wrote count to myout"
    assert (tmp_path / "myout").is_file() and not (tmp_path / "myout.npz").exists()
    with np.load(tmp_path / "myout") as z:
        assert z["count__ticks"].tolist() == [3, 7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "m.tnr", "myout"]


def test_model_path_that_is_a_directory(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=X)
    rc, _, err = run(capsys, tmp_path, "--input", tmp_path / "in.npz", "--ticks", 2)
    assert rc == EXIT_BAD_INPUT and f"tianrt run: {tmp_path}: is a directory, not a file" in err
    assert main(["info", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "is a directory, not a file" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_input_fifo_is_refused_without_blocking(model, tmp_path, capsys):
    fifo = tmp_path / "in.npz"
    os.mkfifo(fifo)
    with within(5):
        rc, _, err = run(capsys, model, "--input", fifo, "--ticks", 2)
    assert rc == EXIT_BAD_INPUT and "is a FIFO (named pipe); only regular files are read" in err


def test_input_member_declaring_an_absurd_shape(model, tmp_path, capsys):
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                             "shape": (1 << 20, 1 << 20, 1 << 10)})
    p = tmp_path / "in.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x.npy", f.getvalue())
    with within(5), allocation_cap(4 << 20):
        rc, _, err = run(capsys, model, "--input", p, "--ticks", 2)
    assert rc == EXIT_BAD_INPUT and "member x.npy: declares <f4 [1048576, 1048576, 1024]" in err


@pytest.mark.parametrize("argv,message", [
    (["--ticks", "0"], "argument --ticks: must be between 1 and 10,000,000, got 0"),
    (["--ticks", "2.5"], "argument --ticks: must be a whole number of ticks, got '2.5'"),
    (["--backend", "foo"], "argument --backend: invalid choice: 'foo'"),
])
def test_bad_usage_exits_2(model, tmp_path, capsys, argv, message):
    np.savez(tmp_path / "in.npz", x=X)
    with pytest.raises(SystemExit) as e:
        main(["run", str(model), "--input", str(tmp_path / "in.npz"), *argv])
    assert e.value.code == EXIT_USAGE and message in capsys.readouterr().err


def test_runtime_failures_exit_3(model, tmp_path, capsys, monkeypatch):
    np.savez(tmp_path / "in.npz", x=X)

    class Broken:
        def __init__(self, *a, **k):
            raise tr.BackendError("backend 'numba' is not available in this build of tianrt")
    monkeypatch.setattr("tianrt.runtime.Runtime", Broken)
    rc, _, err = run(capsys, model, "--input", tmp_path / "in.npz", "--ticks", 2)
    assert rc == EXIT_RUNTIME and "backend 'numba' is not available" in err
    monkeypatch.undo()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", disk_full)
    rc, _, err = run(capsys, model, "--input", tmp_path / "in.npz", "--ticks", 2, "--output", tmp_path / "o.npz")
    assert rc == EXIT_RUNTIME and "No space left on device" in err
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "o.npz.tmp").exists()


# -- 6. how axis 0 was read -------------------------------------------------------------------

def test_without_ticks_axis_0_is_time_and_the_message_says_so(image_model, tmp_path, capsys):
    np.savez(tmp_path / "one.npz", img=np.zeros((28, 28), np.float32))
    rc, _, err = run(capsys, image_model, "--input", tmp_path / "one.npz")
    assert rc == EXIT_BAD_INPUT
    assert ("input `img` has shape (28, 28); without --ticks axis 0 is time, so that is 28 tick(s) of shape (28,), "
            "but the input takes (3, 28, 28) (or (batch, 3, 28, 28)) per tick; give an array of shape "
            "(ticks, 3, 28, 28)") in err
    np.savez(tmp_path / "one.npz", img=np.zeros((3, 28, 28), np.float32))
    rc, _, err = run(capsys, image_model, "--input", tmp_path / "one.npz")
    assert rc == EXIT_BAD_INPUT and "to present this one value and hold it, pass --ticks N" in err
    assert run(capsys, image_model, "--input", tmp_path / "one.npz", "--ticks", 1)[0] == 0


def test_with_ticks_a_time_series_is_named_as_one(image_model, tmp_path, capsys):
    np.savez(tmp_path / "clip.npz", img=np.zeros((5, 1, 3, 28, 28), np.float32))
    rc, _, err = run(capsys, image_model, "--input", tmp_path / "clip.npz", "--ticks", 2)
    assert rc == EXIT_BAD_INPUT
    assert ("with --ticks it is one value held for 2 ticks, so it must be (3, 28, 28) or (batch, 3, 28, 28); "
            "it looks like 5 ticks of (1, 3, 28, 28): drop --ticks") in err
    assert run(capsys, image_model, "--input", tmp_path / "clip.npz")[0] == 0


def test_complex_and_scalar_inputs(model, tmp_path, capsys):
    np.savez(tmp_path / "c.npz", x=np.ones(3, np.complex64))
    rc, _, err = run(capsys, model, "--input", tmp_path / "c.npz", "--ticks", 1)
    assert rc == EXIT_BAD_INPUT and "holds complex numbers" in err
    np.savez(tmp_path / "s.npz", x=np.float32(1))
    rc, _, err = run(capsys, model, "--input", tmp_path / "s.npz")
    assert rc == EXIT_BAD_INPUT and "without --ticks an input needs a leading time axis" in err


# -- the fuzz -----------------------------------------------------------------------------------

def _mutants(rng, n):
    """Valid .npz/.npy files with random names/dtypes/shapes, then byte-level damage."""
    dtypes = [np.float32, np.float64, np.int8, np.uint16, np.bool_, np.complex64, np.int64]
    for i in range(n):
        f = io.BytesIO()
        shape = tuple(int(d) for d in rng.integers(0, 5, rng.integers(0, 4)))
        if rng.random() < 0.5:
            shape = (3,) if rng.random() < 0.5 else (int(rng.integers(1, 6)), 3)
        dt = dtypes[int(rng.integers(0, len(dtypes)))]
        scale = 1e30 if np.dtype(dt).kind in "fc" and rng.random() < 0.3 else 3
        a = (rng.standard_normal(shape) * scale).astype(dt)
        name = str(rng.choice(["x", "x", "y", "__header__"]))
        if i % 3 == 0:
            np.save(f, a)
        elif i % 3 == 1:
            np.savez_compressed(f, **{name: a})
        else:
            np.savez(f, **{name: a})
        b = bytearray(f.getvalue())
        for _ in range(int(rng.integers(0, 3))):
            op = rng.integers(0, 3)
            if op == 0 and b:
                b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
            elif op == 1:
                b = b[: int(rng.integers(0, len(b) + 1))]
            else:
                j = int(rng.integers(0, len(b) + 1))
                b[j:j] = bytes(rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8))
        yield bytes(b)


def test_fuzz_run_inputs(model, tmp_path, capsys):
    rng = np.random.default_rng(5)
    p, out = tmp_path / "in.bin", tmp_path / "out.npz"
    codes = {}
    with allocation_cap(16 << 20):
        for i, blob in enumerate(_mutants(rng, 300)):
            p.write_bytes(blob)
            argv = ["--ticks", "2"] if i % 2 else []
            with within(10):
                rc, _, err = run(capsys, model, "--input", p, *argv, "--output", out)
            codes[rc] = codes.get(rc, 0) + 1
            assert rc in (0, EXIT_BAD_INPUT), (i, rc, err)
            if rc == EXIT_BAD_INPUT:
                assert err.startswith("tianrt run: ") and str(p) in err, (i, err)
                assert not out.exists(), i          # a refused run writes nothing
            else:
                out.unlink()
            assert p.read_bytes() == blob
    assert codes.get(0, 0) > 10 and codes.get(EXIT_BAD_INPUT, 0) > 150, codes


def test_empty_batch_and_empty_time_axis_are_refused(model, tmp_path, capsys):
    np.savez(tmp_path / "b0.npz", x=np.zeros((4, 0, 3), np.float32))
    rc, _, err = run(capsys, model, "--input", tmp_path / "b0.npz")
    assert rc == EXIT_BAD_INPUT and "has shape (4, 0, 3): a batch of 0 samples" in err
    np.savez(tmp_path / "t0.npz", x=np.zeros((0, 3), np.float32))
    rc, _, err = run(capsys, model, "--input", tmp_path / "t0.npz")
    assert rc == EXIT_BAD_INPUT and "0 ticks along the time axis (axis 0), nothing to run" in err



@settings(max_examples=150, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(0, 4), max_size=4).map(tuple), ticks=st.sampled_from([None, 1, 3]))
def test_fit_inputs_accepts_exactly_what_the_runtime_runs(shape, ticks):
    """What the command line lets through, the runtime runs; what it refuses names the file."""
    from tianrt.inputfile import fit_inputs

    g = tr.Graph(name="fit")
    g.output("y", g.add(tr.ann.ReLU(), g.input("x", (2, 3))))
    a = np.ones(shape + (2, 3) if len(shape) <= 2 else shape, np.float32)
    try:
        inputs = fit_inputs(g, {"x": a}, ticks, "in.npz")
    except tr.InputError as exc:
        assert str(exc).startswith("in.npz: input `x` has shape"), exc
    else:
        out = tr.Runtime(g).run(inputs, ticks=ticks)
        assert len(out.ticks["y"]) >= 1


@pytest.mark.parametrize("command", [["convert", "--calibration", "cal.npz"], ["quantize", "--calibration", "cal.npz"],
                                     ["compile"]])
def test_output_folders_are_checked_before_any_work(model, tmp_path, capsys, command):
    out = tmp_path / "missing" / "out"
    rc = main([command[0], str(model), *command[1:], "-o", str(out)])
    assert rc == EXIT_USAGE and f"-o {out}: directory {out.parent} does not exist" in capsys.readouterr().err
    assert not out.parent.exists()
