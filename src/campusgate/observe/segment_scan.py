"""Answering a log query over ``access_segments``: which segments to open, which of
their records match, and one exact newest-first order across them.

Segments (:mod:`campusgate.observe.segments`) are picked in SQL by what their row
says without opening them -- time range, ``terms`` for the exact filters of
:data:`~campusgate.observe.segments.TERM_FIELDS`, the request-id range and side
table -- then decoded and every filter applied to every record in Python: the
prefilter only rules segments out, so a search is exact whatever ``terms`` holds.

Segments overlap in time (a batch holds the requests that *finished* in a second; a
record's time is when its request *arrived*), so reading them one after another is
not newest first.  The order key of a record is ``(time_ms, segment id, index in
segment)``, descending.  Segments are read by ``time_max_ms`` descending; before
the next one, whose ``time_max_ms`` is ``T``, is decoded, every held record newer
than ``T`` is final (no segment still to come holds one that new) and goes out.
:class:`NewestFirst` is that merge, as plain code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from heapq import heappop, heappush, heapreplace
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from campusgate.observe import columnar
from campusgate.observe.record import FIELDS
from campusgate.observe.segments import (
    LOCATE_WINDOW_MS,
    TERM_FIELDS,
    id_time_ms,
    inflate,
    parse,
    term_pattern,
)
from campusgate.store.access_tables import access_request_ids, access_segments

if TYPE_CHECKING:
    from campusgate.observe.logsearch import LogQuery

__all__ = ["FETCH", "Key", "NewestFirst", "body_filter", "candidates", "located_segments",
           "matching", "scan"]

log = logging.getLogger("campusgate.observe")

#: ``(time_ms, segment id, index in segment)``: a record's place, newest is largest.
Key = tuple[int, int, int]
#: A decoded record: its values in ``record.FIELDS`` order.
Row = list[Any]
#: Segments fetched per round trip while scanning: at most this many bodies are held.
FETCH = 4

_INDEX = {name: index for index, name in enumerate(FIELDS)}
_TIME = _INDEX["time"]
_STATUS = _INDEX["status"]
_TEXT = tuple(_INDEX[name] for name in ("path", "error", "user_agent"))
_time_of = itemgetter(0)
#: Bytes a text needle may hold to be looked for in a segment's JSON text as it is.
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
#: Where a body in binary columns keeps its flags.
_FLAGS = 5


def candidates(query: LogQuery, segment_ids: Sequence[int] | None = None) -> Select[Any]:
    """The segments that may hold a match of ``query`` (only ``segment_ids`` when
    given), ``time_max_ms`` then ``id`` descending: the order the merge needs."""
    t = access_segments.c
    where: list[ColumnElement[bool]] = []
    if query.since_ms is not None:
        where.append(t.time_max_ms >= query.since_ms)
    if query.until_ms is not None:
        where.append(t.time_min_ms < query.until_ms)
    if query.after is not None:
        where.append(t.time_min_ms <= query.after[0])
    patterns = [term_pattern(name, value) for name, value in query.equals.items()
                if name in TERM_FIELDS]
    if query.status is not None:
        patterns.append(term_pattern("status", query.status))
    elif query.status_class is not None:
        patterns.append(f"%\nstatus={query.status_class}__\n%")
    where += [t.terms.like(pattern, escape="\\") for pattern in patterns]
    if segment_ids is not None:
        where.append(t.id.in_(segment_ids))
    return (select(t.id, t.time_max_ms, t.body).where(*where)
            .order_by(t.time_max_ms.desc(), t.id.desc()))


def body_filter(query: LogQuery) -> Callable[[bytes], bool] | None:
    """Whether a segment's decompressed body may hold a match of ``query``; None
    when that cannot be told without parsing it.

    Parsing is most of the cost of reading a segment (about 10 ms for 5,000 records
    against 1 ms to decompress), so filters that ``terms`` does not cover (trace id,
    client address, text) first look for their value in the body.  In JSON text
    (format 2) a string equal to ``value`` is written as ``orjson.dumps(value)``; in
    binary columns (format 3, :mod:`~campusgate.observe.columnar`) as its bytes, or
    a hex id as its value's bytes in a hex column (:func:`~campusgate.observe.
    columnar.may_hold`); only strings of plain printable ASCII are looked for (a
    column written as JSON would escape the others; numbers are not looked for).
    A text needle of plain printable ASCII (no quote or backslash, which JSON
    escapes) is written verbatim, up to ASCII case, in a body whose strings are
    all ASCII (hex columns hold ids, which text search does not read).  Never rules out a
    segment that matches."""
    exact = {name: value for name, value in query.equals.items() if name not in TERM_FIELDS}
    needles = [orjson.dumps(value) for value in exact.values()]
    #: In binary columns a string is its UTF-8 bytes, or a hex id its bytes
    #: (``columnar.may_hold``); a number cannot be told apart.  (JSON columns escape
    #: quotes and backslashes: those values are not looked for.)
    raw_values = [value for value in exact.values() if isinstance(value, str)
                  and _PLAIN.issuperset(value.encode())]
    text = query.text.lower().encode() if query.text else None
    if text is not None and not _PLAIN.issuperset(text):
        text = None
    if not needles and text is None:
        return None
    hex_text = query.text is not None and columnar.in_hex_value(query.text.lower())

    def may_match(raw: bytes) -> bool:
        if raw.startswith(columnar.MAGIC):
            if any(not columnar.may_hold(raw, value) for value in raw_values):
                return False
            # (a text of hex digits only may be inside a hex column's value)
            ascii_only = (len(raw) > _FLAGS and not raw[_FLAGS] & columnar.FLAG_NON_ASCII
                          and not hex_text)
        else:
            if any(needle not in raw for needle in needles):
                return False
            ascii_only = raw.isascii()
        return text is None or not ascii_only or text in raw.lower()

    return may_match


def matching(query: LogQuery, after: Key | None, segment_id: int,
             rows: Sequence[Row]) -> list[tuple[int, int, Row]]:
    """``(time_ms, index, row)`` of the records of a segment that match every filter
    of ``query`` and come after the cursor ``after``, in index order.

    One filter at a time over the surviving indexes (list comprehensions): the
    exact filters usually leave few, and a closure called per record cost as much
    as decoding the segment."""
    if after is None and not (query.equals or query.status is not None
                              or query.status_class is not None or query.text
                              or query.since_ms is not None or query.until_ms is not None):
        times = [int(row[_TIME] * 1000) for row in rows]
        return list(zip(times, range(len(rows)), rows, strict=True))
    picks: Sequence[int] = range(len(rows))
    for name, value in query.equals.items():
        field = _INDEX[name]
        picks = [i for i in picks if rows[i][field] == value]
    statuses: range | None = None
    if query.status is not None:
        statuses = range(query.status, query.status + 1)
    elif query.status_class is not None:
        statuses = range(query.status_class * 100, query.status_class * 100 + 100)
    if statuses is not None:
        picks = [i for i in picks if rows[i][_STATUS] in statuses]
    if query.text:
        needle = query.text.lower()
        picks = [i for i in picks if any(isinstance(rows[i][field], str)
                                         and needle in rows[i][field].lower()
                                         for field in _TEXT)]
    since, until = query.since_ms, query.until_ms
    out: list[tuple[int, int, Row]] = []
    for index in picks:
        row = rows[index]
        time_ms = int(row[_TIME] * 1000)
        if ((since is not None and time_ms < since) or (until is not None and time_ms >= until)
                or (after is not None and (time_ms, segment_id, index) >= after)):
            continue
        out.append((time_ms, index, row))
    return out


class NewestFirst:
    """Records of several segments, taken out newest first (by :data:`Key`).

    Each segment's records are sorted once (they are nearly in order already: cheap)
    and the segments merged through a heap of their next records, so taking ``n``
    records costs ``n`` heap steps, not a heap of every record held."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, int, list[tuple[int, int, Row]]]] = []

    def add(self, segment_id: int, records: list[tuple[int, int, Row]]) -> None:
        """Hold ``records`` (``(time_ms, index, row)`` in index order) of a segment."""
        if not records:
            return
        run = records[::-1]  # index descending, so records of the same time stay so
        run.sort(key=_time_of, reverse=True)
        time_ms, index, _ = run[0]
        heappush(self._heap, (-time_ms, -segment_id, -index, 0, run))

    def take(self, newer_than: int | None = None) -> Iterator[tuple[Key, Row]]:
        """Held records newest first: those with ``time_ms > newer_than``, or all."""
        heap = self._heap
        while heap:
            neg_time, neg_segment, neg_index, at, run = heap[0]
            if newer_than is not None and -neg_time <= newer_than:
                return
            row = run[at][2]
            at += 1
            if at < len(run):
                time_ms, index, _ = run[at]
                heapreplace(heap, (-time_ms, neg_segment, -index, at, run))
            else:
                heappop(heap)
            yield (-neg_time, -neg_segment, -neg_index), row


async def located_segments(conn: AsyncConnection, request_id: str) -> list[int]:
    """The segments that may hold a record of ``request_id``: those the side table
    names, and for an id the gateway made, those whose id range and time cover it."""
    r, t = access_request_ids.c, access_segments.c
    found = set((await conn.execute(
        select(r.segment_id).where(r.request_id == request_id))).scalars())
    at = id_time_ms(request_id)
    if at is not None:
        found.update((await conn.execute(select(t.id).where(
            t.time_max_ms >= at - LOCATE_WINDOW_MS, t.time_min_ms <= at + LOCATE_WINDOW_MS,
            t.rid_min <= request_id, t.rid_max >= request_id))).scalars())
    return sorted(found)


async def scan(conn: AsyncConnection,
               query: LogQuery) -> AsyncGenerator[tuple[Key, Row], None]:
    """Every record matching ``query`` after its cursor, newest first, read from the
    database :data:`FETCH` segments at a time (stop iterating to stop reading)."""
    segment_ids = None
    if "request_id" in query.equals:
        segment_ids = await located_segments(conn, query.equals["request_id"])
        if not segment_ids:
            return
    may_match = body_filter(query)
    merge = NewestFirst()
    result = await conn.stream(candidates(query, segment_ids)
                               .execution_options(yield_per=FETCH))
    try:
        async for segment_id, time_max_ms, body in result:
            for item in merge.take(newer_than=time_max_ms):
                yield item
            try:
                text = inflate(body)
                if may_match is not None and not may_match(text):
                    continue
                rows = parse(text)
            except ValueError as exc:
                log.warning("access segment %d is unreadable, skipped: %s", segment_id, exc)
                continue
            # the cursor only cuts into segments that reach up to it
            after = query.after if query.after and time_max_ms >= query.after[0] else None
            merge.add(segment_id, matching(query, after, segment_id, rows))
        for item in merge.take():
            yield item
    finally:
        await result.close()
