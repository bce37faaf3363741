"""The integer ranges of chip mode, defined once: int8 activations and weights, int32
currents and membranes, requantisation multipliers in [0, 2**15) and shifts in [0, 62].

Imported by the integer kernels, ``tianrt.qmath``, the ``tr.q`` nodes and firmware_sim
(which may import ``tianrt.kernels`` only), so every layer agrees on the same numbers.
"""
INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -2147483648, 2147483647
MULT_BITS = 15
MULT_LIMIT = 1 << MULT_BITS  # multipliers are in [0, MULT_LIMIT): products with int32 fit int64
SHIFT_LIMIT = 62
