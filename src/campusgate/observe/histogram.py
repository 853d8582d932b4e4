"""Latency histograms that merge by addition and answer percentiles within 2%.

Log-linear buckets (sans-IO, plain dicts): bucket ``i >= 1`` holds the values in
``[MIN_MS * GAMMA**(i-1), MIN_MS * GAMMA**i)`` with ``GAMMA = 1.04``, from ``MIN_MS =
0.01`` ms to ``MAX_MS = 600_000`` ms (ten minutes): 458 buckets.  Bucket 0 holds
everything below ``MIN_MS`` (reported as 0); values above ``MAX_MS`` go to the last
bucket.

**Error bound.**  A percentile is answered with the *harmonic midpoint*
``2·lo·hi/(lo+hi)`` of the bucket that holds the exact nearest-rank value, whose
distance to any value of that bucket is at most ``(GAMMA-1)/(GAMMA+1)`` = 1.96% of it.
So for latencies between ``MIN_MS`` and ``MAX_MS``, the percentile ``q`` of a
histogram -- of one request or of a million merged from thousands of workers-minutes --
is within **1.96%** (:data:`RELATIVE_ERROR`) of the exact nearest-rank ``q``-quantile
of the values that went in.  Merging is exact (counts add), so merged histograms keep
the same bound.

A histogram is a ``dict[int, int]`` (bucket index -> count).  Its stored form is a
sparse text, ``"i,c,i,c,..."`` in increasing ``i``: short (a minute of one route holds
a few dozen buckets), and decoded with one ``split`` (:func:`decode`, :func:`merge_into`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence

from campusgate.observe._speedups import speedups

__all__ = [
    "GAMMA",
    "MAX_INDEX",
    "MAX_MS",
    "MIN_MS",
    "RELATIVE_ERROR",
    "Histogram",
    "bucket_of",
    "count_into",
    "count_sorted_into",
    "decode",
    "decode_into",
    "encode",
    "merge",
    "merge_into",
    "percentile",
    "percentiles",
    "representative",
]

#: Bucket index -> count.
Histogram = dict[int, int]

GAMMA = 1.04
MIN_MS = 0.01
MAX_MS = 600_000.0
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
_INV_MIN = 1.0 / MIN_MS
#: The last bucket (values of ``MAX_MS`` and beyond land here).
MAX_INDEX = int(math.log(MAX_MS / MIN_MS) * _INV_LOG_GAMMA) + 1
#: Largest relative distance between a reported percentile and the exact one.
RELATIVE_ERROR = (GAMMA - 1.0) / (GAMMA + 1.0)


def bucket_of(ms: float) -> int:
    """The bucket of a latency in milliseconds."""
    if ms < MIN_MS:
        return 0
    index = int(math.log(ms * _INV_MIN) * _INV_LOG_GAMMA) + 1
    return index if index < MAX_INDEX else MAX_INDEX


def count_sorted_into(target: Histogram, values: list[float]) -> None:
    """Add one count per value of ``values`` (sorted, increasing) to ``target``.

    :func:`bucket_of` is monotonic, so each bucket's values are a run of the sorted
    list: one :func:`bucket_of` for the run's first value and a binary search (keyed
    by :func:`bucket_of`) for its end, instead of one call per value -- a batch's
    latencies fall in a few dozen buckets.  The counts are exactly those of
    :func:`bucket_of` for each value.
    """
    get = target.get
    start, end = 0, len(values)
    while start < end:
        index = bucket_of(values[start])
        stop = bisect_right(values, index, start + 1, end, key=bucket_of)
        target[index] = get(index, 0) + stop - start
        start = stop


def count_into(target: Histogram, values: Sequence[float],
               ordered: Callable[[Sequence[float]], list[float]] = sorted) -> None:
    """Add one count per value of ``values`` (any order) to ``target``: the bucket
    of each worked out in C (``_rowpack.log_counts``: the same arithmetic as
    :func:`bucket_of`, one pass, no sort) when it is built, else
    :func:`count_sorted_into` over ``ordered(values)`` (a batch's shared sort)."""
    module = speedups()
    if module is None:
        count_sorted_into(target, ordered(values))
    else:
        module.log_counts(values, MIN_MS, _INV_MIN, _INV_LOG_GAMMA, MAX_INDEX, target)


def representative(index: int) -> float:
    """The value a bucket stands for: its harmonic midpoint (0 for bucket 0)."""
    if index <= 0:
        return 0.0
    lo = MIN_MS * GAMMA ** (index - 1)
    hi = lo * GAMMA
    return 2.0 * lo * hi / (lo + hi)


def merge_into(target: Histogram, other: Mapping[int, int]) -> None:
    """Add ``other``'s counts to ``target``."""
    get = target.get
    for index, count in other.items():
        target[index] = get(index, 0) + count


def merge(histograms: Iterable[Mapping[int, int]]) -> Histogram:
    total: Histogram = {}
    for histogram in histograms:
        merge_into(total, histogram)
    return total


def encode(histogram: Mapping[int, int]) -> str:
    """The sparse text form, ``"i,c,i,c"`` (empty for an empty histogram)."""
    return ",".join(f"{i},{histogram[i]}" for i in sorted(histogram) if histogram[i])


def decode(text: str | None) -> Histogram:
    """Parse :func:`encode`'s form; ``ValueError`` on anything else."""
    histogram: Histogram = {}
    if text:
        decode_into(histogram, text)
    return histogram


def decode_into(target: Histogram, text: str | None) -> None:
    """Add the histogram stored as ``text`` to ``target`` (decode and merge in one pass)."""
    if not text:
        return
    numbers = text.split(",")
    if len(numbers) % 2:
        raise ValueError("a histogram needs index,count pairs")
    get = target.get
    for index, count in zip(map(int, numbers[0::2]), map(int, numbers[1::2]), strict=True):
        target[index] = get(index, 0) + count


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The nearest-rank ``q``-quantile (``0 < q <= 1``), or None when empty."""
    return percentiles(histogram, (q,))[0]


def percentiles(histogram: Mapping[int, int], qs: Iterable[float]) -> list[float | None]:
    """Several quantiles in one pass (each ``0 < q <= 1``)."""
    wanted = list(qs)
    for q in wanted:
        if not 0.0 < q <= 1.0:
            raise ValueError(f"quantile {q} is not in (0, 1]")
    total = sum(histogram.values())
    if total <= 0:
        return [None] * len(wanted)
    ranks = sorted((max(1, math.ceil(q * total - 1e-9)), n) for n, q in enumerate(wanted))
    answers: list[float | None] = [None] * len(wanted)
    seen = 0
    pending = iter(ranks)
    rank, slot = next(pending)
    for index in sorted(histogram):
        seen += histogram[index]
        while seen >= rank:
            answers[slot] = representative(index)
            step = next(pending, None)
            if step is None:
                return answers
            rank, slot = step
    return answers
