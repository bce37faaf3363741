"""The numba backend (``Runtime(g, backend="numba")``): backend.py runs the program,
fusion.py decides what runs together, policy.py makes the machine-dependent choices,
ops_*.py hold the op classes by node family, intgemm.py the exact integer GEMM and
calibrate.py the crossover measurement (docs/numba-backend.md)."""
from .backend import NumbaBackend  # noqa: F401
