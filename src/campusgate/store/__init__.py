"""Persistent storage: revisioned configuration, settings and admin tokens.

The names below load on first use (PEP 562), so a module that only needs
:mod:`campusgate.store.revision_probe` (every worker) does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from campusgate.store.config_store import (
        ConfigStore,
        RevisionConflict,
        RevisionInfo,
        canonical_json,
    )
    from campusgate.store.dsn import InvalidDsn

__all__ = ["ConfigStore", "InvalidDsn", "RevisionConflict", "RevisionInfo", "canonical_json"]

_HOMES = {
    "ConfigStore": "campusgate.store.config_store",
    "RevisionConflict": "campusgate.store.config_store",
    "RevisionInfo": "campusgate.store.config_store",
    "canonical_json": "campusgate.store.config_store",
    "InvalidDsn": "campusgate.store.dsn",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'campusgate.store' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
