"""The columns of the OneRoster 1.1 and 1.2 CSV files campusgate imports, and how each
value is read and checked (OneRoster 1.1 CSV Tables, 1EdTech, section 3; OneRoster 1.2
CSV binding).

A :class:`Column` maps a CSV header to a ``roster_*`` table column (or, with
``column=None``, to the row's ``extra``) and parses its text: a sentence for a bad
value raises :class:`BadValue`.  Columns the tables do not know (``metadata.*``,
``subjectCodes``, 1.2's ``preferredGivenName``, ...) go to ``extra`` as they are.
In a bulk file OneRoster 1.1 leaves ``status`` and ``dateLastModified`` blank: a blank
status means active.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = ["ENROLLMENT_ROLES", "FILES", "ORG_TYPES", "USER_ROLES_11", "USER_ROLES_12",
           "BadValue", "Column", "columns_of"]


class BadValue(ValueError):
    """A value that does not fit its column; the message is the reason."""


STATUSES = ("active", "tobedeleted")
ORG_TYPES = ("department", "school", "district", "local", "state", "national")
SESSION_TYPES = ("gradingPeriod", "semester", "schoolYear", "term")
CLASS_TYPES = ("homeroom", "scheduled")
USER_ROLES_11 = ("administrator", "aide", "guardian", "parent", "proctor", "relative",
                 "student", "teacher")
USER_ROLES_12 = ("aide", "counselor", "districtAdministrator", "guardian", "parent",
                 "principal", "proctor", "relative", "siteAdministrator", "student",
                 "systemAdministrator", "teacher")
ENROLLMENT_ROLES = ("administrator", "aide", "proctor", "student", "teacher")
ROLE_TYPES = ("primary", "secondary")


def text(value: str) -> str | None:
    return value or None


def status(value: str) -> str | None:
    return _status(value) if value else "active"


def one_of(allowed: tuple[str, ...]) -> Callable[[str], str | None]:
    """Case-insensitive match against an enumeration; answers the spec's spelling."""
    by_lower = {v.lower(): v for v in allowed}

    def parse(value: str) -> str | None:
        if not value:
            return None
        if value.lower() not in by_lower:
            raise BadValue(f"{value!r} is not one of {', '.join(allowed)}")
        return by_lower[value.lower()]
    return parse


#: The status column's check, made once (it runs for every row).
_status = one_of(STATUSES)


def items(value: str) -> tuple[str, ...]:
    """A comma-separated list (``"09,10"``) as a tuple, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def boolean(value: str) -> bool | None:
    if not value:
        return None
    if value.lower() not in ("true", "false"):
        raise BadValue(f"{value!r} is not true or false")
    return value.lower() == "true"


def day(value: str) -> str | None:
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadValue(f"{value!r} is not a date (YYYY-MM-DD)") from None


def moment(value: str) -> str | None:
    if not value:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadValue(f"{value!r} is not a date and time (ISO 8601)") from None
    return value


def year(value: str) -> str | None:
    if value and not re.fullmatch(r"\d{4}", value):
        raise BadValue(f"{value!r} is not a year (YYYY)")
    return value or None


@dataclass(frozen=True)
class Column:
    """``header`` in the CSV; ``column`` in the table (None: kept in ``extra``)."""

    header: str
    column: str | None
    parse: Callable[[str], Any] = text
    #: The header must be there and the value must not be blank.
    required: bool = False


_COMMON = (Column("sourcedId", "sourced_id", required=True),
           Column("status", "status", status),
           Column("dateLastModified", None, moment))

_USER_FIELDS = (
    Column("enabledUser", "enabled_user", boolean, required=True),
    Column("username", "username", required=True),
    Column("userIds", "user_ids", items),
    Column("givenName", "given_name", required=True),
    Column("familyName", "family_name", required=True),
    Column("middleName", "middle_name"),
    Column("identifier", "identifier"),
    Column("email", "email"),
    Column("sms", "sms"),
    Column("phone", "phone"),
    Column("agentSourcedIds", "agent_sourced_ids", items),
    Column("grades", "grades", items),
)

#: file stem -> columns, for OneRoster 1.1 (``users`` carries role and orgs).
_FILES_11: dict[str, tuple[Column, ...]] = {
    "orgs": (
        *_COMMON,
        Column("name", "name", required=True),
        Column("type", "type", one_of(ORG_TYPES), required=True),
        Column("identifier", "identifier"),
        Column("parentSourcedId", "parent_sourced_id")),
    "academicSessions": (
        *_COMMON,
        Column("title", "title", required=True),
        Column("type", "type", one_of(SESSION_TYPES), required=True),
        Column("startDate", "start_date", day),
        Column("endDate", "end_date", day),
        Column("parentSourcedId", "parent_sourced_id"),
        Column("schoolYear", "school_year", year)),
    "courses": (
        *_COMMON,
        Column("schoolYearSourcedId", "school_year_sourced_id"),
        Column("title", "title", required=True),
        Column("courseCode", "course_code"),
        Column("grades", "grades", items),
        Column("orgSourcedId", "org_sourced_id", required=True),
        Column("subjects", "subjects", items)),
    "classes": (
        *_COMMON,
        Column("title", "title", required=True),
        Column("grades", "grades", items),
        Column("courseSourcedId", "course_sourced_id", required=True),
        Column("classCode", "class_code"),
        Column("classType", "class_type", one_of(CLASS_TYPES), required=True),
        Column("location", "location"),
        Column("schoolSourcedId", "school_sourced_id", required=True),
        Column("termSourcedIds", "term_sourced_ids", items, required=True),
        Column("subjects", "subjects", items),
        Column("periods", "periods", items)),
    "users": (
        *_COMMON, *_USER_FIELDS,
        Column("orgSourcedIds", "org_sourced_ids", items, required=True),
        Column("role", "role", one_of(USER_ROLES_11), required=True)),
    "enrollments": (
        *_COMMON,
        Column("classSourcedId", "class_sourced_id", required=True),
        Column("schoolSourcedId", "school_sourced_id", required=True),
        Column("userSourcedId", "user_sourced_id", required=True),
        Column("role", "role", one_of(ENROLLMENT_ROLES), required=True),
        Column("primary", "is_primary", boolean),
        Column("beginDate", "begin_date", day),
        Column("endDate", "end_date", day)),
}

#: OneRoster 1.2: users lose role and orgs to ``roles.csv``.
_FILES_12: dict[str, tuple[Column, ...]] = {
    **_FILES_11,
    "users": (*_COMMON, *_USER_FIELDS),
    "roles": (
        *_COMMON,
        Column("userSourcedId", "user_sourced_id", required=True),
        Column("roleType", "role_type", one_of(ROLE_TYPES), required=True),
        Column("role", "role", one_of(USER_ROLES_12), required=True),
        Column("beginDate", "begin_date", day),
        Column("endDate", "end_date", day),
        Column("orgSourcedId", "org_sourced_id", required=True),
        Column("userProfileSourcedId", "user_profile_sourced_id")),
}

#: The files read, in the order they are checked; others (demographics, lineItems,
#: results, resources, ...) are ignored.
FILES = ("orgs", "academicSessions", "courses", "classes", "users", "roles",
         "enrollments")


def columns_of(version: str, stem: str) -> tuple[Column, ...] | None:
    """The columns of ``stem``.csv in that OneRoster version (None: not imported)."""
    return (_FILES_12 if version == "1.2" else _FILES_11).get(stem)
