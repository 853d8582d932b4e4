"""The roll-up arithmetic, without I/O: access records in, ``rollups`` rows out.

:class:`RollupState` sums a batch's records into a per-minute *delta* keyed by the
records' full dimensions (cheap: the batch's columns grouped, each group summed by
C-level ``sum`` and its sorted latencies counted per bucket; see
:meth:`RollupState.add`).  :meth:`RollupState.take` then folds the delta --
per changed key, not per record -- into the cumulative rows of every period (minute,
hour, day) and every grouping set (:data:`GROUPINGS`), and :meth:`RollupState.commit`
hands back the cumulative value of each changed row, to be upserted.  Writing
cumulative values (not increments) makes a retried or repeated write harmless; the
shell (:mod:`campusgate.observe.rollup`) clears the changed set only once a write
succeeded.

Rows of buckets that ended long ago are evicted from memory (:data:`HORIZONS`).  A
late record for such a bucket -- a ten-minute stream is recorded at its arrival time
-- makes its row *missing*: :meth:`RollupState.take` lists it, the shell reads what
the store holds for it, and :meth:`RollupState.commit` adds that back before writing.

Definitions (also in docs/observability.md): a request is an *error* when its status
is 5xx or 0 (no answer sent), or when it carries an error class with a status below
400 (e.g. a stream cut after its 200); client errors (4xx) are not errors, they show
in the status breakdown.  *Rate-limited*: ``rate_limit == "limited"``.  The *model*
dimension is the model name the client asked for (``ai_model``).  Cost is summed
exactly as integer nano-USD.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from campusgate.observe.batch import FEW, INDEX, Columns, Group, RecordBatch, group, measured, pick
from campusgate.observe.histogram import (
    Histogram,
    bucket_of,
    count_into,
    decode,
    encode,
    merge_into,
)
from campusgate.observe.record import AccessRecord

__all__ = [
    "DIMS",
    "FULL",
    "GROUPINGS",
    "HORIZONS",
    "PERIODS",
    "Key",
    "RollupState",
    "Take",
    "is_error",
    "nanousd",
    "project",
    "row_values",
    "stored_row",
]

PERIODS = (60, 3600, 86400)
#: Dimension -> its bit in ``rollups.dims``; ``status`` also covers the error class.
DIMS: dict[str, int] = {"route": 1, "service": 2, "consumer": 4, "model": 8, "upstream": 16,
                        "status": 32}
FULL = 63
#: The grouping sets written: every dimension, the total, and one per dimension.
GROUPINGS = (FULL, 0, 1, 2, 4, 8, 16, 32)
#: How long after a bucket's period ends its rows stay in memory (seconds).
HORIZONS = {60: 900, 3600: 3600, 86400: 86400}

#: ``(period, dims, bucket, route, service, consumer, model, upstream, status, error)``.
Key = tuple[int, int, int, str, str, str, str, str, int, str]
#: ``(minute, route, service, consumer, model, upstream, status, error)``.
_DeltaKey = tuple[int, str, str, str, str, str, int, str]
#: The ``rollups`` value columns in table order: [requests, errors, rate_limited,
#: bytes_in, bytes_out, input_tokens, output_tokens, cached_tokens, cost_nanousd,
#: latency_sum_ms, upstream_requests, upstream_sum_ms, latency histogram, upstream
#: latency histogram].
Row = list[Any]
_HIST = 12
_NANO = Decimal(10) ** 9
#: A record's dimensions as recorded (route, service, consumer, model, upstream,
#: status, error; None kept): what :meth:`RollupState.add` groups by.
_DIM_INDEXES = [INDEX[name] for name in ("route", "service", "consumer", "ai_model",
                                         "upstream", "status", "error")]
_TIME, _RATE_LIMIT, _BYTES_IN, _BYTES_OUT, _LATENCY, _UPSTREAM_LATENCY = (
    INDEX[name] for name in ("time", "rate_limit", "bytes_in", "bytes_out", "latency_ms",
                             "upstream_latency_ms"))
_AI_INDEXES = [INDEX[name] for name in ("ai_input_tokens", "ai_output_tokens",
                                        "ai_cached_tokens", "ai_cost")]
#: What :func:`_add_each` reads of a record.
_EACH_INDEXES = [_TIME, *_DIM_INDEXES, _RATE_LIMIT, _BYTES_IN, _BYTES_OUT, _LATENCY,
                 _UPSTREAM_LATENCY]


def is_error(status: int, error: str) -> bool:
    return status >= 500 or status == 0 or (bool(error) and status < 400)


def nanousd(cost: str) -> int:
    """A decimal USD string as integer nano-USD (rounded half-even past 9 decimals; 0
    when it is not a number)."""
    whole, dot, fraction = cost.partition(".")
    if len(fraction) <= 9 and whole.isdigit() and (not dot or fraction.isdigit()):
        return int(whole) * 1_000_000_000 + int(fraction.ljust(9, "0") or "0")
    try:
        value = (Decimal(cost) * _NANO).to_integral_value(ROUND_HALF_EVEN)
    except InvalidOperation:
        return 0
    return int(value) if value.is_finite() else 0


def _new_row() -> Row:
    return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0.0, {}, {}]


def _add(into: Row, row: Row) -> None:
    into[0] += row[0]
    into[1] += row[1]
    into[2] += row[2]
    into[3] += row[3]
    into[4] += row[4]
    into[5] += row[5]
    into[6] += row[6]
    into[7] += row[7]
    into[8] += row[8]
    into[9] += row[9]
    into[10] += row[10]
    into[11] += row[11]
    merge_into(into[12], row[12])
    merge_into(into[13], row[13])


def _copy(row: Row) -> Row:
    return [*row[:_HIST], dict(row[12]), dict(row[13])]


def project(dims: int, key: _DeltaKey) -> tuple[str, str, str, str, str, int, str]:
    """The dimensions of ``key`` a ``dims`` grouping keeps (the others blank)."""
    _, route, service, consumer, model, upstream, status, error = key
    return (route if dims & 1 else "", service if dims & 2 else "",
            consumer if dims & 4 else "", model if dims & 8 else "",
            upstream if dims & 16 else "", status if dims & 32 else 0,
            error if dims & 32 else "")


@dataclass(slots=True)
class Take:
    """What one :meth:`RollupState.take` folded: the rows whose stored value must be
    read back before writing (late records for evicted buckets), and the deltas."""

    missing: list[Key]
    deltas: dict[Key, Row] = field(repr=False)


class RollupState:
    """One worker's roll-ups in memory (see the module docstring)."""

    def __init__(self) -> None:
        self._delta: dict[_DeltaKey, Row] = {}
        self._rows: dict[Key, Row] = {}
        self._changed: set[Key] = set()
        #: Per period: rows of buckets before this were evicted (may exist in the store).
        self._evicted_before = dict.fromkeys(PERIODS, -1)
        #: Deltas of a take whose stored rows could not be read (see :meth:`give_back`).
        self._carried: dict[Key, Row] = {}

    @property
    def pending(self) -> bool:
        """Records were added since the last :meth:`take`, or rows await a write."""
        return bool(self._delta or self._changed or self._carried)

    def add(self, records: Iterable[AccessRecord]) -> None:
        """Sum ``records`` into the current delta (the per-record cost of roll-ups).

        Column by column (:class:`~campusgate.observe.batch.RecordBatch`): the
        records are grouped by minute and dimensions (:func:`~campusgate.observe.
        batch.group`: one group, the usual batch, found without a tuple built), and
        each group summed column by column (``sum`` of its values, in the records'
        order, as one record at a time would) and its latencies counted into
        buckets (:func:`~campusgate.observe.histogram.count_into`).  A group of a
        few records is summed record by record.
        """
        batch = RecordBatch.of(records)
        columns = batch.columns
        times = columns[_TIME]
        if not times:
            return
        first, last = int(min(times)), int(max(times))
        minute = first - first % 60
        keys = [columns[index] for index in _DIM_INDEXES]
        spans = minute != last - last % 60
        if spans:  # a batch across a minute's end: the minute is a key too
            keys.insert(0, [second - second % 60 for second in map(int, times)])
        groups = group(keys)
        if len({tuple(v or "" for v in dims) for dims in groups}) < len(groups):
            # dimensions that differ only as None and "" share a row: summed in the
            # records' order only one at a time
            _add_each(self._delta, columns, range(len(times)))
            return
        for dims, indexes in groups.items():
            if len(indexes) < FEW:
                _add_each(self._delta, columns, indexes)
            elif spans:
                self._add_group(dims[0], dims[1:], batch, indexes)
            else:
                self._add_group(minute, dims, batch, indexes)

    def _add_group(self, minute: int, dims: tuple[Any, ...], batch: RecordBatch,
                   indexes: Group) -> None:
        columns = batch.columns
        route, service, consumer, model, upstream, status, error = dims
        key = (minute, route or "", service or "", consumer or "", model or "",
               upstream or "", status, error or "")
        row = self._delta.get(key)
        if row is None:
            row = self._delta[key] = _new_row()
        row[0] += len(indexes)
        row[2] += pick(columns[_RATE_LIMIT], indexes).count("limited")
        row[3] = sum(pick(columns[_BYTES_IN], indexes), row[3])
        row[4] = sum(pick(columns[_BYTES_OUT], indexes), row[4])
        if model is not None:
            _add_ai(row, columns, indexes)
        latencies = pick(columns[_LATENCY], indexes)
        row[9] = sum(latencies, row[9])
        count_into(row[12], latencies, batch.sorted)
        upstream_latencies = measured(pick(columns[_UPSTREAM_LATENCY], indexes))
        if upstream_latencies:
            row[10] += len(upstream_latencies)
            row[11] = sum(upstream_latencies, row[11])
            count_into(row[13], upstream_latencies, batch.sorted)

    def take(self, now: float) -> Take:
        """Fold the delta into per-period, per-grouping deltas; list the rows that
        must be read back first (see :meth:`commit`)."""
        minute_deltas: dict[Key, Row] = {}
        for key, row in self._delta.items():
            minute = key[0]
            if is_error(key[6], key[7]):
                row[1] = row[0]
            for dims in GROUPINGS:
                projected: Key = (60, dims, minute, *project(dims, key))
                into = minute_deltas.get(projected)
                if into is None:
                    minute_deltas[projected] = _copy(row) if dims != FULL else row
                else:
                    _add(into, row)
        self._delta = {}
        deltas, self._carried = self._carried, {}
        for minute_key, row in minute_deltas.items():
            into = deltas.get(minute_key)
            if into is None:
                deltas[minute_key] = row
            else:
                _add(into, row)
        for period in PERIODS[1:]:
            for minute_key, row in minute_deltas.items():
                bucket = minute_key[2]
                target: Key = (period, minute_key[1], bucket - bucket % period,
                               *minute_key[3:])
                into = deltas.get(target)
                if into is None:
                    deltas[target] = _copy(row)
                else:
                    _add(into, row)
        self._evict(now)
        rows = self._rows
        evicted = self._evicted_before
        missing = [key for key in deltas if key not in rows and key[2] < evicted[key[0]]]
        return Take(missing, deltas)

    def commit(self, take: Take, stored: Mapping[Key, Row]) -> None:
        """Add ``take``'s deltas (and, for its missing rows, what the store holds:
        ``stored``, as :func:`row_values` order) to the cumulative rows."""
        rows = self._rows
        for key, row in take.deltas.items():
            current = rows.get(key)
            if current is None:
                base = stored.get(key)
                rows[key] = row if base is None else _with(base, row)
            else:
                _add(current, row)
        self._changed.update(take.deltas)

    def give_back(self, take: Take) -> None:
        """``take`` could not be committed (reading its missing rows failed): fold
        its deltas into the next :meth:`take`."""
        for key, row in take.deltas.items():
            into = self._carried.get(key)
            if into is None:
                self._carried[key] = row
            else:
                _add(into, row)

    def changed_rows(self, worker_id: str, periods: Collection[int] = PERIODS
                     ) -> list[tuple[Any, ...]]:
        """The cumulative value of every row (of ``periods``) changed since
        :meth:`written`, as ``rollups`` column values in table order."""
        rows = self._rows
        return [row_values(key, worker_id, rows[key]) for key in self._changed
                if key[0] in periods]

    def written(self, periods: Collection[int] = PERIODS) -> None:
        """The changed rows (of ``periods``) are in the store."""
        if len(periods) == len(PERIODS):
            self._changed.clear()
        else:
            self._changed = {key for key in self._changed if key[0] not in periods}

    def _evict(self, now: float) -> None:
        second = int(now)
        for period in PERIODS:
            floor = second - second % period - HORIZONS[period]
            if floor > self._evicted_before[period]:
                self._evicted_before[period] = floor
        changed = self._changed
        evicted = self._evicted_before
        stale = [k for k in self._rows if k[2] < evicted[k[0]] and k not in changed]
        for key in stale:
            del self._rows[key]


def _add_ai(row: Row, columns: Columns, indexes: Iterable[int]) -> None:
    """Add the tokens and cost of AI calls (``indexes``) to ``row``."""
    inputs, outputs, cached, costs = (columns[index] for index in _AI_INDEXES)
    for index in indexes:
        row[5] += inputs[index] or 0
        row[6] += outputs[index] or 0
        row[7] += cached[index] or 0
        cost = costs[index]
        if cost:
            row[8] += nanousd(cost)


def _add_each(delta: dict[_DeltaKey, Row], columns: Columns, indexes: Iterable[int]
              ) -> None:
    """:meth:`RollupState.add`, one record at a time."""
    (times, routes, services, consumers, models, upstreams, statuses, errors, limits,
     received, sent, latencies, upstream_latencies) = (columns[i] for i in _EACH_INDEXES)
    for i in indexes:
        second = int(times[i])
        model = models[i]
        key = (second - second % 60, routes[i] or "", services[i] or "",
               consumers[i] or "", model or "", upstreams[i] or "", statuses[i],
               errors[i] or "")
        row = delta.get(key)
        if row is None:
            row = delta[key] = _new_row()
        row[0] += 1
        if limits[i] == "limited":
            row[2] += 1
        row[3] += received[i]
        row[4] += sent[i]
        if model is not None:
            _add_ai(row, columns, (i,))
        latency = latencies[i]
        row[9] += latency
        histogram: Histogram = row[12]
        index = bucket_of(latency)
        histogram[index] = histogram.get(index, 0) + 1
        upstream = upstream_latencies[i]
        if upstream is not None:
            row[10] += 1
            row[11] += upstream
            histogram = row[13]
            index = bucket_of(upstream)
            histogram[index] = histogram.get(index, 0) + 1


def _with(base: Row, row: Row) -> Row:
    merged = _copy(base)
    _add(merged, row)
    return merged


def row_values(key: Key, worker_id: str, row: Row) -> tuple[Any, ...]:
    """A ``rollups`` row (table column order) from a key and its cumulative sums."""
    period, dims, bucket, route, service, consumer, model, upstream, status, error = key
    return (period, dims, bucket, worker_id, route, service, consumer, model, upstream,
            status, error, *row[:_HIST], encode(row[12]), encode(row[13]))


def stored_row(values: Sequence[Any]) -> Row:
    """The in-memory sums of a stored ``rollups`` row's value columns (from
    ``requests`` on, in table order)."""
    *sums, latency, upstream_latency = values
    return [*sums, decode(latency), decode(upstream_latency)]
