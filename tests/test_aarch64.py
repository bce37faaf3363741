"""The aarch64 install test (tools/aarch64/run.py) under qemu: slow (2-6 min) and needs Debian's
apt-get, dpkg and qemu-user-static, so it runs only when asked:

    TIANRT_TEST_AARCH64=1 python3 dev.py test tests/test_aarch64.py
    python3 dev.py test-aarch64            # the same script, directly

The fast part below (the smoke's checks, natively) always runs."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "aarch64"))


def test_smoke_checks_pass_natively():
    import smoke

    vals = smoke.parity_values()
    assert {"float/readme/y", "float/chain/y", "int/tiny/y"} <= set(vals)
    assert sum(map(sum, vals["int/tiny/y"])) > 0  # the integer graph is not silent
    smoke.readme_example("numba")


@pytest.mark.skipif(os.environ.get("TIANRT_TEST_AARCH64") != "1",
                    reason="slow qemu run: set TIANRT_TEST_AARCH64=1 (or run python3 dev.py test-aarch64)")
def test_aarch64_install_under_qemu():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "aarch64" / "run.py")], capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "aarch64: all checks passed" in r.stdout
