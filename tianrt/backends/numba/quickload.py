"""Loading a kernel's cached machine code without numba's once-per-process context refresh.

numba's ``Cache.load_overload`` starts every load from the on-disk cache with
``target_context.refresh()``, which imports and installs every lowering registry numba has
(``numba.cpython.*``, ``numba.np.arraymath``, which imports SciPy's BLAS, typed containers,
jitclass, ...): about 0.25-0.45 s on the first load of a process, most of a cached start
(docs/benchmarks.md). A cached function needs none of it to run: its library is rebuilt from
the stored object code; what it needs is numba's runtime (NRT) symbols, which
``rtsys.initialize`` installs. So ``compile_cached`` asks the dispatcher for the signature as
usual (``Dispatcher.compile``, which keeps all of numba's bookkeeping) with the cache's
``load_overload`` replaced -- on that dispatcher's cache object only (``install``; the
backend installs it on every kernel of tianrt.kernels at import, for the kernels it calls
through the dispatcher too) -- by one that initialises the NRT and loads.
On a cache miss the dispatcher compiles as always, and numba's compiler refreshes the
context itself. Anything unexpected (another numba layout) takes numba's own path, and so
does everything when the environment sets ``TIANRT_NUMBA_QUICKLOAD=0`` (benchmarks compare
the two; a way out should a numba release change what a cached function needs).
"""
from __future__ import annotations

import os

ENABLED = os.environ.get("TIANRT_NUMBA_QUICKLOAD", "1") != "0"


def _light_load(cache, sig, target_context):
    from numba.core.runtime import nrt

    nrt.rtsys.initialize(target_context)
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)


def install(kernel) -> bool:
    """Make every later load of ``kernel`` (a numba dispatcher with a disk cache) skip the
    refresh: its cache's ``load_overload`` replaced on that cache object only. Returns
    whether it was installed."""
    cache = getattr(kernel, "_cache", None)
    if (not ENABLED or cache is None or not hasattr(cache, "_load_overload")
            or not hasattr(cache, "_guard_against_spurious_io_errors")):
        return False
    if "load_overload" not in vars(cache):
        cache.load_overload = lambda s, tc: _light_load(cache, s, tc)  # shadows the method
    return True


def install_all(prefix: str = "tianrt.kernels.") -> None:
    """``install`` on every dispatcher of the loaded modules under ``prefix`` (the kernels
    the backend calls directly, not only through ``compile_cached``)."""
    import sys

    for name, mod in list(sys.modules.items()):
        if name.startswith(prefix) and mod is not None:
            for obj in vars(mod).values():
                if hasattr(obj, "_cache") and hasattr(obj, "overloads"):
                    install(obj)


def compile_cached(kernel, sig):
    """``kernel.compile(sig)``: the compiled entry point for ``sig``, loaded from numba's
    cache without the context refresh when it is there, else compiled by numba."""
    install(kernel)
    return kernel.compile(sig)
