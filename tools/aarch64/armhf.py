#!/usr/bin/env python3
"""The 32-bit ARM story, checked (docs/deploy.md §6): tianrt on Debian 12's armhf Python 3.11
with Debian's armhf numpy (no numba, no OpenCV: neither has 32-bit ARM wheels), under
``qemu-arm-static -cpu cortex-a7`` (a Pi 2; a Pi 3/4 on a 32-bit OS runs the same code).

    python3 tools/aarch64/armhf.py          # or: python3 dev.py test-aarch64 --armhf

Builds (cached under .cache/armhf) a sysroot of python3.11, python3-numpy, python3-serial and
python3-tqdm from Debian's armhf packages, installs tianrt's wheel without dependencies, and
runs tools/aarch64/smoke.py --mode numpy: the README example, backend="auto" picking the
reference, the numba backend saying why not, the chip emulator on plain-Python kernels,
doctor; the reference's outputs are compared with this machine's numba backend.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402  (tools/aarch64/run.py)

TRIPLE = "arm-linux-gnueabihf"
EXTRA = ["libblas3", "liblapack3", "libgfortran5", "python3-numpy"]
ARCH_ALL = ["python3-serial", "python3-tqdm"]


def link_alternatives(sysroot: Path) -> None:
    """dpkg -x runs no maintainer scripts: make the BLAS/LAPACK links update-alternatives would."""
    lib = sysroot / "usr" / "lib" / TRIPLE
    for name, sub in (("libblas.so.3", "blas"), ("liblapack.so.3", "lapack")):
        if not (lib / name).exists() and (lib / sub / name).exists():
            (lib / name).symlink_to(f"{sub}/{name}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="cortex-a7", help="qemu CPU (cortex-a7 = Pi 2, cortex-a15)")
    ap.add_argument("--cache", default=os.environ.get("TIANRT_ARMHF_CACHE", str(run.ROOT / ".cache" / "armhf")))
    a = ap.parse_args(argv)
    t_all = time.perf_counter()
    cache = Path(a.cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    qemu = run.find_qemu(("qemu-arm-static", "qemu-arm"))
    sysroot = run.build_sysroot(cache, "armhf", tuple(run.DEBS + EXTRA), tuple(ARCH_ALL))
    link_alternatives(sysroot)
    app = run.build_app(cache)
    t_setup = time.perf_counter() - t_all
    with tempfile.TemporaryDirectory(prefix="tianrt-armhf-") as tmp:
        run.log(f"smoke on the numpy path (qemu-arm -cpu {a.cpu})")
        res = run.run_smoke(qemu, a.cpu, sysroot, [app], Path(tmp), "numpy", Path(tmp), mode="numpy")
    problems = list(res["problems"]) + run.compare_with_host(res, "armhf reference")
    print(f"machine (as the emulated Python sees it): {res['machine']}")
    print(f"time: setup {t_setup:.1f} s, smoke {res['wall_s']} s, total {time.perf_counter() - t_all:.1f} s")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("armhf: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
