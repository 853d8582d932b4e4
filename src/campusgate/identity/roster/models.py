"""A roster's rows as plain, frozen values (OneRoster 1.1 / 1.2 data model).

The fields mirror the ``roster_*`` columns of ``store/tables.py``: ``id`` is the row's
integer key (stable across re-imports, what ClassLink-shaped answers show as
``UserId``, ``BuildingId``, ...), ``tenant_id`` the district it belongs to and
``sourced_id`` its OneRoster id, unique within that tenant only.  List-valued fields
are tuples of strings; ``extra`` keeps the columns and ``metadata.*`` values the model
has no field for.  ``status`` is ``active`` or ``tobedeleted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AcademicSession", "Course", "Enrollment", "Org", "Person", "SchoolClass",
           "Tenant"]


@dataclass(frozen=True)
class Tenant:
    """A district whose roster campusgate holds (ClassLink's "tenant")."""

    id: int
    name: str


@dataclass(frozen=True)
class Org:
    """The district, a school, a department, ...: ``type`` is OneRoster's org type."""

    id: int
    tenant_id: int
    sourced_id: str
    status: str
    name: str
    type: str
    identifier: str | None = None
    parent_sourced_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AcademicSession:
    """A school year, term, semester or grading period (dates ``YYYY-MM-DD``)."""

    id: int
    tenant_id: int
    sourced_id: str
    status: str
    title: str
    type: str
    start_date: str | None = None
    end_date: str | None = None
    parent_sourced_id: str | None = None
    school_year: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Course:
    id: int
    tenant_id: int
    sourced_id: str
    status: str
    title: str
    course_code: str | None = None
    school_year_sourced_id: str | None = None
    org_sourced_id: str | None = None
    grades: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SchoolClass:
    """A class (``class_type`` homeroom or scheduled) taught at one school."""

    id: int
    tenant_id: int
    sourced_id: str
    status: str
    title: str
    class_type: str
    school_sourced_id: str
    class_code: str | None = None
    location: str | None = None
    course_sourced_id: str | None = None
    term_sourced_ids: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    periods: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Person:
    """A rostered user.  ``role`` is the OneRoster role, lowercase (for 1.2 bundles the
    primary one from ``roles.csv``); ``account_id`` the local account that signs in as
    this person, if any."""

    id: int
    tenant_id: int
    sourced_id: str
    status: str
    enabled_user: bool
    username: str
    given_name: str
    family_name: str
    role: str
    middle_name: str | None = None
    identifier: str | None = None
    email: str | None = None
    sms: str | None = None
    phone: str | None = None
    grades: tuple[str, ...] = ()
    org_sourced_ids: tuple[str, ...] = ()
    agent_sourced_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    account_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.given_name, self.family_name) if part)


@dataclass(frozen=True)
class Enrollment:
    """Who is in which class, as what (student, teacher, aide, administrator)."""

    id: int
    tenant_id: int
    sourced_id: str
    status: str
    class_sourced_id: str
    school_sourced_id: str
    user_sourced_id: str
    role: str
    is_primary: bool | None = None
    begin_date: str | None = None
    end_date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
