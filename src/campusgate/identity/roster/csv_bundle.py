"""Read a OneRoster 1.1 or 1.2 CSV bundle (a zip) into a :class:`~.bundle.Bundle`, or
the list of :class:`~.bundle.Problem` s that refuse it.  No I/O: bytes in, values out.

What is checked, so that an import either fits the data model or does not start:

- the zip itself: at most :data:`MAX_ENTRIES` entries and :data:`MAX_TOTAL_BYTES`
  uncompressed (counted while reading, not trusted from the headers: a zip bomb stops
  there), UTF-8 text (a byte-order mark is fine), fields of at most 128 KiB (the
  ``csv`` module's limit);
- the version: ``manifest.csv``'s ``oneroster.version``, else the headers (a
  ``roles.csv``, or a users.csv without ``role``, is 1.2);
- each file: required headers (``csv_columns.py``), required values, enumerations,
  dates, true/false, duplicate sourcedIds, duplicate usernames;
- references between files (``references.py``), once every row is valid -- a
  broken row would otherwise be reported again by each row that points to it.

Files may sit at the zip's root or in one folder.  Lines count as a text editor does
(the header is line 1; a quoted field with line breaks counts from its first line).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from typing import Any

from sqlalchemy import String

from campusgate.identity.roster import references, rows
from campusgate.identity.roster.bundle import Bundle, ImportRefused, Problem
from campusgate.identity.roster.csv_columns import FILES, BadValue, Column, columns_of
from campusgate.identity.roster.rows import Record

__all__ = ["MAX_ENTRIES", "MAX_PROBLEMS", "MAX_TOTAL_BYTES", "read_bundle"]

MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_ENTRIES = 64
#: Past this many problems the rest are not listed (one summary problem says so).
MAX_PROBLEMS = 1000
_MODES = ("bulk", "delta", "absent")
#: 1.2 roles that OneRoster 1.1 (and the ``roster`` claim) calls administrator.
_ADMINISTRATORS = frozenset({"districtAdministrator", "siteAdministrator",
                             "systemAdministrator"})


def read_bundle(data: bytes) -> Bundle:
    """The bundle in ``data`` (a zip), or ``ImportRefused`` with every problem found."""
    problems: list[Problem] = []
    texts = _unzip(data, problems)
    if problems:
        raise ImportRefused(problems)
    manifest = _manifest(texts.get("manifest"), problems)
    version = _version(manifest, texts)
    modes = _modes(manifest, texts, problems)
    parsed: dict[str, list[tuple[int, Record]]] = {}
    for stem in FILES:
        columns = columns_of(version, stem)
        if stem in modes and columns is not None:
            parsed[stem] = _parse_file(stem, texts[stem], columns, problems)
    if version == "1.2" and "users" in parsed and "roles" not in parsed:
        problems.append(Problem("roles.csv", 0, "a OneRoster 1.2 bundle with users.csv "
                                "needs roles.csv (it gives users their role)"))
    if "users" in parsed:
        _unique_usernames(parsed["users"], problems)
    if not problems:  # a broken row would make every reference to it a problem too
        references.check(parsed, modes, problems)
    if version == "1.2" and "users" in parsed and "roles" in parsed:
        _assign_roles(parsed["users"], parsed.pop("roles"), problems)
    parsed.pop("roles", None)
    modes.pop("roles", None)
    if problems:
        raise ImportRefused(_bounded(sorted(problems)))
    passwords: dict[str, str] = {}
    for _line, record in parsed.get("users", ()):
        password = record.pop("password", None)
        if password:
            passwords[record["sourced_id"]] = password
    return Bundle(version=version,
                  records={stem: [r for _, r in got] for stem, got in parsed.items()},
                  modes=modes, passwords=passwords,
                  lines={stem: {r["sourced_id"]: line for line, r in got}
                         for stem, got in parsed.items()})


def _bounded(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], Problem("bundle", 0, f"... and {rest} more")]


def _unzip(data: bytes, problems: list[Problem]) -> dict[str, str]:
    """Stem -> text of the CSV files that matter (within the limits)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if not i.is_dir()
                   and not i.filename.startswith("__MACOSX/")]
    except (zipfile.BadZipFile, ValueError):
        problems.append(Problem("bundle", 0, "not a zip file"))
        return {}
    if len(entries) > MAX_ENTRIES:
        problems.append(Problem("bundle", 0, f"{len(entries)} files in the zip; at most "
                                f"{MAX_ENTRIES} are accepted"))
        return {}
    wanted = {"manifest", *FILES}
    budget = MAX_TOTAL_BYTES
    texts: dict[str, str] = {}
    for entry in entries:
        name = entry.filename.rsplit("/", 1)[-1]
        stem = name[:-4] if name.lower().endswith(".csv") else ""
        if stem not in wanted:
            continue
        if stem in texts:
            problems.append(Problem(name, 0, "the zip holds two files of this name"))
            continue
        try:
            with archive.open(entry) as stream:
                raw = stream.read(budget + 1)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            problems.append(Problem(name, 0, f"cannot be unpacked ({exc})"))
            continue
        budget -= len(raw)
        if budget < 0:
            problems.append(Problem("bundle", 0, "more than "
                                    f"{MAX_TOTAL_BYTES // 2**20} MB unpacked; refused"))
            return {}
        try:
            texts[stem] = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            problems.append(Problem(name, line, "is not UTF-8 text"))
    return texts


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each CSV record; ``csv.Error`` for broken quoting or a
    field past the size limit."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for fields in reader:
        yield start, fields
        start = reader.line_num + 1


def _manifest(text: str | None, problems: list[Problem]) -> dict[str, tuple[int, str]]:
    """propertyName -> (line, value) of manifest.csv."""
    found: dict[str, tuple[int, str]] = {}
    if text is None:
        return found
    try:
        for line, fields in _rows(text):
            if line > 1 and len(fields) >= 2:
                found[fields[0].strip()] = (line, fields[1].strip())
    except csv.Error as exc:
        problems.append(Problem("manifest.csv", 0, f"is not valid CSV: {exc}"))
    return found


def _version(manifest: dict[str, tuple[int, str]], texts: dict[str, str]) -> str:
    declared = manifest.get("oneroster.version", (0, ""))[1]
    if declared.startswith("1.2"):
        return "1.2"
    if declared:
        return "1.1"
    users_header = texts.get("users", "").split("\n", 1)[0]
    if "roles" in texts or ("users" in texts and "role" not in
                            [h.strip() for h in users_header.split(",")]):
        return "1.2"
    return "1.1"


def _modes(manifest: dict[str, tuple[int, str]], texts: dict[str, str],
           problems: list[Problem]) -> dict[str, str]:
    """stem -> bulk or delta, for the files to import."""
    modes: dict[str, str] = {}
    for stem in FILES:
        line, mode = manifest.get(f"file.{stem}", (0, ""))
        mode = mode.lower()
        if not mode:
            if stem in texts:
                modes[stem] = "bulk"
            continue
        if mode not in _MODES:
            problems.append(Problem("manifest.csv", line, f"file.{stem} is {mode!r}, "
                                    "not one of bulk, delta, absent"))
        elif mode != "absent":
            if stem not in texts:
                problems.append(Problem("manifest.csv", line, f"file.{stem} is {mode} "
                                        f"but the zip has no {stem}.csv"))
            else:
                modes[stem] = mode
    return modes


def _parse_file(stem: str, text: str, columns: tuple[Column, ...],
                problems: list[Problem]) -> list[tuple[int, Record]]:
    name = f"{stem}.csv"
    out: list[tuple[int, Record]] = []
    seen: dict[str, int] = {}
    try:
        records = _rows(text)
        header = [h.strip() for h in next(records, (1, []))[1]]
        missing = [c.header for c in columns if c.required and c.header not in header]
        if missing:
            problems.append(Problem(name, 1, "missing column(s): " + ", ".join(missing)))
            return out
        by_header = {c.header: c for c in columns}
        widths = _widths(stem)
        for line, fields in records:
            if not any(f.strip() for f in fields):
                continue  # a blank line
            if len(fields) != len(header):
                problems.append(Problem(name, line, f"{len(fields)} fields; the header "
                                        f"has {len(header)}"))
                continue
            record = _record(name, line, header, fields, by_header, widths, problems)
            if record is None:
                continue
            first = seen.setdefault(record["sourced_id"], line)
            if first != line:
                problems.append(Problem(name, line, f"sourcedId {record['sourced_id']!r} "
                                        f"already on line {first}"))
                continue
            out.append((line, record))
    except csv.Error as exc:
        problems.append(Problem(name, 0, f"is not valid CSV: {exc}"))
    return out


def _widths(stem: str) -> dict[str, int]:
    """The longest value each string column of the stem's table holds."""
    if stem not in {k.name for k in rows.KINDS}:
        return {}
    return {c.name: c.type.length for c in rows.kind(stem).table.c
            if isinstance(c.type, String) and c.type.length}


def _record(name: str, line: int, header: list[str], fields: list[str],
            columns: dict[str, Column], widths: dict[str, int],
            problems: list[Problem]) -> Record | None:
    record: Record = {c.column: c.parse("") for c in columns.values()
                      if c.column is not None}
    extra: dict[str, Any] = {}
    ok = True
    for head, raw in zip(header, fields, strict=True):
        value = raw.strip()
        column = columns.get(head)
        if column is None:
            if head == "password":
                record["password"] = raw or None
            elif value:
                extra[head] = value
            continue
        if column.required and not value:
            problems.append(Problem(name, line, f"{head} is required"))
            ok = False
            continue
        width = widths.get(column.column or "")
        if width is not None and len(value) > width:
            problems.append(Problem(name, line, f"{head} is longer than {width} characters"))
            ok = False
            continue
        try:
            parsed = column.parse(value)
        except BadValue as exc:
            problems.append(Problem(name, line, f"{head}: {exc}"))
            ok = False
            continue
        if column.column is None:
            if parsed is not None:
                extra[head] = parsed
        else:
            record[column.column] = parsed
    record["extra"] = extra
    return record if ok else None


def _unique_usernames(users: list[tuple[int, Record]], problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for line, record in users:
        key = record["username"].lower()
        first = seen.setdefault(key, line)
        if first != line:
            problems.append(Problem("users.csv", line, f"username {record['username']!r} "
                                    f"already on line {first}"))


def _assign_roles(users: list[tuple[int, Record]], roles: list[tuple[int, Record]],
                  problems: list[Problem]) -> None:
    """OneRoster 1.2: a user's role is their primary role in roles.csv (else their
    first), their orgs those of their active roles; the roles themselves go to
    ``extra["roles"]``."""
    by_user: dict[str, list[Record]] = {}
    for _line, role in roles:
        if role["status"] == "active":
            by_user.setdefault(role["user_sourced_id"], []).append(role)
    for line, user in users:
        held = by_user.get(user["sourced_id"], [])
        if not held:
            if user["status"] == "active":
                problems.append(Problem("users.csv", line, "no active role in roles.csv"))
            user["role"], user["org_sourced_ids"] = "student", ()
            continue
        main = next((r for r in held if r["role_type"] == "primary"), held[0])
        role = main["role"]
        user["role"] = "administrator" if role in _ADMINISTRATORS else role.lower()
        user["org_sourced_ids"] = tuple(dict.fromkeys(r["org_sourced_id"] for r in held))
        user["extra"]["roles"] = [
            {"role": r["role"], "roleType": r["role_type"], "org": r["org_sourced_id"]}
            for r in held]
