"""What every backend shares: checking and batching the inputs a user gives, the generic
``run`` loop, checkpoints, and stacking outputs into a RunResult. A backend subclasses
``Backend`` and implements ``_init_state``, ``_tick``, ``_get_state`` and ``_set_state``
(docs/architecture.md); ``tianrt.runtime.Runtime`` is the one API over all of them.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import BackendError, InputError
from ..graph import Plan
from . import checks


class RunResult(dict):
    """Outputs of ``Runtime.run``: name -> array with a leading axis over the ticks at which
    that output produced a value; ``ticks[name]`` says which ticks those were."""

    def __init__(self, values: dict, ticks: dict):
        super().__init__(values)
        self.ticks = ticks


class Backend:
    """Shared behaviour of backends. A backend implements ``_init_state(batch)``,
    ``_tick(inputs) -> outputs`` on batched float32 arrays, and ``_get_state``/``_set_state``."""

    name = "base"

    def __init__(self, plan: Plan, **options):
        if options:
            raise BackendError(f"backend {self.name!r} does not take options {sorted(options)}")
        self.plan = plan
        self.input_specs = plan.inputs
        self.t = 0
        self.batch: int | None = None
        self.batched = False

    # -- input checks (pure: they change nothing; docs/limits.md, "Runtime calls") ----------------
    def _spec(self, name):
        spec = self.input_specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise InputError(f"graph {self.plan.name!r} has no input {name!r}; "
                             f"its inputs are {', '.join(self.input_specs)}")
        return spec

    def _check_input(self, name: str, value) -> np.ndarray:
        """One tick's value of input ``name`` as (batch, *S) float32, checked against the
        running batch size; changes nothing."""
        a, _ = checks.check_value(name, self._spec(name), value)
        if self.batch is not None and a.shape[0] != self.batch:
            checks.batch_of({name: (a, True)}, 0, self.batch)
        return a

    def _check_step(self, inputs, call: str = "step"):
        """Every input of one tick checked (names, dtypes, shapes, values, one batch size)
        -> ({name: (batch, *S) array}, (batch, batched) or None); changes nothing."""
        inputs = checks.inputs_arg(inputs, call, self.input_specs)
        checked = {k: checks.check_value(k, self._spec(k), v) for k, v in inputs.items()}
        b = checks.batch_of(checked, 0, self.batch)
        return {k: a for k, (a, _) in checked.items()}, b

    def _start(self, b) -> None:
        """Size the state to the batch of the first inputs (after they were all checked)."""
        if self.batch is None:
            self.batch, self.batched = b if b is not None else (1, False)
            self._init_state(self.batch)

    def _ensure_state(self) -> None:
        self._start(None)

    # -- the API ------------------------------------------------------------------------------
    def step(self, inputs: dict | None = None) -> dict:
        xs, b = self._check_step(inputs)
        self._start(b)
        return self._advance(xs)

    def advance(self, inputs: dict | None = None, max_ticks: int = 1) -> tuple[int, dict]:
        """``step(inputs)``, then up to ``max_ticks - 1`` more ticks without new inputs, stopping
        after the first tick whose outputs have a value -> (ticks run, that tick's outputs, or
        {} when none had a value). The same as calling ``step`` that many times; a backend
        may run the ticks after the first in one loop (the streaming scheduler's runs of
        ticks between samples)."""
        out = self.step(inputs)
        n = 1
        while not out and n < max_ticks:
            out = self.step({})
            n += 1
        return n, out

    def _advance(self, xs: dict) -> dict:
        """One tick on checked, batched inputs (the state already sized)."""
        out = self._tick(xs)
        self.t += 1
        if self.batched:
            return {k: np.array(v) for k, v in out.items()}
        return {k: np.array(v[0]) for k, v in out.items()}

    def _check_run(self, inputs, ticks):
        """run's arguments checked in full before any tick runs -> (frames, count, batch)."""
        n = checks.ticks_arg(ticks)
        if n is not None:
            xs, b = self._check_step(inputs, "run")
            return itertools.chain([xs], itertools.repeat({}, n - 1)), n, b
        inputs = checks.inputs_arg(inputs, "run", self.input_specs)
        if not inputs:
            raise InputError("run: give inputs with a leading time axis, or ticks=N")
        clips = {k: checks.check_clip(k, self._spec(k), v) for k, v in inputs.items()}
        lengths = {k: a.shape[0] for k, (a, _) in clips.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"run: inputs have different numbers of ticks {lengths}; "
                             "without ticks=N every input needs the same leading time axis")
        b = checks.batch_of(clips, 1, self.batch)
        n = next(iter(lengths.values()))
        return ({k: a[i] for k, (a, _) in clips.items()} for i in range(n)), n, b

    def run(self, inputs: dict, ticks: int | None = None) -> RunResult:
        frames, _, b = self._check_run(inputs, ticks)
        self._start(b)
        vals: dict[str, list] = {k: [] for k in self.plan.outputs}
        when: dict[str, list] = {k: [] for k in self.plan.outputs}
        for frame in frames:
            t = self.t
            for k, v in self._advance(frame).items():
                vals[k].append(v)
                when[k].append(t)
        return self._stack(vals, when)

    def _stack(self, vals, when) -> RunResult:
        out = {}
        for k, lst in vals.items():
            if lst:
                out[k] = np.stack(lst)
            else:
                e = self.plan.entry(self.plan.outputs[k])
                lead = (0, self.batch) if self.batched else (0,)
                out[k] = np.zeros(lead + e.shape, np.int32 if e.numeric == "int" else np.float32)
        return RunResult(out, {k: np.asarray(v, dtype=np.int64) for k, v in when.items()})

    def reset(self) -> None:
        self.t = 0
        self.batch = None
        self.batched = False

    def state(self) -> dict[str, np.ndarray]:
        """A checkpoint (copies). Before the first input it describes the fresh state at
        batch 1, and the runtime stays free to take any batch size."""
        started = self.batch is not None
        if not started:
            self.batch, self.batched = 1, False
            self._init_state(1)
        try:
            st = {"__tick__": np.asarray(self.t, np.int64),
                  "__batch__": np.asarray(self.batch, np.int64),
                  "__batched__": np.asarray(self.batched, np.bool_)}
            st.update({k: np.array(v) for k, v in self._get_state().items()})
        finally:
            if not started:
                self.batch, self.batched = None, False
        return st

    def load_state(self, state: dict) -> None:
        """Restore a checkpoint, checked in full first: a refused one changes nothing."""
        tick, batch, batched = checks.state_header(state)
        checks.state_inputs(state, self.plan, batch)
        if self.batch == batch:
            arrays = checks.state_arrays(state, self._get_state(), self.plan.name)
        else:  # the layout at another batch size: build it, and put the old state back if refused
            arrays = self._probe_layout(state, batch, batched)
        self.reset()
        self.batch, self.batched = batch, batched
        self._init_state(batch)
        self._set_state(arrays)
        self.t = tick

    def _probe_layout(self, state, batch: int, batched: bool) -> dict:
        old = None if self.batch is None else (self.batch, self.batched,
                                               {k: np.array(v) for k, v in self._get_state().items()})
        try:
            self.batch, self.batched = batch, batched
            self._init_state(batch)
            return checks.state_arrays(state, self._get_state(), self.plan.name)
        except BaseException:
            if old is None:
                self.batch, self.batched = None, False
            else:
                self.batch, self.batched = old[0], old[1]
                self._init_state(old[0])
                self._set_state(old[2])
            raise

    # -- for subclasses ---------------------------------------------------------------------------
    def _init_state(self, batch: int) -> None:
        raise NotImplementedError

    def _tick(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _get_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError
