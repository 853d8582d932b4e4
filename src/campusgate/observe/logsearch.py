"""Log search and CSV export over the access-record segments.

The query side is plain code: :func:`parse_query` turns request parameters into a
:class:`LogQuery` (or an :class:`InvalidFilter` naming the parameter), and
:func:`record_json` / :func:`csv_rows` give a record the shape the API shows.  How a
query is answered over ``access_segments`` (which segments, which records, one
newest-first order) is :mod:`campusgate.observe.segment_scan`; :class:`LogSearch` is
the thin async shell that runs it (reads may use SQLAlchemy: they are not on the
write path).

Results are newest first, by ``(time_ms, segment, index in segment)`` descending; a
page ends with an opaque cursor that continues after its last record (keyset
pagination: stable while new records arrive).

``text`` matches a case-insensitive substring of the path, the error class or the
user agent (``%`` and ``_`` are literal).  ``status`` is a code (``404``) or a class
(``5xx``).  ``since``/``until`` are epoch seconds, ISO 8601 (UTC unless an offset is
given), or a duration ago (``15m``, ``7d``); ``since`` is inclusive, ``until``
exclusive.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.observe.record import FIELDS
from campusgate.observe.segment_scan import Key, scan
from campusgate.store.access_tables import ACCESS_COLUMNS

__all__ = ["CSV_COLUMNS", "FILTERS", "InvalidFilter", "LogPage", "LogQuery", "LogSearch",
           "csv_rows", "parse_query", "record_json"]

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
#: Rows a CSV export holds at most, and by default.
MAX_EXPORT_ROWS = 1_000_000
DEFAULT_EXPORT_ROWS = 100_000
#: Exact-match filters: parameter -> column.
_EXACT = ("request_id", "trace_id", "consumer", "route", "service", "upstream", "error",
          "method", "client_ip", "ai_model", "ai_provider")
FILTERS = (*_EXACT, "status", "since", "until", "text", "cursor", "limit")
_STATUS = re.compile(r"^(?:([1-5])xx|([1-5]\d\d))$", re.IGNORECASE)
_AGO = re.compile(r"^\d+(?:s|m|h|d|w|mo)$")
#: CSV: every column, with ``time`` as ISO 8601 instead of ``time_ms``.
CSV_COLUMNS: tuple[str, ...] = ("time", *ACCESS_COLUMNS[1:])


class InvalidFilter(ValueError):
    """A search parameter that cannot be used: a 400 naming it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True, slots=True)
class LogQuery:
    equals: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None
    #: 1..5 for 1xx..5xx.
    status_class: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    text: str | None = None
    #: Continue after this ``(time_ms, segment id, index in segment)``.
    after: Key | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class LogPage:
    items: list[dict[str, Any]]
    #: Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


def encode_cursor(key: Key) -> str:
    """The cursor after the record at ``key``: opaque to clients."""
    text = ".".join(str(part) for part in key)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        time_ms, segment_id, index = raw.split(".")
        return int(time_ms), int(segment_id), int(index)
    except (ValueError, binascii.Error):
        raise InvalidFilter("cursor", "not a cursor this API returned") from None


def parse_time(name: str, value: str, now: float) -> int:
    """Epoch milliseconds of ``value``: epoch seconds, ISO 8601, or a duration ago."""
    value = value.strip()
    try:
        return int(float(value) * 1000)
    except ValueError:
        pass
    if _AGO.match(value):
        from campusgate.state.ratelimit import parse_window

        return int((now - parse_window(value)) * 1000)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFilter(name, f"{value!r} is not epoch seconds, an ISO 8601 time or "
                                  "a duration ago such as 15m or 7d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_query(params: Mapping[str, str | None], now: float, *,
                default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT) -> LogQuery:
    """The query of request ``params`` (None or empty values are absent)."""
    given = {k: v for k, v in params.items() if v not in (None, "")}
    equals = {k: given[k] for k in _EXACT if k in given}
    status = status_class = None
    if "status" in given:
        match = _STATUS.match(given["status"].strip())
        if match is None:
            raise InvalidFilter("status", "a status code (404) or class (5xx)")
        status_class = int(match[1]) if match[1] else None
        status = int(match[2]) if match[2] else None
    since = parse_time("since", given["since"], now) if "since" in given else None
    until = parse_time("until", given["until"], now) if "until" in given else None
    if since is not None and until is not None and since >= until:
        raise InvalidFilter("until", "must be later than since")
    limit = default_limit
    if "limit" in given:
        text = str(given["limit"])
        if not text.isdigit() or not 1 <= int(text) <= max_limit:
            raise InvalidFilter("limit", f"a whole number from 1 to {max_limit}")
        limit = int(text)
    search = given.get("text")
    if search is not None and len(search) > 200:
        raise InvalidFilter("text", "at most 200 characters")
    after = decode_cursor(given["cursor"]) if "cursor" in given else None
    return LogQuery(equals, status, status_class, since, until, search, after, limit)


def _iso(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


_TIME = FIELDS.index("time")
_REDACTIONS = FIELDS.index("ai_redactions")
assert FIELDS[1:] == ACCESS_COLUMNS[1:]


def record_json(row: Sequence[Any]) -> dict[str, Any]:
    """A record (its values in ``FIELDS`` order) as the API shows it: ``time`` in
    ISO 8601, then the other fields (``ai_redactions`` an object)."""
    out: dict[str, Any] = {"time": _iso(int(row[_TIME] * 1000))}
    out.update(zip(FIELDS[1:], row[1:], strict=True))
    return out


#: A cell a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_rows(rows: Sequence[Sequence[Any]], header: bool = False) -> str:
    """CSV text of ``rows`` (records' values in ``FIELDS`` order): every column,
    ``ai_redactions`` as JSON, text that could be a formula prefixed with ``'``."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    if header:
        out.writerow(CSV_COLUMNS)
    for row in rows:
        cells: list[Any] = [_iso(int(row[_TIME] * 1000))]
        for index in range(1, len(FIELDS)):
            value = row[index]
            if index == _REDACTIONS and value is not None:
                value = json.dumps(value)
            elif isinstance(value, str) and value.startswith(_FORMULA_START):
                value = "'" + value
            cells.append(value)
        out.writerow(cells)
    return buffer.getvalue()


class LogSearch:
    """Runs log queries on an engine over the store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, query: LogQuery) -> LogPage:
        """One page of ``query``: ``query.limit`` records, and a cursor when more
        match (the scan reads one record past the page to know)."""
        items: list[dict[str, Any]] = []
        last: Key | None = None
        more = False
        async with self.engine.connect() as conn, aclosing(scan(conn, query)) as records:
            async for key, row in records:
                if len(items) == query.limit:
                    more = True
                    break
                items.append(record_json(row))
                last = key
        return LogPage(items, encode_cursor(last) if more and last is not None else None)

    async def by_request_id(self, request_id: str) -> list[dict[str, Any]]:
        """Every record of ``request_id``, newest first (a client may reuse its id).
        Only the segments that can hold it are opened (``segment_scan.located_segments``)."""
        page = await self.page(LogQuery({"request_id": request_id}, limit=MAX_LIMIT))
        return page.items

    async def export_csv(self, query: LogQuery, max_rows: int,
                         chunk: int = 1000) -> AsyncIterator[str]:
        """The CSV export, header first, then ``chunk`` rows at a time as the scan
        reads them (never the whole result in memory), ``max_rows`` rows at most."""
        yield csv_rows([], header=True)
        part: list[Sequence[Any]] = []
        sent = 0
        async with self.engine.connect() as conn, aclosing(scan(conn, query)) as records:
            async for _, row in records:
                part.append(row)
                sent += 1
                if len(part) == chunk:
                    yield csv_rows(part)
                    part = []
                if sent >= max_rows:
                    break
        if part:
            yield csv_rows(part)
