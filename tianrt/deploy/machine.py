"""What this machine is, for ``tianrt doctor`` and docs/deploy.md: CPU, cores, OS, Python,
the versions of numpy/numba/llvmlite/OpenCV, whether numba works here (else graphs run on the
numpy reference backend), and the state of the numba kernel cache (where, how many kernels,
which CPU the code was compiled for, and so whether another board can reuse it)."""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

# per core, how much slower than the development machine (docs/deploy.md): (low, high)
BOARDS = {"pi4": ("Raspberry Pi 4 (Cortex-A72)", 9.0, 12.0),
          "pi5": ("Raspberry Pi 5 (Cortex-A76)", 3.0, 4.0)}


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _memory_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    return {"cpu": _cpu_model(), "arch": platform.machine(), "cores": cores, "memory_mb": _memory_mb(),
            "os": _os_name(), "python": platform.python_version(),
            "bits": 64 if sys.maxsize > 2 ** 32 else 32,
            "versions": {name: _version(dist) for name, dist in (
                ("tianrt", "tianrt"), ("numpy", "numpy"), ("numba", "numba"), ("llvmlite", "llvmlite"),
                ("opencv", "opencv-python-headless"), ("pyserial", "pyserial"))}}


def numba_status() -> dict:
    """Does numba import and compile here? Which backend does ``backend="auto"`` pick?"""
    from ..kernels._jit import HAVE_NUMBA

    out = {"installed": _version("numba") is not None, "works": False, "error": None,
           "cpu_name": None, "cpu_name_pinned": os.environ.get("NUMBA_CPU_NAME"),
           "auto_backend": "numba" if HAVE_NUMBA else "reference"}
    if not HAVE_NUMBA:
        out["error"] = "numba does not import here" if out["installed"] else "numba is not installed"
        return out
    try:
        import numba
        from llvmlite import binding as llvm

        out["cpu_name"] = numba.config.CPU_NAME or llvm.get_host_cpu_name()
        probe = numba.njit(lambda a, b: a * b + 1)
        out["works"] = probe(3, 4) == 13
    except Exception as exc:  # noqa: BLE001 - a broken install is what this looks for
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def cache_dirs() -> list[Path]:
    """Where numba keeps tianrt's compiled kernels: NUMBA_CACHE_DIR, or the __pycache__
    folders next to the kernel sources, or numba's user cache dir when those are read-only."""
    from .. import kernels

    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return [Path(env)]
    dirs = [Path(kernels.__file__).parent / "__pycache__"]  # every njit kernel lives in tianrt.kernels
    try:
        from numba.misc.appdirs import AppDirs
        dirs.append(Path(AppDirs(appname="numba", appauthor=False).user_cache_dir))
    except Exception:  # noqa: BLE001 - numba missing or broken: only the source folders
        pass
    return dirs


def cache_state(cpu_name: str | None = None) -> dict:
    """How many kernel index files, for which CPUs. An index lists one entry per compiled
    signature, keyed by (LLVM triple, CPU name, CPU features): code built with
    NUMBA_CPU_NAME=generic has no features and runs on every core of its architecture."""
    files, cpus, entries, unreadable, usable = [], {}, 0, 0, 0
    for d in cache_dirs():
        if d.is_dir():
            # next to the sources: the index files themselves; NUMBA_CACHE_DIR and numba's user
            # cache hold one folder per source folder, named after it (kernels_<hash>)
            pattern = "*.nbi" if d.name == "__pycache__" else "kernels_*/*.nbi"
            files += sorted(d.glob(pattern))
    for path in files:
        keys = _index_keys(path)
        for triple, cpu, features in keys:
            entries += 1
            key = f"{cpu} ({triple.split('-')[0]})" + (", host features" if features else "")
            cpus[key] = cpus.get(key, 0) + 1
            usable += cpu == cpu_name
        if not keys:
            unreadable += 1
    portable = bool(cpus) and all(k.startswith("generic") for k in cpus)
    return {"dirs": [str(d) for d in cache_dirs()], "index_files": len(files), "signatures": entries,
            "cpus": cpus, "portable": portable, "unreadable": unreadable,
            "usable_here": usable if cpu_name else None}


def _index_keys(path: Path) -> list[tuple]:
    """(triple, cpu, features) of each entry of a numba cache index (empty if unreadable).

    The index is a pickle, and a cache folder is not trusted input: it is never unpickled.
    Its opcodes are only scanned (``pickletools.genops`` builds no object) for the strings it
    holds, following the memo for repeated ones; each entry's key is the target triple
    followed by the CPU name and its feature string."""
    import io
    import pickletools
    import re

    try:
        data = path.read_bytes()
        end = max(pos for _, _, pos in pickletools.genops(io.BytesIO(data))) + 1  # numba's version
        strings, memo, last = [], {}, None
        for op, arg, _ in pickletools.genops(io.BytesIO(data[end:])):
            if isinstance(arg, str) and "UNICODE" in op.name:
                last = arg
                strings.append(arg)
            elif op.name == "MEMOIZE":
                memo[len(memo)] = last
            elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = last
            elif op.name in ("BINGET", "LONG_BINGET", "GET"):
                last = memo.get(int(arg))
                if isinstance(last, str):
                    strings.append(last)
            else:
                last = None
    except Exception:  # noqa: BLE001 - a partial or foreign file
        return []
    triple = re.compile(r"^[a-z0-9_]+(-[a-z0-9_]+){2,3}$")
    return [tuple(strings[i:i + 3]) for i in range(len(strings) - 2) if triple.match(strings[i])]
