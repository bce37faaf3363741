#!/usr/bin/env python3
"""Set up a virtual environment and run the demo or the tests: the README's two commands.

    python3 dev.py demo     # create .venv, install tianrt, run the main demo
    python3 dev.py test     # create .venv, install tianrt with test extras, run pytest
    python3 dev.py test-aarch64   # the aarch64 install test under qemu (tools/aarch64/run.py;
                                  # not part of `test`: 2-6 min, needs Debian's apt-get and qemu)

Needs only Python >= 3.10 with pip and venv. Extra arguments are passed on
(`python3 dev.py test -k lif`, `python3 dev.py demo digits`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".tianrt-installed"
DEFAULT_DEMO = "bicycle"


def _run(cmd: list[str]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def ensure_env() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"tianrt needs Python >= 3.10, this is {sys.version.split()[0]}")
    if not PY.exists():
        _run([sys.executable, "-m", "venv", VENV])
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()
                          + (ROOT / "setup.py").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    _run([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    _run([PY, "-m", "pip", "install", "-q", "-e", ".[test,demos]"])
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup", "test-aarch64"):
        print(__doc__)
        return 2
    ensure_env()
    what, rest = argv[0], argv[1:]
    if what == "setup":
        return 0
    if what == "test-aarch64":
        cmd = [PY, ROOT / "tools" / "aarch64" / "run.py", *rest]
    elif what == "demo":
        cmd = [BIN / "tianrt", "demo", *(rest or [DEFAULT_DEMO])]
    else:
        cmd = [PY, "-m", "pytest", "-q", *rest]
    return subprocess.run([str(c) for c in cmd], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
