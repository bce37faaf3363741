"""The hybrid graph: inputs, nodes, delay edges and named outputs, validated as it is built.

A Graph is a tiny typed IR (after NIR): an ordered dict of named entries, each a node
dataclass plus the names of its inputs, its per-sample shape and its domain. Backends do
not read it directly: ``build()`` turns it into a Plan (topological order, BatchNorm
folded), which they compile.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import ann, bridge, snn
from .domains import CURRENT, DOMAINS, PER_TICK, SPIKE, TENSOR
from .errors import DomainError, GraphError, ShapeError
from .node import Node, default_seed, register
from .ops.linear import ConvLayout, DenseLayout


@register
@dataclass(eq=False)
class Input(Node):
    """A graph input: per-sample shape, domain, nominal rate (None: every tick) and, for a
    spike or current input, whether a value is held until the next one (``hold=True``) or
    presented at one tick only, zeros at the ticks without a value (``hold=False``, events).
    The default (None) is ``hold=False`` for spike inputs and ``True`` otherwise."""
    op = "graph.Input"
    prefix = "input"
    arity = 0
    shape: tuple = ()
    domain: str = TENSOR
    rate_hz: float | None = None
    hold: bool | None = None

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.domain not in DOMAINS:
            raise GraphError(f"input domain must be one of {DOMAINS}, got {self.domain!r}")
        if any(d < 1 for d in self.shape):
            raise ShapeError(f"input shape must have positive sizes, got {self.shape}")
        if self.hold is None:
            self.hold = self.domain != SPIKE
        if not isinstance(self.hold, (bool, np.bool_)):
            raise GraphError(f"input hold must be True (keep the last value) or False (present a "
                             f"value once), got {self.hold!r}")
        self.hold = bool(self.hold)
        if not self.hold and self.domain == TENSOR:
            raise GraphError("hold=False is for spike and current inputs; a tensor input's value is "
                             "an event that ANN nodes read once, and is kept for nodes that combine it")


@register
@dataclass(eq=False)
class Delay(Node):
    """One-tick delay: emits at tick t what its source emitted at tick t-1. The only way to
    close a cycle (recurrence)."""
    op = "graph.Delay"
    prefix = "delay"
    arity = 0
    shape: tuple = ()
    domain: str = SPIKE
    numeric: str = "float"

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.domain not in DOMAINS:
            raise GraphError(f"delay domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.numeric not in ("float", "int", "any"):
            raise GraphError(f"delay numeric must be 'float', 'int' or 'any', got {self.numeric!r}")


@dataclass(frozen=True)
class Handle:
    """A reference to a node's output inside one graph."""
    graph: "Graph" = field(repr=False, compare=False)
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        return self.graph.entries[self.name].shape

    @property
    def domain(self) -> str:
        return self.graph.entries[self.name].domain

    def __repr__(self):
        return f"<{self.name}: {self.domain} {self.shape}>"


@dataclass
class Entry:
    name: str
    node: Node
    inputs: list[str]
    shape: tuple[int, ...]
    domain: str
    source: str | None = None  # delays only: the node whose output they delay
    numeric: str = "float"  # "float", "int" or "any" (spike edges are always "any")

    @property
    def per_tick(self) -> bool:
        """Steps every tick (SNN side) rather than on a new input value (ANN side)."""
        if isinstance(self.node, (Input, Delay)):
            return self.domain in PER_TICK
        return self.node.per_tick or self.domain in PER_TICK


def _fix_hint(src: str, src_dom: str, dst: str, dst_node: Node) -> str:
    want = dst_node.in_domains
    if src_dom in PER_TICK and TENSOR in want and len(want) == 1:
        dec = "MembraneReadout(window=…)" if src_dom == CURRENT else "SpikeCount(window=…)"
        return f"insert a decoder such as `tr.bridge.{dec}` between `{src}` and `{dst}`"
    if src_dom == TENSOR and TENSOR not in want:
        enc = "DirectCurrent()" if want == (CURRENT,) else "RateEncoder()"
        return f"insert an encoder such as `tr.bridge.{enc}` between `{src}` and `{dst}`"
    if src_dom == CURRENT and want == (SPIKE,):
        return f"insert a neuron such as `tr.snn.LIF()` between `{src}` and `{dst}`"
    if src_dom == SPIKE and CURRENT in want:
        return f"insert a synapse such as `tr.snn.Dense(…)` between `{src}` and `{dst}`"
    return f"`{dst}` accepts {' or '.join(want)} inputs"


class Graph:
    """A hybrid ANN/SNN graph with one global tick ``dt`` (seconds)."""

    def __init__(self, dt: float = 1e-3, name: str = "graph", seed: int | None = None):
        if not dt > 0:
            raise GraphError(f"graph {name!r}: dt must be > 0 seconds, got {dt}")
        self.dt = float(dt)
        self.name = str(name)
        # seeds the default weights of layers added without weights or seed (Graph.add);
        # None: derived from the name, so a graph rebuilt by the same code starts out the same
        self.seed = zlib.crc32(self.name.encode()) if seed is None else int(seed)
        self.entries: dict[str, Entry] = {}
        self.outputs: dict[str, str] = {}
        self.metadata: dict = {}  # free JSON-able notes kept in model files (e.g. conversion T)
        self._counts: dict[str, int] = {}

    # -- building ---------------------------------------------------------------------------
    def _new_name(self, node: Node, name: str | None) -> str:
        if name is not None:
            if not isinstance(name, str) or not name or "/" in name:
                raise GraphError(f"node name must be a non-empty string without '/', got {name!r}")
            if name in self.entries:
                raise GraphError(f"graph {self.name!r} already has a node named {name!r}")
            return name
        while True:
            k = self._counts.get(node.prefix, 0) + 1
            self._counts[node.prefix] = k
            cand = f"{node.prefix}{k}"
            if cand not in self.entries:
                return cand

    def _ref(self, h, for_node: str) -> str:
        if isinstance(h, Handle):
            if h.graph is not self:
                raise GraphError(f"`{for_node}`: input `{h.name}` belongs to another graph")
            return h.name
        if isinstance(h, str) and h in self.entries:
            return h
        raise GraphError(f"`{for_node}`: input {h!r} is not a node of graph {self.name!r}"
                         f" (known: {', '.join(self.entries) or 'none'})")

    def input(self, name: str, shape, domain: str = TENSOR, rate_hz: float | None = None,
              hold: bool | None = None) -> Handle:
        """Declare a graph input with per-sample ``shape``, ``domain`` and nominal rate.
        ``hold`` (spike/current inputs): keep a value until the next (True) or present it
        at its tick only (False); default False for spike inputs (events), True otherwise."""
        try:
            node = Input(shape=tuple(np.atleast_1d(shape).tolist()) if not isinstance(shape, tuple) else shape,
                         domain=domain, rate_hz=None if rate_hz is None else float(rate_hz), hold=hold)
        except GraphError as exc:
            raise type(exc)(f"input {name!r}: {exc}") from None
        name = self._new_name(node, name)
        self.entries[name] = Entry(name, node, [], node.shape, node.domain,
                                   numeric="any" if domain == SPIKE else "float")
        return Handle(self, name)

    def add(self, node: Node, *inputs, name: str | None = None) -> Handle:
        """Add ``node`` fed by ``inputs`` (handles or node names); returns its output handle."""
        if not isinstance(node, Node) or isinstance(node, (Input, Delay)):
            raise GraphError(f"Graph.add takes a node such as tr.ann.Dense(...), got {node!r}"
                             + ("; use Graph.input/Graph.delay" if isinstance(node, (Input, Delay)) else ""))
        if any(e.node is node for e in self.entries.values()):
            raise GraphError(f"this {node.op} object is already in graph {self.name!r}; "
                             "create a new node (or node.copy()) to reuse its parameters")
        name = self._new_name(node, name)
        srcs = [self._ref(h, name) for h in inputs]
        entry = self._check(name, node, srcs)
        if node.draws_defaults:  # distinct defaults per node: seeded by graph and position
            node.draw_defaults(default_seed(self.seed, len(self.entries)))
            node.draws_defaults = False
        self.entries[name] = entry
        return Handle(self, name)

    def probe(self, handle, field: str = "v", name: str | None = None) -> Handle:
        """A tensor that carries the state field ``field`` of ``handle``'s node every tick,
        read after that node's update (e.g. a neuron's membrane ``v``, after reset; an
        adaptive neuron's ``a``); only that field is copied. Integer nodes give integers."""
        from .ops.probe import Probe
        src = self._ref(handle, "probe")
        numeric = "int" if self.entries[src].node.op.startswith("q.") else "float"
        return self.add(Probe(field=field, numeric=numeric), src, name=name)

    def chain(self, x, *nodes: Node) -> Handle:
        """Add ``nodes`` one after another starting from ``x``; returns the last handle."""
        for n in nodes:
            x = self.add(n, x)
        return x

    def delay(self, shape, domain: str = SPIKE, name: str | None = None, numeric: str = "float") -> Handle:
        """A one-tick delay edge whose source is set later by ``connect`` (for recurrence)."""
        node = Delay(shape=tuple(shape), domain=domain, numeric=numeric)
        name = self._new_name(node, name)
        self.entries[name] = Entry(name, node, [], node.shape, node.domain,
                                   numeric="any" if domain == SPIKE else numeric)
        return Handle(self, name)

    def connect(self, delay, source) -> None:
        """Close a delay edge: ``delay`` will emit ``source``'s previous-tick output."""
        d = self._ref(delay, "connect")
        e = self.entries[d]
        if not isinstance(e.node, Delay):
            raise GraphError(f"connect: `{d}` is a {e.node.op}, not a delay made by Graph.delay")
        if e.source is not None:
            raise GraphError(f"connect: delay `{d}` is already connected to `{e.source}`")
        s = self._ref(source, d)
        se = self.entries[s]
        if se.domain != e.domain or se.shape != e.shape or (
                e.numeric != "any" and se.numeric not in ("any", e.numeric)):
            raise GraphError(f"connect: delay `{d}` carries {e.domain} {e.shape} but `{s}` emits "
                             f"{se.numeric} {se.domain} {se.shape}; make the delay with "
                             f"Graph.delay({se.shape}, '{se.domain}', numeric='{se.numeric}')")
        e.source = s

    def output(self, name: str, handle) -> None:
        """Expose ``handle`` as the output ``name``."""
        if not isinstance(name, str) or not name:
            raise GraphError(f"output name must be a non-empty string, got {name!r}")
        if name in self.outputs:
            raise GraphError(f"graph {self.name!r} already has an output named {name!r}")
        self.outputs[name] = self._ref(handle, f"output {name}")

    def _check(self, name: str, node: Node, srcs: list[str]) -> Entry:
        if node.arity is not None and len(srcs) != node.arity:
            raise GraphError(f"`{name}` ({node.op}) takes {node.arity} input(s), got {len(srcs)}"
                             + (f": {', '.join(srcs)}" if srcs else ""))
        if node.arity is None and len(srcs) < 2:
            raise GraphError(f"`{name}` ({node.op}) takes two or more inputs, got {len(srcs)}")
        doms = [self.entries[s].domain for s in srcs]
        for s, d in zip(srcs, doms):
            if d not in node.in_domains:
                raise DomainError(f"{d} output of `{s}` feeds {'/'.join(node.in_domains)} input of "
                                  f"`{name}` ({node.op}): {_fix_hint(s, d, name, node)}")
        if len(set(doms)) > 1 and node.arity is None:
            raise DomainError(f"`{name}` ({node.op}) needs inputs of one domain, got "
                              + ", ".join(f"`{s}`: {d}" for s, d in zip(srcs, doms)))
        nums = [self.entries[s].numeric for s in srcs]
        if node.in_numeric != "any":
            for s, d, nm in zip(srcs, doms, nums):
                if d != SPIKE and nm not in ("any", node.in_numeric):
                    hint = ("insert `tr.q.Dequantize(scale)`" if nm == "int" else
                            "insert `tr.q.Quantize(scale)`, or quantize the whole graph with `tr.quantize`")
                    what = "integer-mode" if nm == "int" else "float"
                    raise DomainError(f"{what} output of `{s}` feeds {node.in_numeric} input of "
                                      f"`{name}` ({node.op}): {hint}")
        shapes = [self.entries[s].shape for s in srcs]
        if node.reads_input_state:
            node.check_source(self.entries[srcs[0]], name)
        try:
            shape = tuple(int(d) for d in node.out_shape(shapes))
        except ShapeError as exc:
            raise ShapeError(f"`{name}` fed by {', '.join(f'`{s}` {sh}' for s, sh in zip(srcs, shapes))}: "
                             f"{exc}") from None
        out_dom = node.output_domain(doms)
        return Entry(name, node, list(srcs), shape, out_dom,
                     numeric="any" if out_dom == SPIKE else node.output_numeric(nums))

    # -- queries ------------------------------------------------------------------------------
    @property
    def inputs(self) -> dict[str, Input]:
        return {n: e.node for n, e in self.entries.items() if isinstance(e.node, Input)}

    def __getitem__(self, name: str) -> Node:
        return self.entries[name].node

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def handle(self, name: str) -> Handle:
        if name not in self.entries:
            raise GraphError(f"graph {self.name!r} has no node {name!r}")
        return Handle(self, name)

    def consumers(self, name: str) -> list[str]:
        return [n for n, e in self.entries.items() if name in e.inputs or e.source == name]

    def validate(self) -> None:
        """Check the whole graph: outputs, connected delays, acyclic apart from delays."""
        if not self.outputs:
            raise GraphError(f"graph {self.name!r} has no outputs; add one with g.output(name, handle)")
        if not self.inputs:
            raise GraphError(f"graph {self.name!r} has no inputs; add one with g.input(name, shape)")
        for n, e in self.entries.items():
            if isinstance(e.node, Delay) and e.source is None:
                raise GraphError(f"delay `{n}` is dangling: close it with g.connect('{n}', source)")
        topo_order(self)

    def summary(self, file=None) -> str:
        """A table of node, kind, domain, shape, parameters and clock; printed and returned."""
        rows = [("node", "kind", "inputs", "domain", "shape", "params", "clock")]
        for n, e in self.entries.items():
            if isinstance(e.node, Input):
                clock = (f"{e.node.rate_hz:g} Hz" if e.node.rate_hz
                         else "every tick" if e.per_tick else "on value")
                if e.per_tick:
                    clock += ", held" if e.node.hold else ", once"
                ins = ""
            elif isinstance(e.node, Delay):
                clock, ins = "tick (t-1)", e.source or "?"
            else:
                clock = "tick" if e.per_tick else "on event"
                ins = ",".join(e.inputs)
            rows.append((n, e.node.op, ins, e.domain, "x".join(map(str, e.shape)),
                         f"{e.node.n_params():,}", clock))
        outs = ", ".join(f"{k} <- {v}" for k, v in self.outputs.items()) or "none"
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"graph {self.name!r}  dt={self.dt * 1e3:g} ms  nodes={len(self.entries)}  "
                 f"params={sum(e.node.n_params() for e in self.entries.values()):,}"]
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(f"outputs: {outs}")
        text = "\n".join(lines)
        print(text, file=file)
        return text

    def build(self) -> "Plan":
        """Validate and lower to a Plan for the backends."""
        self.validate()
        return lower(self)

    def __repr__(self):
        return (f"Graph({self.name!r}, dt={self.dt}, nodes={len(self.entries)}, "
                f"inputs={list(self.inputs)}, outputs={list(self.outputs)})")


def Sequential(*nodes: Node, input_shape, domain: str = TENSOR, dt: float = 1e-3,
               name: str = "sequential", input_name: str = "x", output_name: str = "y") -> Graph:
    """A chain of nodes as a graph with one input ``x`` and one output ``y``."""
    g = Graph(dt=dt, name=name)
    h = g.chain(g.input(input_name, tuple(input_shape), domain=domain), *nodes)
    g.output(output_name, h)
    return g


def topo_order(g: Graph) -> list[str]:
    """Kahn's order with delay edges cut; any other cycle is an error naming its nodes."""
    indeg = {n: len(e.inputs) for n, e in g.entries.items()}
    users: dict[str, list[str]] = {n: [] for n in g.entries}
    for n, e in g.entries.items():
        for s in e.inputs:
            if s not in g.entries:
                raise GraphError(f"`{n}` reads `{s}`, which is not in graph {g.name!r}")
            users[s].append(n)
    ready = [n for n, d in indeg.items() if d == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for u in users[n]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) != len(g.entries):
        stuck = [n for n in g.entries if n not in order]
        raise GraphError(f"graph {g.name!r} has a cycle through {', '.join(f'`{n}`' for n in stuck)}; "
                         "recurrence must go through a delay edge (Graph.delay / Graph.connect)")
    return order


# -- lowering ------------------------------------------------------------------------------

@dataclass
class Plan:
    """What backends compile: entries in execution order, BatchNorm folded, outputs mapped."""
    name: str
    dt: float
    entries: list[Entry]
    outputs: dict[str, str]
    inputs: dict[str, Input]

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)


_FOLDABLE = (DenseLayout, ConvLayout)  # ANN layers and synapses alike


def lower(g: Graph) -> Plan:
    order = topo_order(g)
    entries = {n: dataclasses.replace(g.entries[n], inputs=list(g.entries[n].inputs)) for n in order}
    outputs = dict(g.outputs)
    for n in list(order):
        e = entries.get(n)
        if e is None or not isinstance(e.node, ann.BatchNorm):
            continue
        (src,) = e.inputs
        se = entries[src]
        users = [m for m, x in entries.items() if src in x.inputs or x.source == src]
        if not isinstance(se.node, _FOLDABLE) or users != [n] or src in outputs.values():
            continue
        scale, shift = e.node.scale_shift()
        w = se.node.weight * scale.reshape((-1,) + (1,) * (se.node.weight.ndim - 1))
        se.node = se.node.copy(weight=w.astype(np.float32),
                               bias=(se.node.bias * scale + shift).astype(np.float32))
        del entries[n]
        for x in entries.values():
            x.inputs = [src if i == n else i for i in x.inputs]
            if x.source == n:
                x.source = src
        outputs = {k: (src if v == n else v) for k, v in outputs.items()}
    return Plan(g.name, g.dt, list(entries.values()), outputs, dict(g.inputs))
