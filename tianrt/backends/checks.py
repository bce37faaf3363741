"""The runtime's boundary: pure checks of what a caller hands to ``step``, ``run`` and
``load_state``. Nothing here reads or changes a backend's state; each function returns the
checked value or raises an ``InputError`` naming the input, field or argument and saying
what would fit (docs/limits.md, "Runtime calls").
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..domains import SPIKE
from ..errors import InputError

F32 = np.float32


def _dims(s: tuple) -> str:
    return ", ".join(map(str, s))


def _where(idx) -> str:
    return str(tuple(int(i) for i in idx))


def inputs_arg(inputs, call: str, names) -> Mapping:
    """``inputs`` of step/run: None or a mapping of input name -> array."""
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        first = next(iter(names), "x")
        raise InputError(f"{call}: inputs must be a dict of input name -> array, such as "
                         f"{{{first!r}: x}}, got {type(inputs).__name__}")
    return inputs


def ticks_arg(ticks) -> int | None:
    """``ticks`` of run: None, or a whole number >= 1 (an int, not a float or bool)."""
    if ticks is None:
        return None
    if isinstance(ticks, (bool, np.bool_)) or not isinstance(ticks, (int, np.integer)):
        raise InputError(f"run: ticks must be a whole number >= 1 (an int), got {ticks!r} "
                         f"({type(ticks).__name__})")
    if ticks < 1:
        raise InputError(f"run: ticks must be >= 1, got {ticks}")
    return int(ticks)


def as_float32(name: str, value) -> np.ndarray:
    """``value`` as a float32 array: real numbers only (bool, int, uint or float)."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input `{name}`: cannot read as an array of numbers ({exc})") from None
    if a.dtype.kind == "c":
        raise InputError(f"input `{name}` holds complex numbers ({a.dtype}); inputs are real numbers")
    if a.dtype.kind not in "biuf":
        raise InputError(f"input `{name}`: cannot read {a.dtype} values as numbers; give a numeric "
                         "array (bool, int or float)")
    with np.errstate(over="ignore"):
        return a.astype(F32, copy=False)


def check_values(name: str, spec, a: np.ndarray, lead: str, lead_dims: int) -> None:
    """NaN/inf anywhere, or a non-binary value at a spike input: refuse, giving the position
    in the caller's own array (``lead_dims`` leading axes described by ``lead``)."""
    finite = np.isfinite(a)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise InputError(f"input `{name}`: NaN or inf {_at(bad, lead, lead_dims)}; clean the sensor value before it reaches "
                         "the network")
    if spec.domain == SPIKE:
        binary = (a == 0) | (a == 1)
        if not binary.all():
            bad = np.argwhere(~binary)[0]
            raise InputError(f"input `{name}` is a spike input: values must be 0 or 1, got "
                             f"{float(a[tuple(bad)]):g} {_at(bad, lead, lead_dims)}")


def _at(bad, lead: str, lead_dims: int) -> str:
    if not lead_dims:
        return f"at index {_where(bad)}"
    head = ", ".join(f"{w} {int(i)}" for w, i in zip(lead.split(","), bad[:lead_dims]))
    return f"at {head}, index {_where(bad[lead_dims:])}"


def check_value(name: str, spec, value) -> tuple[np.ndarray, bool]:
    """One tick's value of input ``name``: shape S or (batch, *S) -> (batch, *S) and
    whether the caller gave a batch axis."""
    a = as_float32(name, value)
    s = spec.shape
    if a.shape == s:
        check_values(name, spec, a, "", 0)
        return a[None], False
    if a.ndim == len(s) + 1 and a.shape[1:] == s:
        if a.shape[0] == 0:
            raise InputError(f"input `{name}` has shape {a.shape}: a batch of 0 samples; give at least one")
        check_values(name, spec, a, "sample", 1)
        return a, True
    hint = ""
    if a.ndim == len(s) + 2 and a.shape[2:] == s:
        hint = ("; it looks like a clip (ticks, batch, ...): give it to run(...) without ticks=, "
                "one slice per tick")
    raise InputError(f"input `{name}`: got shape {a.shape}, expected {s} or (batch, {_dims(s)}){hint}")


def check_clip(name: str, spec, value) -> tuple[np.ndarray, bool]:
    """Input ``name`` of run without ticks=: axis 0 is time, shape (T, *S) or (T, batch, *S)
    -> (T, batch, *S) and whether the caller gave a batch axis."""
    a = as_float32(name, value)
    s = spec.shape
    if a.ndim == len(s) + 1 and a.shape[1:] == s:
        batched, lead, n = False, "tick", 1
    elif a.ndim == len(s) + 2 and a.shape[2:] == s:
        batched, lead, n = True, "tick,sample", 2
    elif a.ndim == 0:
        raise InputError(f"run: input `{name}` is a single number; without ticks=N an input needs a "
                         f"leading time axis, shape (ticks, {_dims(s)}); or pass ticks=N to hold a value")
    else:
        hint = ("; to present this one value and hold it, pass ticks=N" if a.shape == s or a.shape[1:] == s
                else f"; give an array of shape (ticks, {_dims(s)}) or (ticks, batch, {_dims(s)})")
        raise InputError(f"run: input `{name}` has shape {a.shape}; without ticks=N axis 0 is time, so "
                         f"that is {a.shape[0]} tick(s) of shape {a.shape[1:]}, but the input takes "
                         f"{s} (or (batch, {_dims(s)})) per tick{hint}")
    if a.shape[0] == 0:
        raise InputError(f"run: input `{name}` has shape {a.shape}: 0 ticks along the time axis "
                         "(axis 0), nothing to run")
    if batched and a.shape[1] == 0:
        raise InputError(f"run: input `{name}` has shape {a.shape}: a batch of 0 samples (axis 1); "
                         "give at least one")
    check_values(name, spec, a, lead, n)
    return (a if batched else a[:, None]), batched


def batch_of(checked: dict, axis: int, running: int | None) -> tuple[int, bool] | None:
    """The batch size the checked inputs agree on (``axis`` of their arrays) and whether any
    gave a batch axis; refused when they disagree or differ from the running state's."""
    if not checked:
        return None
    sizes = {k: a.shape[axis] for k, (a, _) in checked.items()}
    if len(set(sizes.values())) > 1:
        raise InputError(f"inputs disagree on the batch size: {sizes}; give every input the same batch")
    b = next(iter(sizes.values()))
    if running is not None and b != running:
        k = next(iter(sizes))
        raise InputError(f"input `{k}`: batch size {b} differs from the running state's "
                         f"{running}; call reset() before changing the batch size")
    return b, any(f for _, f in checked.values())


# -- checkpoints ---------------------------------------------------------------------------

def _scalar(state, key: str, kinds: str) -> int:
    try:
        a = np.asarray(state[key])
    except KeyError:
        raise InputError(f"load_state: missing {key!r}; pass a dict made by state()") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"load_state: `{key}` is not a number ({exc})") from None
    if a.shape != () or a.dtype.kind not in kinds:
        raise InputError(f"load_state: `{key}` must be a single integer, got {a.dtype} of shape {a.shape}")
    return int(a)


def state_header(state) -> tuple[int, int, bool]:
    """(tick, batch, batched) of a checkpoint, checked."""
    if not isinstance(state, Mapping):
        raise InputError(f"load_state: takes a dict made by state() (or an np.load of it), got "
                         f"{type(state).__name__}")
    tick = _scalar(state, "__tick__", "iu")
    batch = _scalar(state, "__batch__", "iu")
    batched = _scalar(state, "__batched__", "biu")
    if tick < 0:
        raise InputError(f"load_state: `__tick__` is {tick}; a tick count is >= 0")
    if batch < 1:
        raise InputError(f"load_state: `__batch__` is {batch}; a batch holds at least 1 sample")
    if batched not in (0, 1):
        raise InputError(f"load_state: `__batched__` is {batched}; it is a bool")
    if not batched and batch != 1:
        raise InputError(f"load_state: `__batched__` is False but `__batch__` is {batch}; "
                         "an unbatched state has batch 1")
    return tick, batch, bool(batched)


def state_inputs(state, plan, batch: int) -> None:
    """The input value arrays of a checkpoint fit its ``__batch__`` (checked before anything
    of that batch size is allocated)."""
    for name, spec in plan.inputs.items():
        key = f"{name}/__value__"
        if key in state:
            shape = np.shape(state[key])
            if tuple(shape) != (batch,) + spec.shape:
                raise InputError(f"load_state: `{key}` has shape {tuple(shape)}, but `__batch__` "
                                 f"{batch} and input `{name}` {spec.shape} make {(batch,) + spec.shape}")


def state_arrays(state, ref: dict, graph: str) -> dict[str, np.ndarray]:
    """Every array of the layout ``ref`` (name -> array of the right shape and dtype) from the
    checkpoint, checked: present, no unknown keys, shape, real numbers, finite, integral
    where the state is an integer, in range. Returns new arrays of ``ref``'s dtypes."""
    keys = {k for k in state if isinstance(k, str)}
    missing = sorted(set(ref) - keys)
    extra = sorted(k for k in keys - set(ref) if not k.startswith("__"))
    extra += sorted(repr(k) for k in state if not isinstance(k, str))
    if missing or extra:
        raise InputError(f"load_state: state does not fit graph {graph!r} "
                         f"(missing {missing[:5]}, unexpected {extra[:5]})")
    out = {}
    for k, r in ref.items():
        try:
            a = np.asarray(state[k])
        except (TypeError, ValueError) as exc:
            raise InputError(f"load_state: `{k}` is not an array of numbers ({exc})") from None
        if a.shape != r.shape:
            raise InputError(f"load_state: `{k}` has shape {a.shape}, expected {r.shape}")
        if a.dtype.kind not in "biuf":
            raise InputError(f"load_state: `{k}` holds {a.dtype} values; expected {r.dtype}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))
            at = f" at index {_where(bad[0])}" if a.ndim else ""
            raise InputError(f"load_state: `{k}` holds NaN or inf{at}; a checkpoint holds finite values")
        if r.dtype.kind in "iub":
            if a.dtype.kind == "f" and not (a == np.round(a)).all():
                raise InputError(f"load_state: `{k}` holds fractions; expected {r.dtype} integers")
            lo, hi = (0, 1) if r.dtype.kind == "b" else (np.iinfo(r.dtype).min, np.iinfo(r.dtype).max)
            if a.size and (a.min() < lo or a.max() > hi):
                raise InputError(f"load_state: `{k}` holds values outside [{lo}, {hi}], the range of {r.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            c = np.array(a, dtype=r.dtype)
        if c.dtype.kind == "f" and not np.isfinite(c).all():
            raise InputError(f"load_state: `{k}` holds values beyond the range of {r.dtype}")
        out[k] = c
    return out
