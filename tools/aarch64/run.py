#!/usr/bin/env python3
"""The aarch64 install test (issue 19): tianrt installed from its wheel on a 64-bit ARM
Python (Raspberry Pi OS bookworm's: Debian 12, Python 3.11) and run under qemu user mode.

    python3 dev.py test-aarch64              # or: .venv/bin/python tools/aarch64/run.py
    python3 tools/aarch64/run.py --cpu cortex-a76 --keep-cache

What it does, each step cached under ``.cache/aarch64/`` (or ``$TIANRT_AARCH64_CACHE``):

1. ``qemu-aarch64-static`` (Debian's ``qemu-user-static``; installed with apt-get when
   missing and this is root).
2. A sysroot of Debian arm64 packages: ``dpkg --add-architecture arm64``, ``apt-get
   download`` of python3.11 and the libraries it needs, ``dpkg -x`` into one folder.
3. A target site of aarch64 wheels: ``pip install --target … --platform
   manylinux_2_28_aarch64 --python-version 3.11 --only-binary=:all:`` of the project's
   wheel and its dependencies (numpy, numba, llvmlite, OpenCV headless, pyserial, tqdm).
   The wheel itself is rebuilt on every run from this tree (pure Python, a few seconds).
4. ``tools/aarch64/smoke.py`` twice under ``qemu-aarch64-static -cpu cortex-a72`` with
   ``NUMBA_CPU_NAME=generic`` (LLVM under qemu would see the x86 host's CPU) and a fresh
   numba cache: the first run compiles, the second must load every kernel from the cache.
   The smoke prints its results as JSON; the host then runs the same checks natively and
   compares the aarch64 numbers with x86's (integer mode bit for bit, float to 1e-5).
5. Then tools/aarch64/armhf.py (unless ``--no-armhf``): the 32-bit ARM story on Debian's
   armhf Python 3.11 and numpy 1.24, without numba, under ``qemu-arm-static``.

Emulation checks correctness only, never speed. Exit status 0 when every check passed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY_VER = "3.11"
PLATFORM = "manylinux_2_28_aarch64"
# python3.11 and the shared libraries it (and the wheels) load; arch-all packages omitted
DEBS = ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11",
        "libc6", "libgcc-s1", "libstdc++6", "libexpat1", "zlib1g", "libssl3", "libffi8",
        "libbz2-1.0", "liblzma5", "libsqlite3-0", "libncursesw6", "libtinfo6", "libreadline8",
        "libuuid1", "libdb5.3", "libgdbm6", "libnsl2", "libtirpc3", "libcrypt1", "libgssapi-krb5-2",
        "libkrb5-3", "libk5crypto3", "libkrb5support0", "libcom-err2", "libkeyutils1", "libgomp1",
        "libzstd1"]
EXTRA_WHEELS: list[str] = []  # the smoke needs nothing beyond tianrt's own dependencies


def log(msg: str) -> None:
    print(f"[aarch64] {msg}", flush=True)


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def find_qemu(names=("qemu-aarch64-static", "qemu-aarch64")) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing qemu-user-static (apt-get)")
        sh(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL)
        sh(["apt-get", "install", "-y", "-qq", "qemu-user-static"], stdout=subprocess.DEVNULL)
        path = shutil.which(names[0])
        if path:
            return path
    sys.exit(f"{names[0]} not found: install Debian's qemu-user-static (as root: "
             "apt-get install qemu-user-static)")


def build_sysroot(cache: Path, arch: str = "arm64", debs_wanted=tuple(DEBS), arch_all=()) -> Path:
    """Debian packages of ``arch`` (and the architecture-independent ``arch_all``) unpacked into
    ``cache/sysroot``; rebuilt when the package list changes."""
    sysroot = cache / "sysroot"
    want = hashlib.sha256(" ".join([arch, *debs_wanted, *arch_all]).encode()).hexdigest()
    stamp = sysroot / ".tianrt-sysroot"
    if stamp.exists() and stamp.read_text() == want:
        log(f"sysroot: cached ({sysroot})")
        return sysroot
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        sys.exit(f"building the {arch} sysroot needs Debian's apt-get and dpkg")
    archs = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout
    need_update = arch not in archs.split()
    if need_update:
        if os.geteuid() != 0:
            sys.exit(f"run as root once (dpkg --add-architecture {arch} && apt-get update), or build the "
                     "sysroot on a machine where that was done")
        log(f"dpkg --add-architecture {arch}")
        sh(["dpkg", "--add-architecture", arch])
    pol = subprocess.run(["apt-cache", "policy", f"python3.11:{arch}"], capture_output=True, text=True).stdout
    if need_update or "Candidate: (none)" in pol or not pol.strip():
        log("apt-get update")
        sh(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL)
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    log(f"apt-get download {len(debs_wanted) + len(arch_all)} {arch} packages")
    # as root apt would hand the download to its sandbox user, who cannot write into this folder
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    sh(["apt-get", "download", "-qq", *sandbox, *[f"{d}:{arch}" for d in debs_wanted], *arch_all], cwd=debs,
       stdout=subprocess.DEVNULL)
    if sysroot.exists():
        shutil.rmtree(sysroot)
    sysroot.mkdir(parents=True)
    for deb in sorted([*debs.glob(f"*_{arch}.deb"), *debs.glob("*_all.deb")]):
        sh(["dpkg", "-x", deb, sysroot])
    stamp.write_text(want)
    log(f"sysroot: built ({sysroot})")
    return sysroot


def project_deps() -> list[str]:
    """tianrt's dependencies as pip requirement strings (from pyproject.toml)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        sys.exit("tools/aarch64/run.py needs Python >= 3.11 (tomllib)")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def pip_target(args: list, target: Path) -> None:
    sh([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", target,
        "--platform", PLATFORM, "--python-version", PY_VER, "--implementation", "cp",
        "--only-binary=:all:", *args])


def build_site(cache: Path) -> tuple[Path, Path]:
    """(dependency site, tianrt site). The dependencies are cached by requirement list; tianrt is
    rebuilt from this tree's wheel each run."""
    deps = project_deps() + EXTRA_WHEELS
    key = hashlib.sha256(json.dumps([deps, PLATFORM, PY_VER]).encode()).hexdigest()[:16]
    site = cache / f"site-{key}"
    if (site / ".tianrt-site").exists():
        log(f"target site: cached ({site.name})")
    else:
        for old in cache.glob("site-*"):
            shutil.rmtree(old)
        log(f"pip install --target {site.name} --platform {PLATFORM}: {', '.join(deps)}")
        pip_target(deps, site)
        (site / ".tianrt-site").write_text("\n".join(deps))
    return site, build_app(cache)


def build_app(cache: Path) -> Path:
    """tianrt's wheel built from this tree, installed (no dependencies) into ``cache/app``."""
    wheels = cache / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    log("building tianrt's wheel from this tree")
    with tempfile.TemporaryDirectory() as build_tmp:
        # build from a copy: an in-tree build leaves build/ and egg-info next to the sources
        src = Path(build_tmp) / "src"
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".venv", ".cache", ".git", "__pycache__", "*.egg-info", "build", "dist", "out", ".pytest_cache",
            ".hypothesis", "*.nbi", "*.nbc"))
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                            "--no-deps", "-w", str(wheels), str(src)], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"building the wheel failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    wheel = next(wheels.glob("tianrt-*.whl"))
    app = cache / "app"
    shutil.rmtree(app, ignore_errors=True)
    sh([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
        "--target", app, wheel])
    log(f"tianrt installed from {wheel.name}")
    return app


def run_smoke(qemu: str, cpu: str, sysroot: Path, sites: list[Path], numba_cache: Path, phase: str,
              workdir: Path, mode: str = "numba") -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join(str(s) for s in sites), "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(numba_cache),
           "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "QEMU_LD_PREFIX": str(sysroot)}
    cmd = [qemu, "-cpu", cpu, "-L", sysroot, sysroot / "usr/bin/python3.11", HERE / "smoke.py", "--phase", phase,
           "--mode", mode]
    t0 = time.perf_counter()
    lines, err = [], tempfile.TemporaryFile(mode="w+")
    with subprocess.Popen([str(c) for c in cmd], env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=err,
                          text=True) as p:
        for ln in p.stdout:  # progress lines as they come; the JSON line last
            lines.append(ln)
            if not ln.startswith("{"):
                print(f"    {ln.rstrip()}", flush=True)
    dt = time.perf_counter() - t0
    js = [ln for ln in lines if ln.startswith("{")]
    if p.returncode or not js:
        err.seek(0)
        sys.stderr.write(err.read()[-4000:])
        sys.exit(f"smoke ({phase}) failed under qemu (exit {p.returncode}) after {dt:.1f} s")
    res = json.loads(js[-1])
    res["wall_s"] = round(dt, 1)
    return res


def compare_with_host(arm: dict, label: str = "aarch64") -> list[str]:
    """Run the smoke's graphs natively (x86) and compare with the aarch64 values."""
    sys.path.insert(0, str(HERE))
    import smoke  # noqa: E402

    host = smoke.parity_values()
    problems = []
    import numpy as np
    for key, want in host.items():
        got = arm["values"].get(key)
        if got is None:
            problems.append(f"{key}: missing from the {label} run")
            continue
        a, b = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        exact = key.startswith("int/")
        if a.shape != b.shape or (exact and not np.array_equal(a, b)) or \
                (not exact and not np.allclose(a, b, rtol=1e-5, atol=1e-5)):
            problems.append(f"{key}: {label} differs from x86 numba (max abs diff "
                            f"{np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'})")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="cortex-a72", help="qemu CPU of the first run, which compiles "
                    "(cortex-a72 = Pi 4, cortex-a76 = Pi 5)")
    ap.add_argument("--cpu2", default="cortex-a76", help="qemu CPU of the second run, which must reuse the "
                    "first run's cache (NUMBA_CPU_NAME=generic makes it portable across cores)")
    ap.add_argument("--cache", default=os.environ.get("TIANRT_AARCH64_CACHE", str(ROOT / ".cache" / "aarch64")),
                    help="folder for the sysroot, wheels and target site (default .cache/aarch64)")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    ap.add_argument("--no-armhf", action="store_true", help="skip the 32-bit ARM check (tools/aarch64/armhf.py, "
                    "~40 s: Debian's armhf Python and numpy, no numba)")
    a = ap.parse_args(argv)
    t_all = time.perf_counter()
    cache = Path(a.cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    qemu = find_qemu()
    t0 = time.perf_counter()
    sysroot = build_sysroot(cache)
    site, app = build_site(cache)
    t_setup = time.perf_counter() - t0
    out: dict = {"cpu": a.cpu, "cpu2": a.cpu2, "setup_s": round(t_setup, 1)}
    with tempfile.TemporaryDirectory(prefix="tianrt-aarch64-") as tmp:
        tmpd = Path(tmp)
        numba_cache = tmpd / "numba-cache"
        numba_cache.mkdir()
        log(f"smoke, cold numba cache (qemu -cpu {a.cpu}, NUMBA_CPU_NAME=generic)")
        cold = run_smoke(qemu, a.cpu, sysroot, [app, site], numba_cache, "cold", tmpd)
        log(f"  done in {cold['wall_s']} s")
        log(f"smoke, second run (qemu -cpu {a.cpu2}): every kernel must come from the on-disk cache")
        warm = run_smoke(qemu, a.cpu2, sysroot, [app, site], numba_cache, "warm", tmpd)
        log(f"  done in {warm['wall_s']} s")
    problems = [f"cold: {p}" for p in cold["problems"]] + [f"warm: {p}" for p in warm["problems"]]
    if warm["cache"]["misses"]:
        problems.append(f"warm: {warm['cache']['misses']} kernel signature(s) compiled again instead of "
                        f"loaded from the cache: {warm['cache']['missed'][:5]}")
    if not warm["cache"]["hits"]:
        problems.append("warm: no kernel was loaded from the on-disk cache")
    problems += compare_with_host(warm)
    out.update(cold=cold, warm=warm, problems=problems, total_s=round(time.perf_counter() - t_all, 1))
    print(f"machine (as the emulated Python sees it): {warm['machine']}")
    print(f"checks: {', '.join(warm['checks'])}")
    print(f"numba cache: cold run compiled {cold['cache']['misses']} signatures; warm run loaded "
          f"{warm['cache']['hits']} from the cache, compiled {warm['cache']['misses']}")
    print(f"time: setup {t_setup:.1f} s, cold smoke {cold['wall_s']} s, warm smoke {warm['wall_s']} s, "
          f"total {out['total_s']} s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("aarch64: all checks passed")
    if a.no_armhf:
        return 0
    sys.path.insert(0, str(HERE))
    import armhf  # noqa: E402
    log("the 32-bit ARM check (numpy path): tools/aarch64/armhf.py")
    return armhf.main([])


if __name__ == "__main__":
    sys.exit(main())
