"""`tianrt serve` (docs/deploy.md): a stream as a systemd service — SIGTERM stops it cleanly with
a last checkpoint and the final report (exit 0), a restart resumes from the checkpoint, a
checkpoint of another model is ignored, and Type=notify gets READY=1."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import tianrt as tr
from tianrt.cli import main
from tianrt.deploy import service

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "demos" / "bicycle" / "data" / "balance_mlp.tnr")


def obs_file(tmp_path, n=400):
    path = tmp_path / "obs.npy"
    np.save(path, (np.random.default_rng(0).standard_normal((n, 6)) * 0.1).astype(np.float32))
    return str(path)


def test_serve_runs_checkpoints_and_resumes(tmp_path, capsys):
    obs, ck = obs_file(tmp_path), str(tmp_path / "state.npz")
    args = ["serve", MODEL, "--array", f"obs={obs}", "--clock", "sim", "--checkpoint", ck, "--backend", "reference"]
    assert main(args + ["--ticks", "150"]) == 0
    out = capsys.readouterr().out
    assert "starting fresh" in out and "stopped (ticks) at runtime tick 150" in out and "torque" in out
    with np.load(ck) as z:
        assert int(z["__tick__"]) == 150 and service.MODEL_KEY in z.files
    assert main(args + ["--ticks", "50", "--report", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "resumed from checkpoint" in out and "at runtime tick 150" in out
    assert "stopped (ticks) at runtime tick 200" in out and (tmp_path / "r.json").exists()
    # the resumed state equals an uninterrupted run's
    g = tr.load(MODEL)
    rt = tr.Runtime(g, backend="reference")
    x = np.load(obs)
    for i in range(200):
        rt.step({"obs": x[i % 150] if i < 150 else x[i - 150]})
    with np.load(ck) as z:
        assert np.allclose(z["dense3/__value__"], rt.state()["dense3/__value__"])


def test_serve_ignores_another_models_checkpoint(tmp_path, capsys):
    ck = tmp_path / "state.npz"
    np.savez(ck, **{service.MODEL_KEY: np.asarray("0" * 64), "__tick__": np.asarray(7)})
    assert main(["serve", MODEL, "--array", f"obs={obs_file(tmp_path)}", "--clock", "sim", "--checkpoint", str(ck),
                 "--ticks", "10"]) == 0
    assert "belongs to another model file: starting fresh" in capsys.readouterr().out
    ck.write_bytes(b"garbage")
    assert main(["serve", MODEL, "--array", f"obs={obs_file(tmp_path)}", "--clock", "sim", "--checkpoint", str(ck),
                 "--ticks", "10"]) == 0
    assert "could not be loaded" in capsys.readouterr().out
    assert main(["serve", MODEL, "--array", "obs=x.npy", "--checkpoint-every", "0"]) == 2


def test_sigterm_stops_cleanly_with_a_final_checkpoint(tmp_path):
    obs, ck = obs_file(tmp_path, 20000), str(tmp_path / "state.npz")
    sock_path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "tianrt.cli", "serve", MODEL, "--array", f"obs={obs}",
                          "--checkpoint", ck, "--backend", "reference", "--log-every", "0.3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = srv.recv(4096).decode()
        assert ready.startswith("READY=1")
        time.sleep(0.8)  # some wall-clock ticks, a status line
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        stopping = srv.recv(4096).decode()
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()
    assert p.returncode == 0, err[-2000:]
    assert stopping == "STOPPING=1"
    assert "SIGTERM received" in out and "stopped by SIGTERM" in out and "stopped: interrupted" in out
    assert "ticks (" in out  # a status line was logged
    with np.load(ck) as z:
        assert int(z["__tick__"]) > 10
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]  # the atomic write left no temp file


def test_the_systemd_unit_runs_tianrt_serve_with_valid_options():
    import configparser
    import shlex

    from tianrt.cli import build_parser

    text = (ROOT / "deploy" / "tianrt.service").read_text()
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(text.replace("\\\n", " "))
    svc = cp["Service"]
    assert svc["Type"] == "notify" and svc["KillSignal"] == "SIGTERM" and svc["Restart"] == "on-failure"
    argv = shlex.split(svc["ExecStart"])
    assert argv[0].endswith("/tianrt") and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])  # every option exists and parses
    assert args.checkpoint and args.report and args.serial and args.serial_out
    assert cp["Install"]["WantedBy"] == "multi-user.target"
