"""Arrays from addresses, for generated code (the numba backend's compiled tick): a whole
run of kernel calls receives one int64 array of the addresses of its buffers instead of
one argument per buffer (numba unboxes every array argument on every call, ~0.05-0.1 us
each), and views each buffer again with its shape and dtype, which the generated source
writes as literals. The caller keeps the buffers alive and never moves them."""
from ._jit import HAVE_NUMBA

if HAVE_NUMBA:
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def voidptr(typingctx, addr):
        """The int64 ``addr`` as a void pointer (for numba.carray)."""
        if not isinstance(addr, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)
        return types.voidptr(addr), codegen
