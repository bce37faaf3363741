"""The base class of graph nodes: plain dataclasses with typed parameters (after NIR).

A node says what it is (its parameters), which domains it accepts and emits, and how
it maps input shapes to an output shape. How it computes is registered by node type in
its op family's module (tianrt.ops) and in the backends.
Shapes are per sample (no batch axis).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from .domains import TENSOR
from .errors import ShapeError

NODE_TYPES: dict[str, type["Node"]] = {}


def register(cls):
    """Class decorator: make a node type known to model files by its ``op`` name."""
    NODE_TYPES[cls.op] = cls
    return cls


@dataclasses.dataclass(eq=False)
class Node:
    op: ClassVar[str] = "node"
    prefix: ClassVar[str] = "node"
    in_domains: ClassVar[tuple[str, ...]] = (TENSOR,)
    out_domain: ClassVar[str | None] = TENSOR  # None: same as the input's
    arity: ClassVar[int | None] = 1  # None: two or more inputs
    per_tick: ClassVar[bool] = False  # True: steps every tick; False: runs on a new input value
    stateful: ClassVar[bool] = False
    reads_input_state: ClassVar[bool] = False  # a probe: its rule reads its input node's state
    # Numeric mode of tensor/current edges: "float" (float32), "int" (integer chip mode,
    # see docs/integer.md) or "any"; out_numeric None means "same as the input".
    in_numeric: ClassVar[str] = "float"
    out_numeric: ClassVar[str | None] = "float"

    # -- shape and domain rules -------------------------------------------------------
    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        return tuple(in_shapes[0])

    def output_domain(self, in_domains: list[str]) -> str:
        return self.out_domain if self.out_domain is not None else in_domains[0]

    def output_numeric(self, in_numerics: list[str]) -> str:
        if self.out_numeric is not None:
            return self.out_numeric
        known = [n for n in in_numerics if n != "any"]
        return known[0] if known else "any"

    # -- parameters -----------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def config(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def n_params(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))

    def describe(self) -> str:
        """Short text of the scalar configuration, for summaries."""
        cfg = ", ".join(f"{k}={v}" for k, v in self.config().items() if v is not None)
        return f"{self.op}({cfg})"

    def copy(self, **changes) -> "Node":
        return dataclasses.replace(self, **changes)

    # -- default random draws ---------------------------------------------------------------
    # A node made without its random parameters and without a seed (a layer's weights, a
    # Poisson encoder's generator) draws them again when it is added to a graph, from a seed
    # derived from the graph's seed and its position there (Graph.add, default_seed), so
    # that two nodes of one kind never start out equal.
    draws_defaults: ClassVar[bool] = False  # set per instance by nodes that drew defaults

    def draw_defaults(self, seed: int) -> None:
        """Draw the default random parameters from ``seed`` (nodes that have some override it)."""


def default_seed(graph_seed: int, index: int) -> int:
    """The seed of the default weights of the ``index``-th entry of a graph (a uint32)."""
    return int(np.random.SeedSequence([int(graph_seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


# -- helpers for node constructors ---------------------------------------------------------

def as_array(node: Node, name: str, value, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Convert a parameter to an array of the given shape, or say what shape was expected."""
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != tuple(shape):
        raise ShapeError(f"{node.op}: {name} has shape {arr.shape}, expected {tuple(shape)}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ShapeError(f"{node.op}: {name} holds NaN or inf values")
    return np.ascontiguousarray(arr)


def init_uniform(shape: tuple[int, ...], fan_in: int, seed: int) -> np.ndarray:
    """PyTorch-style default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
    bound = 1.0 / np.sqrt(max(fan_in, 1))
    return np.random.default_rng(seed).uniform(-bound, bound, size=shape).astype(np.float32)


def pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ShapeError(f"expected an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def need_rank(op: str, shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise ShapeError(f"{op} expects {what} (rank {rank}), got shape {tuple(shape)}")
