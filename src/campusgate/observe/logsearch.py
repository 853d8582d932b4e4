"""Log search and CSV export over the ``access_records`` table.

The query side is plain code: :func:`parse_query` turns request parameters into a
:class:`LogQuery` (or an :class:`InvalidFilter` naming the parameter), and
:func:`statement` builds the SQLAlchemy Core ``SELECT`` for it.  :class:`LogSearch` is
the thin async shell that runs it (reads may use SQLAlchemy: they are not on the
write path).

Results are newest first, ``(time_ms, id)`` descending; a page ends with an opaque
cursor that continues after its last row (keyset pagination: stable while new
records arrive, and as fast for page 1,000 as for page 1).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.store.access_tables import ACCESS_COLUMNS, access_records

__all__ = ["CSV_COLUMNS", "FILTERS", "InvalidFilter", "LogPage", "LogQuery", "LogSearch",
           "csv_rows", "parse_query", "record_json", "statement"]

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
_TEXT_COLUMNS = ("path", "error", "user_agent")
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
    #: Continue after this ``(time_ms, id)``.
    after: tuple[int, int] | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class LogPage:
    items: list[dict[str, Any]]
    #: Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


def encode_cursor(time_ms: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{time_ms}.{row_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        time_ms, row_id = raw.split(".")
        return int(time_ms), int(row_id)
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


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def statement(query: LogQuery, limit: int | None = None) -> Select[Any]:
    """``SELECT *`` of the matching rows, newest first, ``limit`` rows (the query's
    own limit plus one when None: the extra row tells whether a next page exists)."""
    t = access_records.c
    where: list[ColumnElement[bool]] = [t[name] == value for name, value in query.equals.items()]
    if query.status is not None:
        where.append(t.status == query.status)
    if query.status_class is not None:
        where += [t.status >= query.status_class * 100, t.status < query.status_class * 100 + 100]
    if query.since_ms is not None:
        where.append(t.time_ms >= query.since_ms)
    if query.until_ms is not None:
        where.append(t.time_ms < query.until_ms)
    if query.text:
        pattern = _like(query.text)
        where.append(or_(*(t[name].ilike(pattern, escape="\\") for name in _TEXT_COLUMNS)))
    if query.after is not None:
        where.append(tuple_(t.time_ms, t.id) < tuple_(*query.after))
    return (select(access_records).where(*where)
            .order_by(t.time_ms.desc(), t.id.desc())
            .limit(query.limit + 1 if limit is None else limit))


def _iso(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def record_json(row: RowMapping) -> dict[str, Any]:
    """One row as the API shows it: ``time`` in ISO 8601, redactions as an object."""
    out: dict[str, Any] = {"time": _iso(row["time_ms"])}
    for name in ACCESS_COLUMNS[1:]:
        out[name] = row[name]
    if out["ai_redactions"] is not None:
        out["ai_redactions"] = json.loads(out["ai_redactions"])
    return out


#: A cell a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_rows(rows: Sequence[RowMapping], header: bool = False) -> str:
    """CSV text of ``rows`` (every column; text that could be a formula is prefixed
    with ``'``)."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    if header:
        out.writerow(CSV_COLUMNS)
    for row in rows:
        cells: list[Any] = [_iso(row["time_ms"])]
        for name in CSV_COLUMNS[1:]:
            value = row[name]
            if isinstance(value, str) and value.startswith(_FORMULA_START):
                value = "'" + value
            cells.append(value)
        out.writerow(cells)
    return buffer.getvalue()


class LogSearch:
    """Runs log queries on an engine over the store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, query: LogQuery) -> LogPage:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement(query))).mappings().all()
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        cursor = encode_cursor(rows[-1]["time_ms"], rows[-1]["id"]) if more else None
        return LogPage([record_json(row) for row in rows], cursor)

    async def by_request_id(self, request_id: str) -> list[dict[str, Any]]:
        """Every record of ``request_id``, newest first (a client may reuse its id)."""
        page = await self.page(LogQuery({"request_id": request_id}, limit=MAX_LIMIT))
        return page.items

    async def export_csv(self, query: LogQuery, max_rows: int,
                         chunk: int = 1000) -> AsyncIterator[str]:
        """The CSV export, header first, in chunks of ``chunk`` rows, streamed from
        the database (never the whole result in memory), ``max_rows`` rows at most."""
        yield csv_rows([], header=True)
        async with self.engine.connect() as conn:
            result = await conn.stream(statement(query, limit=max_rows)
                                       .execution_options(yield_per=chunk))
            async for part in result.mappings().partitions(chunk):
                yield csv_rows(part)
