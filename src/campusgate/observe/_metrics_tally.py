"""Cumulative totals of access records in plain dicts, for ``/metrics``.

A batch's columns grouped by entry and summed per group (no dict update per
record), no prometheus_client object on the write path; label values become strings
only when a sample is taken.  Latencies are kept in milliseconds (as recorded) and
shown in seconds.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from campusgate.observe._speedups import speedups
from campusgate.observe.batch import FEW, INDEX, Columns, Group, RecordBatch, group, measured, pick
from campusgate.observe.record import AccessRecord

__all__ = ["LATENCY_BUCKETS", "Family", "HistogramFamily", "Labels", "RecordTally"]

#: Histogram bucket bounds in seconds (``le``), for a gateway: 1 ms .. 60 s.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BOUNDS_MS = tuple(bound * 1000 for bound in LATENCY_BUCKETS)
#: Buckets of a histogram, +Inf included.
_NBUCKETS = len(_BOUNDS_MS) + 1
#: The slots of an entry: latency buckets, their sum (ms), bytes, rate-limited
#: requests, retries, upstream latency buckets and their sum (ms).
_LATENCY_SUM = _NBUCKETS
_BYTES_IN = _LATENCY_SUM + 1
_BYTES_OUT = _BYTES_IN + 1
_LIMITED = _BYTES_OUT + 1
_RETRIES = _LIMITED + 1
_UPSTREAM = _RETRIES + 1
_UPSTREAM_SUM = _UPSTREAM + _NBUCKETS
_WIDTH = _UPSTREAM_SUM + 1
#: Where the consumer is in an entry's key.
_CONSUMER = 5
#: The columns (:data:`~campusgate.observe.batch.INDEX`) a batch is counted from.
_ERROR, _PROVIDER, _MODEL, _ROUTE, _SERVICE, _LATENCY, _UPSTREAM_LATENCY, _BYTES_IN_AT, \
    _BYTES_OUT_AT, _RATE_LIMIT, _RETRIES_AT, _INPUT, _OUTPUT, _CACHED, _COST = (
        INDEX[name] for name in (
            "error", "ai_provider", "ai_model", "route", "service", "latency_ms",
            "upstream_latency_ms", "bytes_in", "bytes_out", "rate_limit", "retries",
            "ai_input_tokens", "ai_output_tokens", "ai_cached_tokens", "ai_cost"))

Labels = tuple[str, ...]


@dataclass(slots=True)
class Family:
    """One counter or gauge family's values: label values -> value."""

    labels: tuple[str, ...]
    values: dict[Labels, float] = field(default_factory=dict)


@dataclass(slots=True)
class HistogramFamily:
    """One histogram family: label values -> (per-bucket counts, +Inf last; sum)."""

    labels: tuple[str, ...]
    values: dict[Labels, tuple[list[float], float]] = field(default_factory=dict)


def _text(value: object) -> str:
    return "" if value is None else str(value)


class RecordTally:
    """Cumulative totals of the records seen, in plain dicts.

    ``add`` adds everything about a batch's requests to the slots of their (route,
    service, method, status, upstream target[, consumer]) entry, group by group;
    errors and AI calls also go to their own small dicts.  The families (per route,
    per service, per upstream...) are projections of those entries, made at
    scrape/publish time.
    """

    def __init__(self, consumer_label: bool = False) -> None:
        self.consumer_label = consumer_label
        #: The columns of a record's entry key (what ``add`` groups by).
        self._key = [INDEX[name] for name in (
            "route", "service", "method", "status", "upstream",
            *(("consumer",) if consumer_label else ()))]
        #: (route, service, method, status, upstream[, consumer]) -> slots (_LATENCY..)
        self.entries: dict[tuple[object, ...], list[float]] = {}
        #: (route, service, error class) -> requests
        self.errors: dict[tuple[str | None, str | None, str], int] = {}
        #: (provider, model, kind) -> tokens
        self.tokens: dict[tuple[str, str | None, str], int] = {}
        #: (provider, model) -> USD
        self.cost: dict[tuple[str, str | None], float] = {}

    def add(self, batch: Sequence[AccessRecord]) -> None:
        """Count a batch, column by column (:class:`~campusgate.observe.batch.
        RecordBatch`): records grouped by entry (:func:`~campusgate.observe.batch.
        group`: one group, the usual batch, found without a tuple built), then each
        group summed column by column (``sum`` of its values, in the records'
        order, as one record at a time would) and its latencies counted sorted.  A
        group of a few records is counted record by record."""
        records = RecordBatch.of(batch)
        columns = records.columns
        if not columns[0]:
            return
        entries = self.entries
        for key, indexes in group([columns[i] for i in self._key]).items():
            acc = entries.get(key)
            if acc is None:
                acc = entries[key] = [0.0] * _WIDTH
            if len(indexes) < FEW:
                _add_each(acc, columns, indexes)
            else:
                _add_entry(acc, records, indexes)
        count = len(columns[0])
        errors = columns[_ERROR]
        if errors.count(None) < count:  # counted in batch order, like the rest
            counts = self.errors
            routes, services = columns[_ROUTE], columns[_SERVICE]
            for index, error in enumerate(errors):
                if error is not None:
                    ekey = (routes[index], services[index], error)
                    counts[ekey] = counts.get(ekey, 0) + 1
        providers = columns[_PROVIDER]
        if providers.count(None) < count:  # AI calls: summed in batch order
            for index, provider in enumerate(providers):
                if provider is not None:
                    self._add_ai(columns, index, provider)

    def _add_ai(self, columns: Columns, index: int, provider: str) -> None:
        model = columns[_MODEL][index]
        tokens = self.tokens
        for kind, column in (("input", _INPUT), ("output", _OUTPUT), ("cached", _CACHED)):
            count = columns[column][index]
            if count:
                key = (provider, model, kind)
                tokens[key] = tokens.get(key, 0) + count
        cost = columns[_COST][index]
        if cost is not None:
            try:
                usd = float(cost)
            except ValueError:
                return  # not a price: nothing to add
            self.cost[(provider, model)] = self.cost.get((provider, model), 0.0) + usd

    # ------------------------------------------------------------------ output

    def _project(self, fields: tuple[int, ...], slot: int) -> Iterator[
            tuple[tuple[object, ...], float]]:
        """``(key fields, slot value)`` of every entry (repeated keys: add them up)."""
        for key, acc in self.entries.items():
            yield tuple(key[i] for i in fields), acc[slot]

    def counters(self) -> dict[str, Family]:
        """Every counter family, with label values as strings."""
        who = ("consumer",) if self.consumer_label else ()
        consumer = (_CONSUMER,) if self.consumer_label else ()
        out = {
            "campusgate_http_requests_total": Family(("route", "service", "method", "status",
                                                      *who)),
            "campusgate_http_request_bytes_total": Family(("route", "service")),
            "campusgate_http_response_bytes_total": Family(("route", "service")),
            "campusgate_http_errors_total": Family(("route", "service", "error")),
            "campusgate_rate_limited_total": Family(("route", "service", *who)),
            "campusgate_upstream_retries_total": Family(("service",)),
            "campusgate_ai_tokens_total": Family(("provider", "model", "kind")),
            "campusgate_ai_cost_usd_total": Family(("provider", "model")),
        }
        _fill(out["campusgate_http_requests_total"],
              ((tuple(key[i] for i in (0, 1, 2, 3, *consumer)), sum(acc[:_NBUCKETS]))
               for key, acc in self.entries.items()))
        _fill(out["campusgate_http_request_bytes_total"], self._project((0, 1), _BYTES_IN))
        _fill(out["campusgate_http_response_bytes_total"], self._project((0, 1), _BYTES_OUT))
        _fill(out["campusgate_http_errors_total"], self.errors.items())
        _fill(out["campusgate_rate_limited_total"],
              (kv for kv in self._project((0, 1, *consumer), _LIMITED) if kv[1]))
        _fill(out["campusgate_upstream_retries_total"],
              (kv for kv in self._project((1,), _RETRIES) if kv[1]))
        _fill(out["campusgate_ai_tokens_total"], self.tokens.items())
        _fill(out["campusgate_ai_cost_usd_total"], self.cost.items())
        return out

    def histograms(self) -> dict[str, HistogramFamily]:
        """The latency histograms (bucket counts per bucket, sums in seconds)."""
        duration = HistogramFamily(("route", "service"))
        upstream = HistogramFamily(("service", "upstream"))
        for key, acc in self.entries.items():
            _merge(duration, (_text(key[0]), _text(key[1])), acc, 0, _LATENCY_SUM)
            if key[4] is not None or any(acc[_UPSTREAM:_UPSTREAM_SUM]):
                _merge(upstream, (_text(key[1]), _text(key[4])), acc, _UPSTREAM,
                       _UPSTREAM_SUM)
        upstream.values = {k: v for k, v in upstream.values.items() if any(v[0])}
        return {"campusgate_http_request_duration_seconds": duration,
                "campusgate_upstream_duration_seconds": upstream}


def _add_entry(acc: list[float], batch: RecordBatch, indexes: Group) -> None:
    """Add the records ``indexes`` of one entry to its slots, column by column."""
    columns = batch.columns
    latencies = pick(columns[_LATENCY], indexes)
    acc[_LATENCY_SUM] = sum(latencies, acc[_LATENCY_SUM])
    _count(acc, 0, latencies, batch)
    acc[_BYTES_IN] = sum(pick(columns[_BYTES_IN_AT], indexes), acc[_BYTES_IN])
    acc[_BYTES_OUT] = sum(pick(columns[_BYTES_OUT_AT], indexes), acc[_BYTES_OUT])
    upstream = measured(pick(columns[_UPSTREAM_LATENCY], indexes))
    if upstream:
        acc[_UPSTREAM_SUM] = sum(upstream, acc[_UPSTREAM_SUM])
        _count(acc, _UPSTREAM, upstream, batch)
    acc[_LIMITED] += pick(columns[_RATE_LIMIT], indexes).count("limited")
    acc[_RETRIES] = sum(pick(columns[_RETRIES_AT], indexes), acc[_RETRIES])


def _add_each(acc: list[float], columns: Columns, indexes: Group) -> None:
    """Add the records ``indexes`` of one entry to its slots, one at a time."""
    bounds = _BOUNDS_MS
    latencies, received, sent, upstreams, limits, retries = (
        columns[i] for i in (_LATENCY, _BYTES_IN_AT, _BYTES_OUT_AT, _UPSTREAM_LATENCY,
                             _RATE_LIMIT, _RETRIES_AT))
    for i in indexes:
        latency = latencies[i]
        acc[bisect_left(bounds, latency)] += 1
        acc[_LATENCY_SUM] += latency
        acc[_BYTES_IN] += received[i]
        acc[_BYTES_OUT] += sent[i]
        upstream_ms = upstreams[i]
        if upstream_ms is not None:
            acc[_UPSTREAM + bisect_left(bounds, upstream_ms)] += 1
            acc[_UPSTREAM_SUM] += upstream_ms
        if limits[i] == "limited":
            acc[_LIMITED] += 1
        if retries[i]:
            acc[_RETRIES] += retries[i]


def _count(acc: list[float], first: int, values: Sequence[float], batch: RecordBatch) -> None:
    """Add each value of ``values`` to its bucket among ``acc[first:first +
    _NBUCKETS]``: in C when it is built (``_rowpack.le_counts``: ``bisect_left``
    of each value), else from the batch's shared sort."""
    module = speedups()
    if module is None:
        _count_sorted(acc, first, batch.sorted(values))
    else:
        module.le_counts(values, _BOUNDS_MS, acc, first)


def _count_sorted(acc: list[float], first: int, values: list[float]) -> None:
    """Add each value of ``values`` (sorted) to its bucket (``bisect_left`` of the
    bounds, as Prometheus' ``le``) among ``acc[first:first + _NBUCKETS]``, by
    cutting the sorted list at each bound."""
    below = 0
    for slot, bound in enumerate(_BOUNDS_MS, first):
        upto = bisect_right(values, bound, below)
        acc[slot] += upto - below
        below = upto
    acc[first + _NBUCKETS - 1] += len(values) - below


def _merge(family: HistogramFamily, labels: Labels, acc: list[float], first: int,
           total: int) -> None:
    had = family.values.get(labels)
    buckets = acc[first:first + _NBUCKETS]
    if had is None:
        family.values[labels] = (buckets, acc[total] / 1000)
    else:
        family.values[labels] = ([a + b for a, b in zip(had[0], buckets, strict=True)],
                                 had[1] + acc[total] / 1000)


def _fill(family: Family, counts: Iterable[tuple[tuple[object, ...], float]]) -> None:
    values = family.values
    for key, n in counts:
        labels = tuple(map(_text, key))
        values[labels] = values.get(labels, 0.0) + n
