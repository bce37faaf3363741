"""The numba backend: the reference's semantics on fused, event-driven kernels.

At build the plan becomes a short program of ops (the op class of each node is registered
by node type in ops_ann / ops_snn / ops_bridges / ops_int; fusion.py decides what runs
together); at the first input (when the batch size is known) every value, state and
scratch array is allocated once, and each op is bound to its arrays as a closure around
one kernel call. A tick is then one pass over that program: no array is allocated except
the copies that ``step`` returns (and ``Generator.random``'s draws for a Poisson encoder,
which writes into a preallocated array).

Synapses are event-driven below a crossover input activity and dense above it
(``synapse_mode``: "auto" | "event" | "dense", or a dict per node name; policy.py); at
batch 1 both loops sum in the same order, so the choice never changes a result; at
batch > 1 the dense side is BLAS. Integer graphs (``tr.q`` nodes) run on
``tianrt.kernels.intmath`` bit for bit (docs/integer.md). Design notes and tolerances:
docs/numba-backend.md.
"""
from __future__ import annotations

import numpy as np

from ...errors import BackendError, InputError
from ...graph import Delay, Input, Plan
from ...kernels import codec
from ...ops import find
from .. import checks
from ..base import Backend
from . import ops_ann, ops_bridges, ops_int, ops_snn  # noqa: F401  (register the op classes)
from . import policy, quiet, tickgen
from .base import ALWAYS, DECODER, F32, I32, entry_point, flat, kind_of
from .direct import copier, direct_step, single_step
from .fusion import fuse
from .ops_ann import EpilogueOp
from .ops_snn import ChainOp
from .quickload import install_all

install_all()  # cached kernels load without numba's context refresh (quickload.py)



def op_class(entry):
    cls = find("numba", entry.node, None)
    if cls is None:
        raise BackendError(f"numba backend cannot run `{entry.name}` ({entry.node.op}); "
                           "the reference backend may (backend='reference')")
    return cls


class NumbaBackend(Backend):
    """Fast backend on tianrt.kernels. Options: ``synapse_mode`` ("auto" | "event" | "dense",
    or a dict node name -> mode), ``crossover`` (input activity where auto switches from
    event to dense), ``conv_mode`` ("auto" | "direct" | "im2col") ``fuse`` (bool) and
    ``compiled`` (bool: runs of per-tick kernel calls as generated compiled functions, tickgen.py)."""

    name = "numba"
    quiet = None  # the generated loop over ticks without new inputs (quiet.py), when built
    quiet_first = False  # ... and it may run the tick that takes the inputs too
    _unlowered = None  # (program, op names) of the bound program until the loop is built
    # integer mode: exact float GEMM for q.Conv2d/SynConv2d (and q.Dense/SynDense at batch
    # > 1) when its bound holds (intgemm.py); False keeps the int64 kernels (benchmarks)
    int_gemm = True

    def __init__(self, plan: Plan, synapse_mode="auto", crossover: float | None = None,
                 conv_mode: str = "auto", fuse: bool = True, compiled: bool = False):
        from ...kernels._jit import HAVE_NUMBA
        if not HAVE_NUMBA:
            raise BackendError("backend 'numba' needs the numba package, which is not installed here "
                               "(it has no wheels for 32-bit ARM or x86); use backend='reference' "
                               "(numpy), or backend='auto' to take numba wherever it is installed")
        super().__init__(plan)
        policy.check_modes(synapse_mode, {e.name for e in plan.entries})
        self.synapse_mode = synapse_mode
        self.crossover, self.crossover_batch, self.crossover_given = policy.crossovers(crossover)
        if conv_mode not in policy.CONV_MODES:
            raise BackendError(f"conv_mode = {conv_mode!r}; choose one of {', '.join(policy.CONV_MODES)}")
        self.conv_mode = conv_mode
        self.compiled = bool(compiled)
        self.tick_sources: list[str] = []  # generated code of the compiled tick (tickgen.py)
        self.conv_chosen: dict[str, str] = {}  # conv layer -> algorithm used (after the first input)
        self.events = 0
        self.index = {e.name: i for i, e in enumerate(plan.entries)}
        self._compile(fuse)

    # -- build --------------------------------------------------------------------------------
    def mode_of(self, name: str) -> int:
        m = self.synapse_mode.get(name, "auto") if isinstance(self.synapse_mode, dict) else self.synapse_mode
        return policy.MODES[m]

    def crossover_for(self, batch: int, n_out: int) -> float:
        """policy.crossover_for with this backend's crossovers."""
        return policy.crossover_for(batch, n_out, self.crossover, self.crossover_batch, self.crossover_given)

    def conv_choice(self, entry, forms: dict, outs: list, x_shape: tuple) -> str:
        choice = policy.conv_choice(self.conv_mode, entry, forms, outs, x_shape)
        self.conv_chosen[entry.name] = choice
        return choice

    def _compile(self, enabled: bool) -> None:
        f = fuse(self.plan, enabled)
        self.ops = []
        self.owner = {}  # plan entry name -> the op that writes it
        for e in self.plan.entries:
            if isinstance(e.node, (Input, Delay)) or (e.name in f.in_chain and e.name not in f.chains):
                continue
            if e.name in f.chains:
                op = ChainOp(self, f.chains[e.name])
            else:
                op = (EpilogueOp if f.written_by_producer(e.name) else op_class(e))(self, e)
                op.kind = DECODER if op.kind == DECODER else kind_of(e)
                if e.name in f.epilogue:
                    op.relu, op.pool = f.epilogue[e.name], f.pools.get(e.name)
            self.ops.append(op)
            for o in op.outs:
                self.owner[o] = op
        self.inputs_ = [e for e in self.plan.entries if isinstance(e.node, Input)]
        self.delays = [e for e in self.plan.entries if isinstance(e.node, Delay)]

    # -- state --------------------------------------------------------------------------------
    def _init_state(self, batch: int) -> None:
        if self._bound == (batch, self.batched):  # same shapes: restore in place, keep the program
            if not self._clean:
                self._restore_initial()
            return
        self._build(batch)
        self._snapshot()

    def _build(self, batch: int) -> None:
        bufs: dict[str, np.ndarray] = {}
        for e in self.inputs_ + self.delays:
            bufs[e.name] = np.zeros((batch,) + e.shape, I32 if e.numeric == "int" else F32)
        self.nxt = {d.name: np.zeros_like(bufs[d.name]) for d in self.delays}
        self.nxt_fresh = {d.name: d.per_tick for d in self.delays}  # tick 0: zeros, as the reference
        for op in self.ops:
            op.alloc(batch, bufs)
        self.bufs = bufs
        self.once = [(e.name, bufs[e.name]) for e in self.inputs_ if not e.node.hold]
        idx = self.index
        self.fresh = [False] * len(self.plan.entries)
        prog, names = [], []
        for op in self.ops:
            fn = op.bind(bufs)
            names.append(op.name)
            oi = idx[op.outs[-1]] if op.kind == DECODER else idx[op.name]
            if op.kind == ALWAYS:
                for o in op.outs:
                    self.fresh[idx[o]] = True
                if fn is not None:
                    prog.append((ALWAYS, fn, oi, ()))
                else:
                    names.pop()
            else:
                prog.append((op.kind, fn, oi, tuple(idx[i] for i in op.entry.inputs)))
        self.tick_sources = []
        self.prog = tickgen.lower(self, prog, names) if self.compiled else prog
        for e in self.inputs_:
            if e.per_tick:
                self.fresh[idx[e.name]] = True
        self.tensor_inputs = [idx[e.name] for e in self.inputs_ if not e.per_tick]
        self.delay_io = [(idx[d.name], bufs[d.name], self.nxt[d.name], d.name, bufs[d.source], idx[d.source])
                         for d in self.delays]
        self.slots = {e.name: (e.shape if not self.batched else (batch,) + e.shape,
                               flat(bufs[e.name]), e.domain == "spike", idx[e.name], codec.check_copy)
                      for e in self.inputs_}
        self.outs = [(k, idx[src], bufs[src] if self.batched else bufs[src][0])
                     for k, src in self.plan.outputs.items()]
        self.quiet, self.quiet_first = None, False  # built at the first advance (quiet.py)
        self._unlowered = (prog, names) if self.compiled else None
        # outputs written by per-tick ops are fresh after every tick: copied by straight-line code
        always = {idx[o] for op in self.ops if op.kind == ALWAYS for o in op.outs}
        self.copy_outputs = (copier([(k, a) for k, _, a in self.outs])
                             if all(oi in always for _, oi, _ in self.outs) else None)
        # The whole graph is one fused chain fed by its only (spike) input: step() then checks,
        # copies and runs the tick in a single kernel call.
        self.direct = None
        if (len(self.prog) == 1 and isinstance(self.ops[0], ChainOp) and len(self.inputs_) == 1
                and not self.delays and self.ops[0].x_name == self.inputs_[0].name
                and self.inputs_[0].domain == "spike"):
            name = self.inputs_[0].name
            self.direct = direct_step(self, self.ops[0], name, self.slots[name][0], self.slots[name][1])
        elif (len(self.prog) == 1 and self.prog[0][0] == ALWAYS and hasattr(self.prog[0][1], "ops")
              and len(self.inputs_) == 1 and not self.delays and self.copy_outputs is not None
              and hasattr(self.prog[0][1], "entry")):
            name = self.inputs_[0].name  # a compiled tick that lowered the whole graph
            sl = self.slots[name]
            self.direct = single_step(self, name, sl[0], sl[1], sl[2], self.prog[0][1])
        else:  # the general step checks and copies each input through check_copy's entry point
            self.slots = {k: sl[:4] + (entry_point(codec.check_copy, sl[1], sl[1], sl[2]),)
                          for k, sl in self.slots.items()}

    def state_of(self, name: str) -> dict:
        """The state arrays of plan entry ``name`` (for probes): owned by the op that runs it."""
        op = self.owner.get(name)
        return {} if op is None else op.state_of(name)

    def _states(self):
        for op in self.ops:
            if isinstance(op, ChainOp):
                yield from op.state.items()
            else:
                st = dict(op.state, **op.extra_state())
                if st:
                    yield op.name, st

    def _get_state(self):
        out = {}
        for name, st in self._states():
            for k, v in st.items():
                out[f"{name}/{k}"] = v
        for e in self.plan.entries:
            out[f"{e.name}/__value__"] = self.bufs[e.name]
        for d in self.delays:
            out[f"{d.name}/__delayed__"] = self.nxt[d.name]
            out[f"{d.name}/__delayed_fresh__"] = np.asarray(self.nxt_fresh[d.name])
        return out

    def _set_state(self, state):
        for op in self.ops:
            sts = op.state.items() if isinstance(op, ChainOp) else [(op.name, op.state)]
            for name, st in sts:
                for k, v in st.items():
                    np.copyto(v, state[f"{name}/{k}"])
            op.load_extra_state({k: state[f"{op.name}/{k}"] for k in op.extra_state()})
        for e in self.plan.entries:
            np.copyto(self.bufs[e.name], state[f"{e.name}/__value__"])
        for d in self.delays:
            np.copyto(self.nxt[d.name], state[f"{d.name}/__delayed__"])
            self.nxt_fresh[d.name] = bool(state[f"{d.name}/__delayed_fresh__"])

    # -- ticks --------------------------------------------------------------------------------
    def _clear_once(self, given) -> None:
        """Inputs with hold=False that are not given this tick present zeros."""
        for name, buf in self.once:
            if name not in given:
                buf.fill(0)

    def _run(self) -> None:
        self._clean = False
        fr, t = self.fresh, self.t
        for di, val, nxt, dn, _, _ in self.delay_io:
            np.copyto(val, nxt)
            fr[di] = self.nxt_fresh[dn]
        for kind, fn, oi, ins in self.prog:
            if kind == ALWAYS:
                fn(t)
            elif kind == DECODER:
                fr[oi] = fn(t)
            else:
                for i in ins:
                    if fr[i]:
                        if fn is not None:
                            fn(t)
                        fr[oi] = True
                        break
                else:
                    fr[oi] = False
        for di, val, nxt, dn, src, si in self.delay_io:
            np.copyto(nxt, src)
            self.nxt_fresh[dn] = fr[si]

    def _tick(self, inputs):
        fr = self.fresh
        for i in self.tensor_inputs:
            fr[i] = False
        self._clear_once(inputs)
        for k, a in inputs.items():
            np.copyto(self.bufs[k], a)
            fr[self.index[k]] = True
        self._run()
        return {k: self.bufs[self.plan.outputs[k]] for k, oi, _ in self.outs if fr[oi]}

    def step(self, inputs: dict | None = None) -> dict:
        """One tick. Same checks and return convention as Backend.step, with the input check
        and copy done by one kernel call per input."""
        if (inputs is not None and type(inputs) is not dict) or (
                self.batch is None and (self._bound is None or not self._rearm(inputs))):
            return Backend.step(self, inputs)
        self._clean = False
        if self.direct is not None:
            out = self.direct(inputs)
            if out is not None:
                return out
        self._take(inputs)
        self._run()
        self.t += 1
        if self.copy_outputs is not None:
            return self.copy_outputs()
        fr = self.fresh
        return {k: v.copy() for k, oi, v in self.outs if fr[oi]}

    def _take(self, inputs) -> None:
        """The inputs of a tick checked (all before any is copied) and copied into their value
        arrays, each by one kernel call when it is a C-contiguous float32 array of its shape."""
        fr = self.fresh
        for i in self.tensor_inputs:
            fr[i] = False
        if inputs:
            slots = self.slots
            if len(inputs) > 1:  # check every input before changing any
                for k, v in inputs.items():
                    self._check_input(k, v)
            for k, v in inputs.items():
                slot = slots.get(k)
                if (slot is not None and type(v) is np.ndarray and v.dtype == F32
                        and v.shape == slot[0] and v.flags.c_contiguous):
                    if slot[4](v.reshape(-1), slot[1], slot[2]):
                        self._check_input(k, v)  # raises the same error as the base class
                else:
                    a = self._check_input(k, v)
                    np.copyto(self.bufs[k], a)
                fr[slot[3]] = True
        self._clear_once(inputs or ())

    def advance(self, inputs: dict | None = None, max_ticks: int = 1):
        """Backend.advance: the first tick through ``step``'s checks, the ticks after it without
        new inputs in one loop (quiet.py; generated with ``compiled=True``, and then, when the
        tick that takes the inputs runs the same ops as the others, all of them in one call)."""
        if self._unlowered is not None and self.batch is not None and max_ticks > 1:
            prog, names = self._unlowered  # the generated loop, built once per bound program
            self._unlowered = None
            self.quiet = quiet.build(self, prog, names)
            self.quiet_first = self.quiet is not None and quiet.takes_first_tick(self, prog)
        if (self.quiet_first and self.batch is not None and self.direct is None
                and (inputs is None or type(inputs) is dict)):
            self._take(inputs)
            self._clean = False
            n = self.quiet(max(int(max_ticks), 1))
            return n, {k: v.copy() for k, oi, v in self.outs if self.fresh[oi]}
        out = self.step(inputs)
        if out or max_ticks <= 1:
            return 1, out
        limit = int(max_ticks) - 1
        self._clear_once(())  # inputs presented once are zero from the second tick on
        n = self.quiet(limit) if self.quiet is not None else quiet.python_loop(self, limit)
        fr = self.fresh
        if self.copy_outputs is not None:
            return n + 1, self.copy_outputs()
        return n + 1, {k: v.copy() for k, oi, v in self.outs if fr[oi]}

    def run(self, inputs: dict, ticks: int | None = None):
        """Many ticks. With a time axis, the whole sequence is checked in one kernel call
        per input and the ticks then run without per-tick checks or dicts; any problem
        (or ``ticks=``) falls back to Backend.run, whose errors name the offending tick."""
        ticks = checks.ticks_arg(ticks)
        if ticks is not None:
            return self._run_held(inputs, ticks)
        if type(inputs) is not dict or not inputs:
            return Backend.run(self, inputs, ticks)
        arrs = {}
        for k, v in inputs.items():
            spec = self.input_specs.get(k)
            a = v if isinstance(v, np.ndarray) and v.dtype == F32 else None
            if spec is None or a is None or a.ndim < 1 or a.shape[0] < 1:
                return Backend.run(self, inputs, ticks)
            per = a.shape[1:]
            if per != spec.shape and per[1:] != spec.shape:
                return Backend.run(self, inputs, ticks)
            arrs[k] = np.ascontiguousarray(a)
        n = {a.shape[0] for a in arrs.values()}
        if len(n) != 1:
            return Backend.run(self, inputs, ticks)
        n = n.pop()
        # the first frame gives the batch; every tick is checked before the state is sized
        try:
            first = {k: checks.check_value(k, self.input_specs[k], a[0]) for k, a in arrs.items()}
            batch, batched = checks.batch_of(first, 0, self.batch)
        except InputError:  # Backend.run says it in the clip's terms (tick, sample, index)
            return Backend.run(self, inputs, ticks)
        if self.batch is not None:
            batched = self.batched
        for k, a in arrs.items():
            want = ((batch,) if batched else ()) + self.input_specs[k].shape
            if a.shape[1:] != want or codec.check_values(a.reshape(-1), self.input_specs[k].domain == "spike"):
                return Backend.run(self, inputs, ticks)
        self._start((batch, batched))
        feeds = [(self.bufs[k], a.reshape((n,) + self.bufs[k].shape), self.slots[k][3]) for k, a in arrs.items()]
        fr, outs = self.fresh, self.outs
        vals: dict[str, list] = {k: [] for k in self.plan.outputs}
        when: dict[str, list] = {k: [] for k in self.plan.outputs}
        tensor_inputs = self.tensor_inputs
        self._clear_once(arrs)  # inputs not given stay zero through the run
        for i in range(n):
            for j in tensor_inputs:
                fr[j] = False
            for buf, a, idx in feeds:
                np.copyto(buf, a[i])
                fr[idx] = True
            t = self.t
            self._run()
            self.t += 1
            for k, oi, v in outs:
                if fr[oi]:
                    vals[k].append(v.copy())
                    when[k].append(t)
        return self._stack(vals, when)

    def _run_held(self, inputs: dict, ticks: int):
        """run(inputs, ticks=N): the values are checked and presented at the first tick
        (through step), then held for the remaining ticks without per-tick checks."""
        vals: dict[str, list] = {k: [] for k in self.plan.outputs}
        when: dict[str, list] = {k: [] for k in self.plan.outputs}
        t0 = self.t
        for k, v in self.step(dict(inputs or {})).items():
            vals[k].append(v)
            when[k].append(t0)
        fr, outs, tensor_inputs = self.fresh, self.outs, self.tensor_inputs
        self._clear_once(())  # presented at the first tick only
        for _ in range(ticks - 1):
            for j in tensor_inputs:
                fr[j] = False
            t = self.t
            self._run()
            self.t += 1
            for k, oi, v in outs:
                if fr[oi]:
                    vals[k].append(v.copy())
                    when[k].append(t)
        return self._stack(vals, when)

    # -- reset in place ---------------------------------------------------------------------
    # The program bound at the first input stays bound across reset(): reset restores every
    # state, value and delay array to its initial contents in place (a copy of a few root
    # arrays), and the next input of the same batch form runs at once on the fast path;
    # only a different batch size (or batched / unbatched form) binds a new program.
    _bound: tuple | None = None  # (batch, batched) of the bound program
    _clean = False  # the bound arrays hold their initial contents (nothing ran since)

    def _snapshot(self) -> None:
        """Copies of the initial contents of every array the program writes between ticks:
        the root arrays (``.base``) of the state, value and delay arrays, each once."""
        roots: dict[int, np.ndarray] = {}
        for op in self.ops:
            for st in ([op.state] if not isinstance(op, ChainOp) else op.state.values()):
                for a in st.values():
                    r = _root(a)
                    roots[id(r)] = r
            if isinstance(op, ChainOp):
                for r in (op.st, op.refrac):
                    roots[id(r)] = r
        for a in list(self.bufs.values()) + list(self.nxt.values()):
            r = _root(a)
            roots[id(r)] = r
        self._initial = [(r, r.copy()) for r in roots.values()]
        self._initial_extra = [(op, op.extra_state()) for op in self.ops if op.extra_state()]
        self._initial_fresh = list(self.fresh)
        self._bound = (self.batch, self.batched)
        self._clean = True

    def _restore_initial(self) -> None:
        for a, a0 in self._initial:
            np.copyto(a, a0)
        for op, st in self._initial_extra:
            op.load_extra_state(st)
        self.fresh[:] = self._initial_fresh
        for d in self.delays:
            self.nxt_fresh[d.name] = d.per_tick  # tick 0: zeros, as the reference
        self._clean = True

    def _rearm(self, inputs) -> bool:
        """After reset(): take the bound program again (already restored) when ``inputs``
        have exactly its batch form; else leave it to Backend.step to bind anew."""
        (batch, batched), slots = self._bound, self.slots
        if inputs:
            for k, v in inputs.items():
                slot = slots.get(k)
                if slot is None or type(v) is not np.ndarray or v.shape != slot[0]:
                    return False
        elif batched or batch != 1:
            return False
        self.batch, self.batched = batch, batched
        return True

    def load_state(self, state: dict) -> None:
        try:
            Backend.load_state(self, state)
        finally:
            self._clean = False

    def reset(self) -> None:
        super().reset()
        self.events = 0
        if self._bound is not None and not self._clean:
            self._restore_initial()


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a
