"""What every backend shares: checking and batching the inputs a user gives, the generic
``run`` loop, checkpoints, and stacking outputs into a RunResult. A backend subclasses
``Backend`` and implements ``_init_state``, ``_tick``, ``_get_state`` and ``_set_state``
(docs/architecture.md); ``tianrt.runtime.Runtime`` is the one API over all of them.
"""
from __future__ import annotations

import numpy as np

from ..domains import SPIKE
from ..errors import BackendError, InputError
from ..graph import Plan


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

    # -- input checks -------------------------------------------------------------------------
    def _check_input(self, name: str, value) -> np.ndarray:
        spec = self.input_specs.get(name)
        if spec is None:
            raise InputError(f"graph {self.plan.name!r} has no input {name!r}; "
                             f"its inputs are {', '.join(self.input_specs)}")
        try:
            a = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"input `{name}`: cannot read as float32 numbers ({exc})") from None
        if a.shape == spec.shape:
            batched = False
            a = a[None]
        elif a.ndim == len(spec.shape) + 1 and a.shape[1:] == spec.shape:
            batched = True
        else:
            raise InputError(f"input `{name}`: got shape {a.shape}, expected {spec.shape} "
                             f"or (batch, {', '.join(map(str, spec.shape))})")
        if not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0]
            raise InputError(f"input `{name}`: NaN or inf at index {tuple(int(i) for i in bad)}"
                             + ("" if batched else " (of the batch-1 view)")
                             + "; clean the sensor value before it reaches the network")
        if spec.domain == SPIKE and not np.isin(a, (0.0, 1.0)).all():
            raise InputError(f"input `{name}` is a spike input: values must be 0 or 1")
        b = a.shape[0]
        if self.batch is None:
            self.batch, self.batched = b, batched
            self._init_state(b)
        elif b != self.batch:
            raise InputError(f"input `{name}`: batch size {b} differs from the running state's "
                             f"{self.batch}; call reset() before changing the batch size")
        return a

    def _ensure_state(self) -> None:
        if self.batch is None:
            self.batch, self.batched = 1, False
            self._init_state(1)

    # -- the API ------------------------------------------------------------------------------
    def step(self, inputs: dict | None = None) -> dict:
        xs = {k: self._check_input(k, v) for k, v in (inputs or {}).items()}
        self._ensure_state()
        out = self._tick(xs)
        self.t += 1
        if self.batched:
            return {k: np.array(v) for k, v in out.items()}
        return {k: np.array(v[0]) for k, v in out.items()}

    def run(self, inputs: dict, ticks: int | None = None) -> RunResult:
        inputs = dict(inputs or {})
        if ticks is not None:
            if int(ticks) < 1:
                raise InputError(f"run: ticks must be >= 1, got {ticks}")
            frames = [inputs] + [{}] * (int(ticks) - 1)
        else:
            if not inputs:
                raise InputError("run: give inputs with a leading time axis, or ticks=N")
            lengths = {}
            for k, v in inputs.items():
                a = np.asarray(v)
                if a.ndim == 0:
                    raise InputError(f"run: input `{k}` has no time axis; pass ticks=N to hold a value")
                lengths[k] = a.shape[0]
                inputs[k] = a
            if len(set(lengths.values())) != 1:
                raise InputError(f"run: inputs have different numbers of ticks {lengths}; "
                                 "without ticks=N every input needs the same leading time axis")
            n = next(iter(lengths.values()))
            frames = ({k: v[i] for k, v in inputs.items()} for i in range(n))
        vals: dict[str, list] = {k: [] for k in self.plan.outputs}
        when: dict[str, list] = {k: [] for k in self.plan.outputs}
        for frame in frames:
            t = self.t
            for k, v in self.step(frame).items():
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
        self._ensure_state()
        st = {"__tick__": np.asarray(self.t, np.int64),
              "__batch__": np.asarray(self.batch, np.int64),
              "__batched__": np.asarray(self.batched, np.bool_)}
        st.update({k: np.array(v) for k, v in self._get_state().items()})
        return st

    def load_state(self, state: dict) -> None:
        for key in ("__tick__", "__batch__", "__batched__"):
            if key not in state:
                raise InputError(f"load_state: missing {key!r}; pass a dict made by state()")
        self.reset()
        self.batch = int(state["__batch__"])
        self.batched = bool(state["__batched__"])
        self._init_state(self.batch)
        ref = self._get_state()
        missing = sorted(set(ref) - set(state))
        extra = sorted(k for k in set(state) - set(ref) if not k.startswith("__"))
        if missing or extra:
            raise InputError(f"load_state: state does not fit graph {self.plan.name!r} "
                             f"(missing {missing[:5]}, unexpected {extra[:5]})")
        for k, v in ref.items():
            a = np.asarray(state[k])
            if a.shape != v.shape:
                raise InputError(f"load_state: `{k}` has shape {a.shape}, expected {v.shape}")
        self._set_state({k: np.array(state[k], dtype=ref[k].dtype) for k in ref})
        self.t = int(state["__tick__"])

    # -- for subclasses ---------------------------------------------------------------------------
    def _init_state(self, batch: int) -> None:
        raise NotImplementedError

    def _tick(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _get_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError
