"""tianrt.demos: runnable demos built on the public ``tianrt`` API only.

Each demo is a module (or package) here with ``DEMO_NAME``, a one-line ``DEMO_HELP`` and
``main(argv) -> int``; ``tianrt demo NAME`` finds it.
"""
from __future__ import annotations

import importlib
import pkgutil


def _modules():
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_"):
            continue
        try:
            m = importlib.import_module(f"{__name__}.{mod.name}")
        except ImportError:
            continue  # a demo whose optional dependencies are missing is not listed
        if hasattr(m, "DEMO_NAME"):
            yield m


def available() -> dict[str, str]:
    """Demo name -> one-line description."""
    return {m.DEMO_NAME: getattr(m, "DEMO_HELP", "") for m in _modules()}


def run_demo(name: str, argv: list[str]) -> int:
    for m in _modules():
        if m.DEMO_NAME == name:
            return int(m.main(list(argv)) or 0)
    raise SystemExit(f"tianrt demo: no demo named {name!r}; available: {', '.join(available())}")
