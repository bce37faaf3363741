"""Explicit SIMD for numba kernels: a vector of ``LANES`` float32 values as a numba value
(LLVM ``<16 x float>``) and intrinsics on it: unaligned load and store at an index of a 1-D
float32 array (``vload``, ``vstore``), broadcast (``vsplat``), multiply-add (``vfma``),
ReLU, max and pairwise max with numba's scalar ``max`` semantics (``vrelu``, ``vmax``,
``vpairmax``), one lane (``vlane``) and "any lane non-zero" (``vany``).

Why: numba gives no control over LLVM's loop vectoriser. On Intel CPUs with AVX-512 it
picks 256-bit vectors (the CPU model's "prefer 256 bit" tuning), it may not contract a
multiply and an add into an FMA (numba's default is strict IEEE), and it gives up on loops
that need more runtime alias checks than it allows — which rules out register blocking.
Written with these values, a kernel says which values stay in registers and LLVM lowers
each operation to the target's vectors: one zmm register on AVX-512, two ymm on AVX2, four
q registers on NEON; results are the same on every target, except that ``vfma`` is fused
where the target has an FMA instruction (``llvm.fmuladd``) and rounded twice elsewhere.

The arrays are 1-D float32 arrays of unit stride: C-contiguous ones, or others whose
stride the caller has checked (``a.strides[0] == 4``); callers guarantee the bounds
(``i + LANES <= len``): nothing is checked. Without numba (kernels/_jit.py) the same
names are plain numpy functions, so a kernel using them still runs as Python (with
separate rounding of the product in ``vfma``). numba's cache of a kernel does not follow
this file (the intrinsics are inlined): after editing it, delete kernels/__pycache__/*.nb*.
"""
import numpy as np

from ._jit import HAVE_NUMBA

LANES = 16

if HAVE_NUMBA:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic, models, register_model

    _VT = ir.VectorType(ir.FloatType(), LANES)

    class F32Vec(types.Type):
        """A SIMD vector of LANES float32 values (a numba value type)."""

        def __init__(self):
            super().__init__(name=f"f32x{LANES}")

    f32vec = F32Vec()

    @register_model(F32Vec)
    class _F32VecModel(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, _VT)

    def _is_f32_array(a):
        return isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1

    def _vec_ptr(context, builder, aty, arr, idx):
        a = context.make_array(aty)(context, builder, arr)
        if aty.layout == "C":
            return builder.bitcast(builder.gep(a.data, [idx]), _VT.as_pointer())
        # other layouts: the address of arr[idx] through the stride (the caller checked that
        # it is the item size, so that the LANES values from there are arr[idx:idx + LANES])
        stride = cgutils.unpack_tuple(builder, a.strides, 1)[0]
        p = builder.gep(builder.bitcast(a.data, cgutils.int8_t.as_pointer()), [builder.mul(idx, stride)])
        return builder.bitcast(p, _VT.as_pointer())

    @intrinsic
    def vload(typingctx, arr, i):
        """arr[i:i + LANES] as a vector (arr a 1-D float32 array of unit stride)."""
        if not (_is_f32_array(arr) and isinstance(i, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            idx = context.cast(builder, args[1], sig.args[1], types.intp)
            return builder.load(_vec_ptr(context, builder, sig.args[0], args[0], idx), align=4)
        return f32vec(arr, i), codegen

    @intrinsic
    def vstore(typingctx, arr, i, v):
        """arr[i:i + LANES] = v."""
        if not (_is_f32_array(arr) and isinstance(i, types.Integer) and v == f32vec):
            return None

        def codegen(context, builder, sig, args):
            idx = context.cast(builder, args[1], sig.args[1], types.intp)
            builder.store(args[2], _vec_ptr(context, builder, sig.args[0], args[0], idx), align=4)
            return context.get_dummy_value()
        return types.none(arr, i, v), codegen

    @intrinsic
    def vsplat(typingctx, x):
        """The float ``x`` (rounded to float32) in every lane."""
        if not isinstance(x, (types.Float, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            s = context.cast(builder, args[0], sig.args[0], types.float32)
            v = builder.insert_element(ir.Constant(_VT, ir.Undefined), s, ir.Constant(ir.IntType(32), 0))
            zeros = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
            return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), zeros)
        return f32vec(x), codegen

    @intrinsic
    def vfma(typingctx, a, b, c):
        """a * b + c, lane by lane (fused where the target has FMA)."""
        if not (a == f32vec and b == f32vec and c == f32vec):
            return None

        def codegen(context, builder, sig, args):
            fnty = ir.FunctionType(_VT, [_VT, _VT, _VT])
            fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fmuladd.v{LANES}f32")
            return builder.call(fn, args)
        return f32vec(a, b, c), codegen

    @intrinsic
    def vany(typingctx, v):
        """True when any lane of ``v`` is not 0 (NaN counts as not 0, as in ``x != 0``)."""
        if v != f32vec:
            return None

        def codegen(context, builder, sig, args):
            ne = builder.fcmp_unordered("!=", args[0], ir.Constant(_VT, [0.0] * LANES))
            bits = builder.bitcast(ne, ir.IntType(LANES))
            return builder.icmp_unsigned("!=", bits, ir.Constant(ir.IntType(LANES), 0))
        return types.boolean(v), codegen

    @intrinsic
    def vlane(typingctx, v, j):
        """Lane ``j`` of ``v`` (0 <= j < LANES) as a float32."""
        if not (v == f32vec and isinstance(j, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            return builder.extract_element(args[0], args[1])
        return types.float32(v, j), codegen

    @intrinsic
    def vmax(typingctx, a, b):
        """max(a, b) lane by lane, exactly as numba's scalar max (b where b > a, else a)."""
        if not (a == f32vec and b == f32vec):
            return None

        def codegen(context, builder, sig, args):
            return builder.select(builder.fcmp_ordered(">", args[1], args[0]), args[1], args[0])
        return f32vec(a, b), codegen

    @intrinsic
    def vpairmax(typingctx, a, b):
        """max of adjacent pairs of the 2 * LANES values a, b (in that order): lane k is
        max(ab[2k], ab[2k + 1]), as vmax."""
        if not (a == f32vec and b == f32vec):
            return None

        def codegen(context, builder, sig, args):
            idx = ir.VectorType(ir.IntType(32), LANES)
            ev = builder.shuffle_vector(args[0], args[1], ir.Constant(idx, list(range(0, 2 * LANES, 2))))
            od = builder.shuffle_vector(args[0], args[1], ir.Constant(idx, list(range(1, 2 * LANES, 2))))
            return builder.select(builder.fcmp_ordered(">", od, ev), od, ev)
        return f32vec(a, b), codegen

    @intrinsic
    def vrelu(typingctx, v):
        """max(v, 0) lane by lane, NaN kept (numpy's maximum)."""
        if v != f32vec:
            return None

        def codegen(context, builder, sig, args):
            keep = builder.fcmp_unordered(">=", args[0], ir.Constant(_VT, [0.0] * LANES))
            return builder.select(keep, args[0], ir.Constant(_VT, [0.0] * LANES))
        return f32vec(v), codegen

else:  # pragma: no cover - exercised without numba only
    def vload(arr, i):
        return arr[i:i + LANES].copy()

    def vstore(arr, i, v):
        arr[i:i + LANES] = v

    def vsplat(x):
        return np.full(LANES, x, np.float32)

    def vfma(a, b, c):
        return a * b + c

    def vrelu(v):
        return np.maximum(v, np.float32(0))

    def vlane(v, j):
        return v[j]

    def vany(v):
        return bool(np.any(v != 0))

    def vmax(a, b):
        return np.where(b > a, b, a)

    def vpairmax(a, b):
        ab = np.concatenate((a, b))
        return vmax(ab[0::2], ab[1::2])


def round_up(n: int) -> int:
    """n rounded up to a multiple of LANES."""
    return -(-n // LANES) * LANES


__all__ = ["LANES", "vload", "vstore", "vsplat", "vfma", "vrelu", "vlane", "vany", "vmax", "vpairmax", "round_up"]
