"""What reading a OneRoster CSV bundle yields: the rows to import, or the problems
that refuse it; and the progress events an import reports.

Problems are data that say where and why (``users.csv:14: role 'pupil' is not a
OneRoster role``), so the admin API, the CLI and the tests all show the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from campusgate.identity.roster.rows import Record

__all__ = ["Bundle", "ImportRefused", "Problem", "Progress", "ProgressCallback"]


@dataclass(frozen=True, order=True)
class Problem:
    """One reason a bundle is refused: the file, the line as a person counts it in a
    text editor (the header is line 1; 0 when the problem is the file itself) and a
    sentence."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


class ImportRefused(Exception):
    """The bundle cannot be imported; nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s), first: {problems[0]}"
                         if problems else "refused")


@dataclass(frozen=True)
class Bundle:
    """A validated OneRoster bundle.

    ``records`` holds the rows of each entity kind present (``orgs``, ``users``, ...;
    see ``rows.KINDS``); ``modes`` says for each whether the file is a ``bulk`` (the
    whole truth: rows absent from it are removed) or a ``delta`` (changes: rows marked
    ``tobedeleted`` are removed, the others added or updated).  A kind the bundle does
    not carry is left alone.  ``passwords`` maps a user's sourcedId to the password
    users.csv gave (kept apart so it is never stored in the clear).
    """

    version: str
    records: Mapping[str, list[Record]]
    modes: Mapping[str, str]
    passwords: Mapping[str, str] = field(default_factory=dict)
    #: kind -> sourcedId -> the row's line in its CSV file (for problems found later).
    lines: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def line(self, kind: str, sourced_id: str) -> int:
        return self.lines.get(kind, {}).get(sourced_id, 0)

    def count(self) -> int:
        return sum(len(rows) for rows in self.records.values())


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` items of ``stage`` (``orgs``, ``users``, ``passwords``,
    ``accounts``, ...) are written."""

    stage: str
    done: int
    total: int

    def as_json(self) -> dict[str, Any]:
        return {"event": "progress", "stage": self.stage, "done": self.done,
                "total": self.total}


ProgressCallback = Callable[[Progress], None]
