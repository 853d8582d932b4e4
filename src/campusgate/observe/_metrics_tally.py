"""Cumulative totals of access records in plain dicts, for ``/metrics``.

One dict update per record and family, no prometheus_client object on the write
path; label values become strings only when a sample is taken.  Latencies are kept
in milliseconds (as recorded) and shown in seconds.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from campusgate.observe._batch_groups import FEW, group_by
from campusgate.observe.record import AccessRecord, column, columns

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
#: Record fields a batch's groups are summed by (by index: C speed).
_error, _provider, _latency, _upstream_latency, _bytes_in, _bytes_out, _rate_limit, \
    _retries = map(column, ("error", "ai_provider", "latency_ms", "upstream_latency_ms",
                            "bytes_in", "bytes_out", "rate_limit", "retries"))

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

    ``add`` is one pass with one dict lookup per record: everything about a request
    is added to the slots of its (route, service, method, status, upstream target[,
    consumer]) entry; errors and AI calls also go to their own small dicts.  The
    families (per route, per service, per upstream...) are projections of those
    entries, made at scrape/publish time.
    """

    def __init__(self, consumer_label: bool = False) -> None:
        self.consumer_label = consumer_label
        #: A record's entry key (what ``add`` groups by).
        self._key: Callable[[AccessRecord], tuple[object, ...]] = columns(
            "route", "service", "method", "status", "upstream",
            *(("consumer",) if consumer_label else ()))
        #: (route, service, method, status, upstream[, consumer]) -> slots (_LATENCY..)
        self.entries: dict[tuple[object, ...], list[float]] = {}
        #: (route, service, error class) -> requests
        self.errors: dict[tuple[str | None, str | None, str], int] = {}
        #: (provider, model, kind) -> tokens
        self.tokens: dict[tuple[str, str | None, str], int] = {}
        #: (provider, model) -> USD
        self.cost: dict[tuple[str, str | None], float] = {}

    def add(self, batch: Sequence[AccessRecord]) -> None:
        """Count a batch: records grouped by entry (a tuple and a dict lookup each),
        then each group summed column by column (``sum`` of a list, in the records'
        order, as one record at a time would) and its latencies counted sorted.  A
        batch of small groups is counted record by record (:func:`group_by`)."""
        records = batch if isinstance(batch, list) else list(batch)
        entries = self.entries
        groups = group_by(records, self._key)
        if groups is None:
            self._add_each(records)
        else:
            for key, same in groups.items():
                if len(same) < FEW:
                    self._add_each(same)
                    continue
                acc = entries.get(key)
                if acc is None:
                    acc = entries[key] = [0.0] * _WIDTH
                _add_entry(acc, same)
        errors = list(map(_error, records))
        if errors.count(None) < len(errors):  # counted in batch order, like the rest
            counts = self.errors
            for r, error in zip(records, errors, strict=True):
                if error is not None:
                    ekey = (r.route, r.service, error)
                    counts[ekey] = counts.get(ekey, 0) + 1
        providers = list(map(_provider, records))
        if providers.count(None) < len(providers):  # AI calls: summed in batch order
            for r, provider in zip(records, providers, strict=True):
                if provider is not None:
                    self._add_ai(r, provider)

    def _add_each(self, records: list[AccessRecord]) -> None:
        """Add records to their entries one at a time (not errors and AI calls)."""
        entries = self.entries
        by_consumer = self.consumer_label
        bounds = _BOUNDS_MS
        for r in records:
            key: tuple[object, ...] = (
                (r.route, r.service, r.method, r.status, r.upstream, r.consumer)
                if by_consumer else (r.route, r.service, r.method, r.status, r.upstream))
            acc = entries.get(key)
            if acc is None:
                acc = entries[key] = [0.0] * _WIDTH
            latency = r.latency_ms
            acc[bisect_left(bounds, latency)] += 1
            acc[_LATENCY_SUM] += latency
            acc[_BYTES_IN] += r.bytes_in
            acc[_BYTES_OUT] += r.bytes_out
            upstream_ms = r.upstream_latency_ms
            if upstream_ms is not None:
                acc[_UPSTREAM + bisect_left(bounds, upstream_ms)] += 1
                acc[_UPSTREAM_SUM] += upstream_ms
            if r.rate_limit == "limited":
                acc[_LIMITED] += 1
            if r.retries:
                acc[_RETRIES] += r.retries

    def _add_ai(self, r: AccessRecord, provider: str) -> None:
        model = r.ai_model
        tokens = self.tokens
        for kind, count in (("input", r.ai_input_tokens), ("output", r.ai_output_tokens),
                            ("cached", r.ai_cached_tokens)):
            if count:
                key = (provider, model, kind)
                tokens[key] = tokens.get(key, 0) + count
        if r.ai_cost is not None:
            try:
                usd = float(r.ai_cost)
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


def _add_entry(acc: list[float], records: list[AccessRecord]) -> None:
    """Add records of one entry to its slots, column by column."""
    latencies = list(map(_latency, records))
    acc[_LATENCY_SUM] = sum(latencies, acc[_LATENCY_SUM])
    _count_sorted(acc, 0, latencies)
    acc[_BYTES_IN] = sum(map(_bytes_in, records), acc[_BYTES_IN])
    acc[_BYTES_OUT] = sum(map(_bytes_out, records), acc[_BYTES_OUT])
    measured = list(map(_upstream_latency, records))
    upstream = ([ms for ms in measured if ms is not None] if None in measured
                else cast("list[float]", measured))
    if upstream:
        acc[_UPSTREAM_SUM] = sum(upstream, acc[_UPSTREAM_SUM])
        _count_sorted(acc, _UPSTREAM, upstream)
    acc[_LIMITED] += list(map(_rate_limit, records)).count("limited")
    acc[_RETRIES] = sum(map(_retries, records), acc[_RETRIES])


def _count_sorted(acc: list[float], first: int, values: list[float]) -> None:
    """Add each value to its bucket (``bisect_left`` of the bounds, as Prometheus'
    ``le``) among ``acc[first:first + _NBUCKETS]``, by sorting ``values`` (in place)
    and cutting the sorted list at each bound."""
    values.sort()
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
