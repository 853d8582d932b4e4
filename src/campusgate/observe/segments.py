"""Access-record segments: how the store sink keeps records, as plain code (no I/O).

A batch of records (what the writer hands the store sink, up to a second of traffic)
becomes **one** row of ``access_segments``: its records as one compressed body, plus
what lets a search pick segments without opening them.  One row per batch instead of
one per request, because SQLite's per-row insert of 36 bound values and two index
entries cost about 10 us of the log writer's CPU per request -- on a small machine the
same CPU the proxy serves from.  A segment costs a few us per record to encode and
insert (``benchmarks/store_sink_bench.py``).  (The same choice as Loki and the
ClickHouse/Parquet family: compressed chunks located by a small index.)

The body is compressed with zstd at level 1.  On the benchmark's records it took 226
ns per record against 360 for ISA-L's zlib level 1 (``isal``, itself about five times
cheaper than the standard library's), and kept 49 bytes of the record's 342 against 68;
a search decompresses it about 4.5 times faster.  Bodies written before 29 November
2026 are zlib streams and are read as well (:func:`inflate` tells them by zstd's
magic number).

- **body**: the records' values by column, one per field
  (:data:`~campusgate.observe.record.FIELDS` when written, named in the body): what
  the log writer holds (:class:`~campusgate.observe.batch.RecordBatch`), and like
  values next to each other compress better.  Since 29 November 2026 the columns
  are binary (format 3, :mod:`~campusgate.observe.columnar`), written in C from the
  batch's columns: ``zstd(columns_body(...))``.  Measured on the ``access-log``
  benchmark's records: 140 bytes a record before compression and 38 after, against
  342 and 49 for the JSON, and the log writer's whole loop went from about 21,500 to
  16,500 instructions a record (no JSON to make, a third of the bytes to compress);
  13,200 once the terms came from the distinct values the writing found and the id
  range from one C pass.  Ids kept as bytes (hex columns) then took the body to 108
  bytes a record before compression and 34 after, and zstd's time from 193 to 57 ns.
  Installs without the C helpers write JSON, ``zstd(orjson([FORMAT, names,
  columns]))`` (format 2); format 1 held ``rows``, one list per record.  All three
  are read.  A reader maps the names onto today's fields, so a field added later
  reads as None from older segments.
- **time_min_ms / time_max_ms**: the records' time range (epoch milliseconds).
- **rid_min / rid_max**: the range of the segment's *locatable* request ids: ids the
  gateway made (:func:`campusgate.proxy.request_ids.new_request_id`: 32 hex digits,
  the first 12 the time in milliseconds) whose time is within
  :data:`LOCATE_WINDOW_MS` of the segment's time range.  Such an id names its
  segment by time and range alone.  Every other id (a client's own ``X-Request-Id``) goes into
  ``access_request_ids`` (:attr:`Segment.loose_ids`), one row each.
- **terms**: ``\\n``-separated ``field=value`` of the distinct values of
  :data:`TERM_FIELDS` in the segment, framed by ``\\n``: a search for
  ``consumer=district-app`` skips with one ``LIKE`` every segment whose terms lack
  it.  Terms only rule segments out; the records themselves are always checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
import zstandard
from isal import isal_zlib

from campusgate.observe import columnar
from campusgate.observe._speedups import speedups
from campusgate.observe.batch import INDEX, RecordBatch
from campusgate.observe.record import FIELDS, AccessRecord

__all__ = ["FORMAT", "LOCATE_WINDOW_MS", "TERM_FIELDS", "Segment", "decode", "encode",
           "id_time_ms", "inflate", "parse", "term", "term_pattern"]

#: The JSON body's layout version (the first element of the encoded list): 2 holds
#: columns, 1 (written until November 2026, still read) rows.  Bodies in binary
#: columns are format 3 (:data:`campusgate.observe.columnar.FORMAT`).
FORMAT = 2
_ROWS = 1
#: zstd level: 1, the cheapest of zstd's proper levels (the negative ones keep
#: about twice the bytes).
LEVEL = 1
#: What a zstd frame starts with (a zlib stream starts with 0x78).
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: The longest body text a segment may claim (a damaged frame header could claim
#: any size; a batch of 100,000 records with bodies captured is far below).
MAX_TEXT = 1 << 31
#: A gateway-made id is located by its time when it is this close to its segment's.
LOCATE_WINDOW_MS = 2000
#: Fields whose distinct values a segment lists in ``terms`` (exact-match filters).
TERM_FIELDS: tuple[str, ...] = ("consumer", "route", "service", "upstream", "error",
                                "method", "status", "ai_model", "ai_provider")

#: What isal raises on data that is not zlib (its stub declares an instance).
_NOT_ZLIB = cast(type[Exception], isal_zlib.error)
_TIME, _REQUEST_ID = INDEX["time"], INDEX["request_id"]
_FIELDS_JSON = orjson.dumps(FIELDS)
_MODULE = speedups()  # writes binary columns, unless not built or turned off
_TERM_INDEXES = [INDEX[name] for name in TERM_FIELDS]
#: What :func:`~campusgate.proxy.request_ids.new_request_id` makes.
_ID_LENGTH = 32
_GATEWAY_ID = re.compile(f"[0-9a-f]{{{_ID_LENGTH}}}")
_HEX_DIGITS = b"0123456789abcdef"
#: The largest time 12 hex digits hold.
_ID_TIME_MAX = (1 << 48) - 1


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``access_segments`` row, and the ``access_request_ids`` rows it needs."""

    time_min_ms: int
    time_max_ms: int
    records: int
    rid_min: str | None
    rid_max: str | None
    terms: str
    body: bytes
    #: ``(request_id, time_ms)`` of the records whose id is not locatable.
    loose_ids: list[tuple[str, int]]


def id_time_ms(request_id: str) -> int | None:
    """The time (epoch ms) a gateway-made request id carries; None for any other."""
    if _GATEWAY_ID.fullmatch(request_id) is None:
        return None
    return int(request_id[:12], 16)


def term(name: str, value: Any) -> str:
    """How ``name=value`` is written in ``terms`` (a newline in a value is a space)."""
    return f"{name}={value}".replace("\n", " ")


def term_pattern(name: str, value: Any) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching terms that hold ``name=value``."""
    text = term(name, value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%\n{text}\n%"


def encode(batch: Sequence[AccessRecord]) -> Segment:
    """The segment of ``batch`` (not empty).

    Built for CPU per record (the log writer shares the proxy's CPU): the batch's
    columns (:class:`~campusgate.observe.batch.RecordBatch`) are read whole by
    C-level calls: ``min`` and ``max`` of the times, one pass over the ids
    (:func:`_gateway_range`), and the body written by one call that also hands
    back the few distinct values of the columns the terms list (:func:`_body`);
    only a batch holding ids that are not locatable checks its ids one by one."""
    if not batch:
        raise ValueError("a segment holds at least one record")
    columns = RecordBatch.of(batch).columns
    times = columns[_TIME]
    time_min_ms, time_max_ms = int(min(times) * 1000), int(max(times) * 1000)
    rid_min, rid_max, loose = _locate(columns[_REQUEST_ID], times, time_min_ms,
                                      time_max_ms)
    text, distinct = _body(columns)
    # A compressor per segment (a few us): one must not be used by two threads at
    # once, and every store sink encodes in its own.
    body = zstandard.ZstdCompressor(level=LEVEL).compress(text)
    return Segment(time_min_ms, time_max_ms, len(times), rid_min, rid_max,
                   _terms(columns, distinct), body, loose)


def body_text(columns: Sequence[Sequence[Any]]) -> bytes:
    """A segment body before compression: binary columns (:mod:`~campusgate.
    observe.columnar`, written in C) or, without the C module, JSON (format 2)."""
    return _body(columns)[0]


def _body(columns: Sequence[Sequence[Any]],
          ) -> tuple[bytes, Sequence[Sequence[Any] | None] | None]:
    """:func:`body_text`, and each column's distinct values when writing it found
    them (binary columns: a column of a few distinct values is written as a table
    of them), else None."""
    if _MODULE is not None:
        text, distinct = _MODULE.columns_body(columns, _FIELDS_JSON, orjson.dumps)
        return text, distinct
    return orjson.dumps([FORMAT, FIELDS, columns]), None


def _locate(ids: Sequence[str], times: Sequence[float], time_min_ms: int, time_max_ms: int,
            ) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """``(rid_min, rid_max, loose_ids)`` of a segment's ids.

    An id is located when :func:`id_time_ms` reads a time from it within
    :data:`LOCATE_WINDOW_MS` of the segment's time range: exactly what a lookup asks
    of the segment (``time_max_ms >= t - W and time_min_ms <= t + W``), so a search
    for it finds the segment.  Gateway-made ids are 32 lowercase hex digits, time
    first, so "its time is in [low, high]" is the string test ``low <= id < high``
    (12-digit bounds; ``high`` ends in ``g``, above any hex digit)."""
    low = format(min(max(time_min_ms - LOCATE_WINDOW_MS, 0), _ID_TIME_MAX), "012x")
    high = format(min(max(time_max_ms + LOCATE_WINDOW_MS, 0), _ID_TIME_MAX), "012x") + "g"
    span = _gateway_range(ids)
    if span is not None and low <= span[0] and span[1] < high:
        return span[0], span[1], []  # every id gateway-made, in time: the usual batch
    located: list[str] = []
    loose: list[tuple[str, int]] = []
    for request_id, moment in zip(ids, times, strict=True):
        if low <= request_id < high and _GATEWAY_ID.fullmatch(request_id) is not None:
            located.append(request_id)
        else:
            loose.append((request_id, int(moment * 1000)))
    if not located:
        return None, None, loose
    return min(located), max(located), loose


def _gateway_range(ids: Sequence[str]) -> tuple[str, str] | None:
    """``(min(ids), max(ids))`` when every id is 32 lowercase hex digits, else None
    (in C when built: one pass, no string made)."""
    if _MODULE is not None:
        span: tuple[str, str] | None = _MODULE.id_range(ids)
        return span
    joined = "".join(ids)
    if (min(map(len, ids)) == _ID_LENGTH and len(joined) == _ID_LENGTH * len(ids)
            and _lowercase_hex(joined)):
        return min(ids), max(ids)
    return None


def _lowercase_hex(text: str) -> bool:
    """``text`` is only the digits 0-9a-f (the ids of a batch joined: ``bytes.
    translate`` deletes them in C, about 16 ns per id against 130 for a regular
    expression)."""
    return text.isascii() and not text.encode("ascii").translate(None, _HEX_DIGITS)


def _terms(columns: Sequence[Sequence[Any]],
           distinct: Sequence[Sequence[Any] | None] | None = None) -> str:
    """The ``terms`` text: each distinct ``field=value`` of :data:`TERM_FIELDS`,
    sorted (from ``distinct[index]``, a column's distinct values, where known)."""
    parts = ["\n"]
    for name, index in zip(TERM_FIELDS, _TERM_INDEXES, strict=True):
        values = distinct[index] if distinct is not None else None
        parts.extend(sorted({term(name, value) + "\n"
                             for value in set(columns[index] if values is None else values)
                             if value is not None}))
    return "".join(parts)


def inflate(body: bytes) -> bytes:
    """A segment body's text (binary columns or JSON) from a zstd frame, or (written
    before 29 November 2026) a zlib stream; ``ValueError`` when it is neither, or
    damaged."""
    if body[:4] == ZSTD_MAGIC:
        try:
            size = zstandard.frame_content_size(body)
            if not 0 <= size <= MAX_TEXT:
                raise ValueError(f"a zstd frame that holds {size} bytes")
            text: bytes = zstandard.ZstdDecompressor().decompress(body)
        except (zstandard.ZstdError, ValueError) as exc:
            raise ValueError(f"not an access-record segment: {exc}") from None
        return text
    try:
        return isal_zlib.decompress(body)
    except _NOT_ZLIB as exc:
        raise ValueError(f"not an access-record segment: {exc}") from None


def parse(text: bytes) -> list[list[Any]]:
    """The records of a segment body's text (:func:`inflate`: binary columns or
    JSON), each a list of values in ``FIELDS`` order (a field the segment does not
    have is None).  Text that is not a segment raises ``ValueError``."""
    if text.startswith(columnar.MAGIC):
        names, columns = columnar.read(text)
        return _in_fields(names, list(map(list, zip(*columns, strict=True))))
    try:
        layout, names, values = orjson.loads(text)
        if layout not in (FORMAT, _ROWS):
            raise ValueError(f"segment format {layout!r} is not {FORMAT} or {_ROWS}")
        if not (isinstance(names, list) and isinstance(values, list)):
            raise ValueError("it holds no field names and values")
        if layout == FORMAT:
            if len(values) != len(names) or len(set(map(len, values))) > 1:
                raise ValueError("its columns do not match its field names")
            values = list(map(list, zip(*values, strict=True)))  # rows, read rarely
        elif not set(map(len, values)) <= {len(names)}:
            raise ValueError("its rows do not match its field names")
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"not an access-record segment: {exc}") from None
    return _in_fields(names, values)


def _in_fields(names: Sequence[str], rows: list[list[Any]]) -> list[list[Any]]:
    """``rows`` (values in ``names`` order) with their values in ``FIELDS`` order."""
    if tuple(names) == FIELDS:
        return rows
    where = {name: index for index, name in enumerate(names)}
    picks = [where.get(name) for name in FIELDS]
    return [[None if index is None else row[index] for index in picks] for row in rows]


def decode(body: bytes) -> list[list[Any]]:
    """The records of a segment's body (:func:`inflate` then :func:`parse`); a
    malformed body raises ``ValueError``."""
    return parse(inflate(body))
