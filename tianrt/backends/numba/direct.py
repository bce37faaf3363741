"""The one-call streaming step of the numba backend: when the whole graph is one fused
chain fed by its only (spike) input, ``step`` checks the input, copies it and runs the
tick in a single kernel call (``kernels.neuron.snn_chain_step_input``), and copies the
outputs out with a generated function (no loop, no comprehension frame). Everything the
call needs is bound once into a closure, so a tick costs the kernel, the copies of the
outputs and a few attribute reads."""
from __future__ import annotations

import numpy as np

from ...kernels import codec, neuron
from .base import entry_point

_F32_DTYPE = np.dtype(np.float32)


def copier(outs: list):
    """fn() -> {name: copy of array} for ``outs`` [(name, array)], as straight-line code."""
    ns = {f"a{i}": a for i, (_, a) in enumerate(outs)}
    body = ", ".join(f"{name!r}: a{i}.copy()" for i, (name, _) in enumerate(outs))
    src = f"def copy_outputs():\n    return {{{body}}}\n"
    exec(compile(src, "<tianrt numba outputs>", "exec"), ns)
    return ns["copy_outputs"]


def direct_step(be, op, name: str, shape: tuple, x0: np.ndarray):
    """step(inputs) -> outputs, or None when ``inputs`` is not exactly one C-contiguous
    float32 array of ``shape`` for input ``name`` (the caller then takes the general path).
    A failed check raises the base class's error, and nothing has run."""
    wb, ip, fp, st, refrac = op.args[1:]
    one_d = len(shape) == 1
    example = np.zeros(shape, np.float32) if one_d else x0
    k = entry_point(neuron.snn_chain_step_input, example, x0, wb, ip, fp, st, refrac)
    finish, n_layers, check = op.finish, len(op.pairs), be._check_input
    copy_outputs = copier([(o, a) for o, _, a in be.outs])
    ndarray, f32 = np.ndarray, _F32_DTYPE

    def step(inputs):
        if inputs is None or len(inputs) != 1:
            return None
        v = inputs.get(name)
        if type(v) is not ndarray or v.dtype is not f32 or v.shape != shape:
            return None
        flags = v.flags
        if not (flags.c_contiguous and flags.aligned):
            return None
        code, ev, layer = k(v if one_d else v.reshape(-1), x0, wb, ip, fp, st, refrac)
        if code:
            check(name, v)  # raises the base class's error; nothing ran
        be._clean = False
        if layer == n_layers:
            be.events += ev
        else:
            finish(ev, layer)  # hand-back of dense layers to BLAS (batch > 1)
        be.t += 1
        return copy_outputs()
    return step


def single_step(be, name: str, shape: tuple, x0: np.ndarray, spike: bool, tick):
    """The same one-call step for any program that is a single per-tick call ``tick(t)``
    (a compiled tick that lowered the whole graph) fed by one input: check and copy the
    input through check_copy's entry point, run the tick, copy the outputs."""
    one_d = len(shape) == 1
    example = np.zeros(shape, np.float32) if one_d else x0
    chk = entry_point(codec.check_copy, example, x0, spike)
    check = be._check_input
    copy_outputs = copier([(o, a) for o, _, a in be.outs])
    ndarray, f32 = np.ndarray, _F32_DTYPE
    k, args, keep = tick.entry  # the generated call itself (tickgen.lower), one Python frame less

    def step(inputs, _keep=keep):
        if inputs is None or len(inputs) != 1:
            return None
        v = inputs.get(name)
        if type(v) is not ndarray or v.dtype is not f32 or v.shape != shape:
            return None
        flags = v.flags
        if not (flags.c_contiguous and flags.aligned):
            return None
        if chk(v if one_d else v.reshape(-1), x0, spike):
            check(name, v)  # raises the base class's error; nothing ran
        be._clean = False
        be.events += k(*args)
        be.t += 1
        return copy_outputs()
    return step
