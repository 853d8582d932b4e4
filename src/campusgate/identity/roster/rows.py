"""How roster values map to and from the ``roster_*`` tables.

A *record* is one CSV row as the store writes it: the table's columns except ``id``,
``tenant_id`` and ``updated_at``, lists as tuples of strings, ``extra`` as a dict.
Lists and ``extra`` are JSON text in the database.  Each entity kind is named after
its OneRoster CSV file (``orgs``, ``academicSessions``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table

from campusgate.identity.roster.models import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    Person,
    SchoolClass,
)
from campusgate.store.tables import (
    roster_academic_sessions,
    roster_classes,
    roster_courses,
    roster_enrollments,
    roster_orgs,
    roster_users,
)

__all__ = ["BATCH", "KINDS", "LIST_COLUMNS", "Kind", "Record", "chunks", "from_columns",
           "kind", "model", "values"]

#: One CSV row, by column name (see the module docstring).
Record = dict[str, Any]

#: Rows per INSERT/UPDATE/DELETE statement (well under SQLite's and PostgreSQL's
#: limits on bound parameters for the widest table).
BATCH = 500

#: Columns holding a JSON array of strings.
LIST_COLUMNS = frozenset({"grades", "subjects", "term_sourced_ids", "periods",
                          "org_sourced_ids", "agent_sourced_ids", "user_ids"})


@dataclass(frozen=True)
class Kind:
    """An entity kind: its CSV file stem, table and model class."""

    name: str
    table: Table
    model: type[Any]


#: In the order an import writes them (referenced kinds first).
KINDS: tuple[Kind, ...] = (
    Kind("orgs", roster_orgs, Org),
    Kind("academicSessions", roster_academic_sessions, AcademicSession),
    Kind("courses", roster_courses, Course),
    Kind("classes", roster_classes, SchoolClass),
    Kind("users", roster_users, Person),
    Kind("enrollments", roster_enrollments, Enrollment),
)

_BY_NAME = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    return _BY_NAME[name]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite: stored in UTC, read naive
        return value.replace(tzinfo=UTC)
    return value


def model(row_kind: Kind, row: Row[Any]) -> Any:
    """The model value of a table row."""
    return from_columns(row_kind, {str(k): v for k, v in row._mapping.items()})


def from_columns(row_kind: Kind, columns: Mapping[str, Any]) -> Any:
    """The model value of a mapping of column names to stored values."""
    data: dict[str, Any] = {}
    for name, value in columns.items():
        if name in LIST_COLUMNS:
            data[name] = tuple(json.loads(value))
        elif name == "extra":
            data[name] = json.loads(value)
        elif name == "updated_at":
            data[name] = _aware(value)
        else:
            data[name] = value
    return row_kind.model(**data)


def values(record: Record, tenant_id: int, stamp: datetime) -> dict[str, Any]:
    """The column values that store ``record`` for ``tenant_id``."""
    out: dict[str, Any] = {"tenant_id": tenant_id, "updated_at": stamp}
    for name, value in record.items():
        if name in LIST_COLUMNS:
            out[name] = json.dumps(list(value))
        elif name == "extra":
            out[name] = json.dumps(value, sort_keys=True)
        else:
            out[name] = value
    return out


def chunks(items: Sequence[Any], size: int = BATCH) -> list[Sequence[Any]]:
    """``items`` in slices of at most ``size`` (one statement each)."""
    return [items[i:i + size] for i in range(0, len(items), size)]
