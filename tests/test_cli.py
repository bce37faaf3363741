"""The tianrt command line: --version, info, run, demo, and --help on every command."""
import subprocess
import sys

import numpy as np
import pytest

import tianrt as tr
from tianrt.cli import build_parser, main


@pytest.fixture
def model(tmp_path):
    g = tr.Graph(name="cli")
    x = g.input("x", (3,))
    s = g.add(tr.bridge.RateEncoder(), g.add(tr.ann.ReLU(), x))
    s = g.add(tr.snn.LIF(beta=1.0, threshold=1.0), g.add(tr.snn.Dense(3, 2, weight=np.eye(2, 3)), s))
    g.output("count", g.add(tr.bridge.SpikeCount(window=4), s))
    path = tmp_path / "m.tnr"
    tr.save(g, path)
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("tianrt ")


def test_info_prints_the_summary(model, capsys):
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "graph 'cli'" in out and "snn.LIF" in out and "count <- count1" in out


def test_info_on_a_bad_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.tnr"
    bad.write_bytes(b"nope")
    assert main(["info", str(bad)]) == 1
    assert "bad.tnr: not a tianrt model file" in capsys.readouterr().err


def test_run_prints_and_saves(model, tmp_path, capsys):
    inp = tmp_path / "in.npz"
    np.savez(inp, x=np.array([1.0, 0.5, 0.0], np.float32))
    assert main(["run", str(model), "--input", str(inp), "--ticks", "8"]) == 0
    out = capsys.readouterr().out
    assert "count: 2 value(s) at ticks [3, 7]" in out
    res = tmp_path / "out.npz"
    assert main(["run", str(model), "--input", str(inp), "--ticks", "8", "--output", str(res)]) == 0
    with np.load(res) as z:
        assert z["count"].tolist() == [[4, 2], [4, 2]]
        assert z["count__ticks"].tolist() == [3, 7]


def test_run_with_a_time_axis(model, tmp_path, capsys):
    inp = tmp_path / "clip.npz"
    np.savez(inp, x=np.ones((4, 3), np.float32))
    assert main(["run", str(model), "--input", str(inp)]) == 0
    assert "count: 1 value(s) at ticks [3]" in capsys.readouterr().out


def test_run_with_a_wrong_input_name(model, tmp_path, capsys):
    inp = tmp_path / "in.npz"
    np.savez(inp, camera=np.zeros(3))
    assert main(["run", str(model), "--input", str(inp), "--ticks", "2"]) == 1
    assert "no input 'camera'" in capsys.readouterr().err


def test_demo_lists_demos(capsys):
    assert main(["demo"]) == 0
    assert "hybrid" in capsys.readouterr().out


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"info", "run", "demo"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: tianrt" in capsys.readouterr().out


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-m", "tianrt.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("tianrt ")
