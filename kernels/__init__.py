"""tianrt.kernels: numba kernels, pure functions on arrays.

Kernels know nothing of graphs: they take arrays and scalars and write into
preallocated outputs. Only numpy and numba may be imported here.
"""
