"""A local emulated board for ``ChipLink(port="auto")``: starts ``python -m
tianrt.firmware_sim --pty`` as a child process, reads the pty path it prints, and stops it."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time


def spawn(spawn_args=(), connect_timeout: float = 60.0):
    """(process, pty path) of a freshly started emulator; raises TimeoutError (with the
    command and exit code) when it prints no path within ``connect_timeout`` seconds."""
    cmd = [sys.executable, "-m", "tianrt.firmware_sim", "--pty", "--exit-with-parent", "--quiet", *spawn_args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    deadline = time.monotonic() + connect_timeout
    line = b""
    fd = proc.stdout.fileno()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            stop(proc)
            raise TimeoutError(f"`{' '.join(cmd)}` did not print its pty path within "
                               f"{connect_timeout:.0f} s (exit code {proc.returncode})")
        if select.select([fd], [], [], min(left, 0.5))[0]:
            b = os.read(fd, 1)
            if b:
                line += b
    return proc, line.decode().strip()


def stop(proc) -> None:
    """Terminate (then kill) the emulator process and close its pipe."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdout:
        proc.stdout.close()
