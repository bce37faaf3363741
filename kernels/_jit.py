"""numba's ``njit`` when numba is installed; otherwise a decorator that leaves the function
as plain Python (machines without numba wheels, such as a 32-bit ARM OS: docs/numba-backend.md).

The kernels then still run, bit for bit the same arithmetic, only slowly: enough for the
chip emulator and tools. The numba backend itself needs numba and says so; the reference
backend (numpy) is the fallback for running graphs (``Runtime(g, backend="auto")``).
"""
try:
    from numba import njit
    HAVE_NUMBA = True
except (ImportError, OSError):  # pragma: no cover - exercised in subprocesses by tests/test_no_numba.py
    # OSError: numba is installed but llvmlite's shared library does not load (a broken or
    # foreign-architecture install): the same fallback as no numba at all
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:  # @njit
            return args[0]
        return lambda fn: fn  # @njit(cache=True, ...) or @njit("signature")

__all__ = ["njit", "HAVE_NUMBA"]
