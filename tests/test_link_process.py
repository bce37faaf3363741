"""The emulator as a separate process: `python -m tianrt.firmware_sim` on a pty and on a
socket, ChipLink and `tianrt chip` talking to it, a firmware reset by signal, and the
emulator process started by port="auto" dying mid-stream. Every spawned process is
stopped in teardown."""
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tianrt.chip import protocol as P
from tianrt.chip.link import ChipLink, LinkError, LinkWarning
from tianrt.cli import main as cli_main

from link_engine_double import make_image
from test_link_faults import A, session

TESTS = str(Path(__file__).resolve().parent)
ENGINE = ("--engine", "link_engine_double:FakeEngine")


@pytest.fixture(autouse=True)
def engine_double_importable(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))


class Emulator:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "tianrt.firmware_sim", *ENGINE, *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=os.environ.copy())
        self.where = self._line(self.proc.stdout)
        self.log = []

    def _line(self, stream, timeout=30.0) -> str:
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the emulator did not answer"
            if select.select([stream], [], [], 0.2)[0]:
                line += os.read(stream.fileno(), 1)
        return line.decode().strip()

    def wait_log(self, text: str) -> None:
        while not any(text in line for line in self.log):
            self.log.append(self._line(self.proc.stderr))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def emulator():
    made = []

    def start(*args):
        e = Emulator(*args)
        made.append(e)
        return e

    yield start
    for e in made:
        e.stop()


def test_pty_session_and_firmware_reset_by_signal(emulator):
    emu = emulator("--pty")
    assert emu.where.startswith("/dev/") and os.path.exists(emu.where)
    emu.wait_log("boot #1")

    def watchdog_reset():
        emu.proc.send_signal(signal.SIGUSR1)
        emu.wait_log("boot #2")

    with ChipLink(emu.where, timeout=0.3, retries=5) as link:
        assert link.board["boot"] == 1
        with pytest.warns(LinkWarning, match="replayed 2 acknowledged commands"):
            session(link, between=watchdog_reset)
        assert link.board["boot"] == 2 and link.stats["reconnects"] == 1
    emu.stop()
    assert emu.proc.returncode == 0   # SIGTERM is a clean shutdown


def test_long_command_gets_busy_answers_not_a_timeout(emulator):
    emu = emulator("--pty", "--quiet")
    with ChipLink(emu.where, timeout=0.2, retries=1, busy_timeout=30) as link:
        link.upload_image(make_image(sleep=0.15, window=1))
        link.push_input("x", A)
        link.run(6)          # ~0.9 s: longer than (retries + 1) x timeout
        # the first silence is a timeout (the host cannot know yet), then BUSY answers
        assert link.stats["busy"] >= 2 and link.stats["timeouts"] >= 1
        ticks, vals = link.pull_outputs()["y"]
        assert ticks.tolist() == [1, 2, 3, 4, 5, 6]           # executed once, not per retry
        assert link.counters()["rounds"] == 6
    with ChipLink(emu.where, timeout=0.2, retries=1, busy_timeout=0.3) as link:
        with pytest.raises(LinkError, match=r"RUN still executing after 0.3 s \(busy_timeout\)"):
            link.run(8)


def test_socket_server_and_cli(emulator, tmp_path, capsys):
    emu = emulator("--socket", "0", "--quiet")
    assert emu.where.startswith("socket://127.0.0.1:")
    img = tmp_path / "fake.img"
    img.write_bytes(make_image(name="cli", shape=(2,), gain=1, window=2))
    np.savez(tmp_path / "in.npz", x=np.array([3, -1], np.int32))
    port = ["--port", emu.where, "--timeout", "0.5"]
    assert cli_main(["chip", "load", str(img), *port]) == 0
    assert "loaded" in capsys.readouterr().out
    assert cli_main(["chip", "info", *port]) == 0
    out = capsys.readouterr().out
    assert "image: cli, 4 cores" in out and "input  x: shape (2,)" in out
    assert cli_main(["chip", "run", "--input", str(tmp_path / "in.npz"), "--ticks", "4",
                     "--output", str(tmp_path / "out.npz"), *port]) == 0
    with np.load(tmp_path / "out.npz") as z:
        assert z["y__ticks"].tolist() == [2, 4]
        assert z["y"][:, 0].tolist() == [[6, -2], [12, -4]]
    assert "rounds=4" in capsys.readouterr().out
    # without --ticks: one slice per tick along the first axis
    np.savez(tmp_path / "clip.npz", x=np.array([[1, 1], [2, 2], [3, 3], [4, 4]], np.int32))
    assert cli_main(["chip", "run", "--input", str(tmp_path / "clip.npz"),
                     "--output", str(tmp_path / "out2.npz"), *port]) == 0
    with np.load(tmp_path / "out2.npz") as z:
        assert z["y__ticks"].tolist() == [2, 4]
        assert z["y"][:, 0].tolist() == [[3, 3], [10, 10]]
    capsys.readouterr()
    # refused input: the CLI reports the board's error code and exits 1
    np.savez(tmp_path / "bad.npz", x=np.zeros(5, np.int32))
    assert cli_main(["chip", "run", "--input", str(tmp_path / "bad.npz"), "--ticks", "1", *port]) == 1
    assert "BAD_INPUT" in capsys.readouterr().err


def test_auto_port_respawns_a_dead_emulator_and_cleans_up():
    link = ChipLink("auto", spawn_args=ENGINE, timeout=0.3, retries=5)
    try:
        first = link._proc
        assert first is not None and first.poll() is None

        def crash():
            first.kill()
            first.wait(5)

        with pytest.warns(LinkWarning, match="reconnected, reloaded the image"):
            session(link, between=crash)
        assert link._proc is not first and link._proc.poll() is None
        second = link._proc
    finally:
        link.close()
    assert second.poll() is not None    # close() stopped the emulator it started


def test_emulator_rejects_a_bad_spec_and_engine(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tianrt.firmware_sim", "--engine", "nope:Engine"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot load engine 'nope:Engine'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tianrt.firmware_sim", *ENGINE, "--mesh", "3by4"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "expected ROWSxCOLS" in r.stderr


def test_emulator_survives_random_bytes_over_the_pty(emulator):
    import serial

    emu = emulator("--pty", "--quiet")
    rng = np.random.default_rng(11)
    ser = serial.serial_for_url(emu.where, timeout=0.2)
    try:
        good = P.encode_frame(P.REQUEST, P.INFO, 1)
        for i in range(2000):
            if i % 2:
                ser.write(rng.integers(0, 256, int(rng.integers(1, 120)), dtype=np.uint8).tobytes())
            else:
                wire = bytearray(P.encode_frame(P.REQUEST, int(rng.integers(0, 256)), i,
                                                rng.integers(0, 256, 20, dtype=np.uint8).tobytes()))
                wire[int(rng.integers(1, len(wire) - 1))] ^= int(rng.integers(0, 2)) << 3
                ser.write(bytes(wire).replace(bytes([P.REBOOT]), b"\x01"))
            if i % 100 == 0:
                ser.reset_input_buffer()
        ser.write(good)
    finally:
        ser.close()
    with ChipLink(emu.where, timeout=0.5) as link:     # still serving, state intact
        link.upload_image(make_image(window=1))
        link.push_input("x", A)
        link.run(1)
        assert link.pull_outputs()["y"][1][0, 0].tolist() == (2 * A).tolist()
        assert link.counters()["link_bad_frames"] > 500
    assert emu.proc.poll() is None


def test_emulator_exits_with_its_parent():
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen([sys.executable, '-m', 'tianrt.firmware_sim', '--pty', '--quiet',"
            " '--exit-with-parent', '--engine', 'link_engine_double:FakeEngine'],"
            " stdout=subprocess.PIPE)\n"
            "p.stdout.readline()\n"
            "print(p.pid, flush=True)\n")      # exits without stopping the emulator
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.split()[0])

    def alive():
        try:
            with open(f"/proc/{pid}/status") as f:
                return "\nState:\tZ" not in f.read()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the orphaned emulator kept running")


def test_a_new_socket_session_keeps_the_image_not_the_outputs(emulator):
    emu = emulator("--socket", "0", "--quiet")
    with ChipLink(emu.where, timeout=1.0) as link:
        link.upload_image(make_image(name="kept", window=1))
        link.push_input("x", A)
        link.run(2)
    with ChipLink(emu.where, timeout=1.0) as link:    # a new host: the image stays, as flashed
        assert link.board["image"]["name"] == "kept"
        assert link.pull_outputs() == {}             # the previous session's outputs are gone
        link.push_input("x", A)
        link.run(1)
        ticks, vals = link.pull_outputs()["y"]
    assert ticks.tolist() == [1] and vals[-1, 0].tolist() == (2 * A).tolist()


def test_cli_names_a_port_it_cannot_open(capsys):
    assert cli_main(["chip", "info", "--port", "/dev/no-such-tty"]) == 1
    assert "cannot open '/dev/no-such-tty'" in capsys.readouterr().err
