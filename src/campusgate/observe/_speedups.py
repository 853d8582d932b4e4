"""The observe plane's compiled helpers (``_rowpack.c``): the row packer and the
writer's C loops.  Optional: without a C compiler at install, or with
``CAMPUSGATE_NO_EXTENSIONS=1``, every caller takes its pure-Python path."""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["NO_EXTENSIONS_ENV", "speedups"]

#: Set to 1 to use the pure-Python paths even when the C helpers are built.
NO_EXTENSIONS_ENV = "CAMPUSGATE_NO_EXTENSIONS"


def _load() -> ModuleType | None:
    try:
        from campusgate.observe import _rowpack
    except ImportError:
        return None
    return _rowpack


_MODULE = _load()


def speedups() -> ModuleType | None:
    """The compiled helpers, None when they are not built or turned off."""
    if os.environ.get(NO_EXTENSIONS_ENV, "") not in ("", "0"):
        return None
    return _MODULE
