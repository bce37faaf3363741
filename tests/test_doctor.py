"""`tianrt doctor` (docs/deploy.md): the machine report with and without a model, on the numba
and on the numpy path (a process where numba does not import), table and JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tianrt.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "demos" / "bicycle" / "data" / "balance_mlp.tnr")


def test_doctor_without_model_table_and_json(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for word in ("machine", "software", "numba", "cache"):
        assert out.startswith(word) or f"\n{word}" in out
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"machine", "numba", "cache"}
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["versions"]["numpy"]
    assert doc["numba"]["works"] and doc["numba"]["auto_backend"] == "numba"
    assert isinstance(doc["cache"]["portable"], bool)


def test_doctor_profiles_a_model_on_both_backends(capsys):
    assert main(["doctor", MODEL, "--json", "--ticks", "60", "--factor", "10"]) == 0
    doc = json.loads(capsys.readouterr().out)
    prof = doc["profile"]
    assert prof["model"]["tick_hz"] == 100 and prof["model"]["inputs"]["obs"]["rate_hz"] == 100
    assert set(prof["backends"]) == {"reference", "numba"}
    for name, b in prof["backends"].items():
        assert "error" not in b, b
        assert b["backend"] == name and b["ticks"] + b["warmup_ticks"] == 60
        assert 0 < b["tick_p50_ms"] <= b["tick_p99_ms"] <= b["tick_max_ms"]
        assert b["rss_mb"] > 10 and b["start_s"] >= b["import_s"]
        t = prof["targets"][name]
        assert set(t) == {"this machine", "pi4", "pi5", "measured"}
        assert t["pi4"]["factor"] == 12 and t["pi5"]["factor"] == 4 and t["measured"]["factor"] == 10
        assert t["pi4"]["load"] == pytest.approx(b["load"] * 12, rel=1e-3, abs=1e-4)
        assert t["pi4"]["keeps_up"] in ("yes", "tight", "no") and "obs" in t["pi4"]["inputs"]
    assert main(["doctor", MODEL, "--ticks", "30", "--backend", "reference"]) == 0
    out = capsys.readouterr().out
    assert "Raspberry Pi 4" in out and "keeps up" in out and "tick p99 ms" in out


def test_doctor_usage_errors(tmp_path, capsys):
    assert main(["doctor", MODEL, "--factor", "0"]) == 2
    assert main(["doctor", str(tmp_path / "missing.tnr")]) in (1, 3)
    bad = tmp_path / "bad.tnr"
    bad.write_bytes(b"not a model")
    assert main(["doctor", str(bad)]) == 1


def test_doctor_on_the_numpy_path():
    """Where numba does not import (a 32-bit ARM OS), doctor says so and profiles the reference."""
    code = ("import sys\nsys.modules['numba'] = None\nfrom tianrt.cli import main\n"
            f"sys.exit(main(['doctor', {MODEL!r}, '--json', '--ticks', '30']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert not doc["numba"]["works"] and doc["numba"]["auto_backend"] == "reference"
    assert list(doc["profile"]["backends"]) == ["reference"]


def test_verdicts_scale_cpu_load_and_tick_p99():
    from tianrt.deploy.profile import verdict

    m = {"load": 0.03, "tick_p99_ms": 0.5, "start_s": 0.5,
         "inputs": {"cam": {"period_ticks": 33, "tick_p99_ms": 2.0}}}
    v = verdict(m, dt=0.001, factor=12)
    assert v["load"] == 0.36 and v["tick_p99_ms"] == 6.0 and v["start_s"] == 6.0
    assert v["keeps_up"] == "tight"  # load fits with headroom, but a tick overruns its 1 ms period
    assert v["inputs"]["cam"] == {"tick_p99_ms": 24.0, "period_ms": 33.0, "met": True}
    assert verdict(m, dt=0.01, factor=12)["keeps_up"] == "yes"
    assert verdict(m, dt=0.01, factor=40)["keeps_up"] == "no"  # 1.2 cores: falls behind
    assert verdict(m, dt=0.01, factor=20)["keeps_up"] == "tight"  # 60 % of a core: no headroom
    assert not verdict(m, dt=0.001, factor=20)["inputs"]["cam"]["met"]
