"""Implementations registered by node type (after Lava's ``@implements`` and ONNX Runtime's
kernel registry).

Every consumer of a graph -- the reference backend, the numba backend, the quantiser, the
chip compiler, the op counter -- asks this registry for the implementation of a node of a
given *kind* instead of walking an ``isinstance`` chain:

    @implements("reference", LIF, IF)
    def lif_step(node, st, xs, t): ...

    step = find("reference", node)          # by type(node), then its base classes

Kinds in use (docs/architecture.md): ``state`` (node, batch, shape) -> dict of arrays,
``reference`` (node, st, xs, t) -> value or None, ``quantize`` (quantiser, entry, src,
kind, scale), ``numba`` (an op class of the numba backend), ``chip_head`` / ``chip_stage``
(the compiler's core records), ``macs`` (node, out_shape) -> int.

The lookup follows the method resolution order of the node's class, so a node type that
is a special case of another (``IF`` is a ``LIF`` with beta 1) finds its base's entry
unless it registers its own. Different operations are never subclasses of each other.
"""
from __future__ import annotations

_TABLE: dict[str, dict[type, object]] = {}
_MISSING = object()


def implements(kind: str, *node_types: type):
    """Decorator: register the decorated object as the ``kind`` implementation of each of
    ``node_types``. Registering a type twice for one kind is an error (one home per op)."""
    if not node_types:
        raise TypeError("implements(kind, *node_types) needs at least one node type")

    def deco(obj):
        table = _TABLE.setdefault(kind, {})
        for t in node_types:
            if t in table and table[t] is not obj:
                raise TypeError(f"{kind!r} implementation of {t.__name__} registered twice "
                                f"({table[t]!r} and {obj!r})")
            table[t] = obj
        return obj
    return deco


def find(kind: str, node_or_type, default=_MISSING):
    """The ``kind`` implementation for a node (or node type); ``default`` when there is
    none (LookupError naming the op and the kind when no default is given)."""
    cls = node_or_type if isinstance(node_or_type, type) else type(node_or_type)
    table = _TABLE.get(kind, {})
    for c in cls.__mro__:
        impl = table.get(c)
        if impl is not None:
            return impl
    if default is not _MISSING:
        return default
    op = getattr(cls, "op", cls.__name__)
    raise LookupError(f"no {kind!r} implementation for {op}")


def registered(kind: str) -> dict[type, object]:
    """A copy of the table of one kind: node type -> implementation."""
    return dict(_TABLE.get(kind, {}))
