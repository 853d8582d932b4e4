"""Persistent storage: revisioned configuration, settings and admin tokens."""

from campusgate.store.config_store import (
    ConfigStore,
    RevisionConflict,
    RevisionInfo,
    canonical_json,
)
from campusgate.store.dsn import InvalidDsn

__all__ = ["ConfigStore", "InvalidDsn", "RevisionConflict", "RevisionInfo", "canonical_json"]
