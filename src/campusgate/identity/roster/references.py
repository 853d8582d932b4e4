"""The references between a bundle's files, checked before anything is written.

Each entry says: in file ``source``, column ``column`` names rows of file ``target``.
A reference is checked only when ``target`` is in the bundle as a bulk file -- the
whole truth for its kind; a delta or absent target may point into rows already in
the store, which this sans-IO check cannot see.  A reference to a row the bundle
marks ``tobedeleted`` from an active row is a problem too: the import would leave it
dangling.
"""

from __future__ import annotations

from collections.abc import Mapping

from campusgate.identity.roster.bundle import Problem
from campusgate.identity.roster.rows import Record

__all__ = ["REFERENCES", "check"]

#: (source file, column, target file, what the target is called in a problem).
REFERENCES: tuple[tuple[str, str, str, str], ...] = (
    ("orgs", "parent_sourced_id", "orgs", "parent org"),
    ("academicSessions", "parent_sourced_id", "academicSessions", "parent session"),
    ("courses", "org_sourced_id", "orgs", "org"),
    ("courses", "school_year_sourced_id", "academicSessions", "school year"),
    ("classes", "school_sourced_id", "orgs", "school"),
    ("classes", "course_sourced_id", "courses", "course"),
    ("classes", "term_sourced_ids", "academicSessions", "term"),
    ("users", "org_sourced_ids", "orgs", "org"),
    ("users", "agent_sourced_ids", "users", "agent"),
    ("roles", "user_sourced_id", "users", "user"),
    ("roles", "org_sourced_id", "orgs", "org"),
    ("enrollments", "class_sourced_id", "classes", "class"),
    ("enrollments", "school_sourced_id", "orgs", "school"),
    ("enrollments", "user_sourced_id", "users", "user"),
)


def check(parsed: Mapping[str, list[tuple[int, Record]]], modes: Mapping[str, str],
          problems: list[Problem]) -> None:
    """Append a problem for every reference to a row the bundle does not have."""
    status = {stem: {r["sourced_id"]: r["status"] for _, r in rows}
              for stem, rows in parsed.items() if modes.get(stem) == "bulk"}
    for source, column, target, called in REFERENCES:
        known = status.get(target)
        if known is None or source not in parsed:
            continue
        for line, record in parsed[source]:
            value = record.get(column)
            wanted = value if isinstance(value, tuple) else (value,) if value else ()
            for sourced_id in wanted:
                found = known.get(sourced_id)
                if found is None:
                    problems.append(Problem(f"{source}.csv", line,
                                            f"{called} {sourced_id!r} is not in "
                                            f"{target}.csv"))
                elif found == "tobedeleted" and record["status"] == "active":
                    problems.append(Problem(f"{source}.csv", line,
                                            f"{called} {sourced_id!r} is tobedeleted"))
