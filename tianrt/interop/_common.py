"""What the interop modules share: their error and warning types and the lazy import of
the optional packages (``pip install 'tianrt[interop]'``)."""
from __future__ import annotations

import importlib

from ..errors import TianrtError


class InteropError(TianrtError):
    """A model from (or for) another framework cannot be mapped; the message names the node."""


class InteropWarning(UserWarning):
    """An export that other readers will refuse or read differently (the message says which)."""


def need(module: str, what: str):
    """Import an optional package or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InteropError(f"{what} needs the `{module}` package: pip install 'tianrt[interop]' "
                           f"(or pip install {module})") from None
