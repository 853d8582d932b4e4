from __future__ import annotations

import math
import random

import pytest
from rollup_samples import nearest_rank

from campusgate.observe import histogram as h
from campusgate.observe._speedups import NO_EXTENSIONS_ENV, speedups


def _histogram(values: list[float]) -> h.Histogram:
    out: h.Histogram = {}
    for value in values:
        index = h.bucket_of(value)
        out[index] = out.get(index, 0) + 1
    return out


def _uniform(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(0.5, 2000.0) for _ in range(n)]


def _lognormal(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(3.0, 1.2) for _ in range(n)]


def _bimodal(rng: random.Random, n: int) -> list[float]:
    return [rng.gauss(8.0, 1.0) if rng.random() < 0.7 else rng.gauss(900.0, 80.0)
            for _ in range(n)]


@pytest.mark.parametrize("distribution", [_uniform, _lognormal, _bimodal])
def test_merged_percentiles_within_the_documented_bound(distribution: object) -> None:
    rng = random.Random(11)
    chunks = [distribution(rng, rng.randrange(1, 60)) for _ in range(1500)]  # type: ignore[operator]
    # each small histogram goes through the stored text form, as in the store
    merged = h.merge(h.decode(h.encode(_histogram(chunk))) for chunk in chunks)
    values = [value for chunk in chunks for value in chunk]
    assert sum(merged.values()) == len(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact = nearest_rank(values, q)
        got = h.percentile(merged, q)
        assert got is not None
        assert abs(got - exact) <= h.RELATIVE_ERROR * exact * (1 + 1e-9), (q, got, exact)


def test_bound_is_two_percent_and_range_is_covered() -> None:
    assert h.RELATIVE_ERROR < 0.02
    assert h.bucket_of(0.0) == 0 and h.percentile({0: 3}, 0.5) == 0.0
    assert h.bucket_of(10 * h.MAX_MS) == h.MAX_INDEX
    for value in (h.MIN_MS, 0.37, 1.0, 55.5, 12_345.0, h.MAX_MS * 0.999):
        error = abs(h.representative(h.bucket_of(value)) - value)
        assert error <= h.RELATIVE_ERROR * value * (1 + 1e-9)


def test_encoding_round_trips_and_rejects_garbage() -> None:
    histogram = {0: 2, 7: 1, 300: 12}
    assert h.encode(histogram) == "0,2,7,1,300,12"
    assert h.decode(h.encode(histogram)) == histogram
    assert h.decode("") == {} and h.encode({}) == ""
    for bad in ("1,2,3", "a,b"):
        with pytest.raises(ValueError):
            h.decode(bad)


def test_percentiles_of_empty_and_bad_quantiles() -> None:
    assert h.percentiles({}, (0.5, 0.99)) == [None, None]
    with pytest.raises(ValueError):
        h.percentile({1: 1}, 0.0)
    values = [1.0, 2.0, 3.0, 4.0]
    got = h.percentiles(_histogram(values), (0.25, 0.5, 1.0))
    assert [round(g or 0, 1) for g in got] == [1.0, 2.0, 4.0]


def test_sorted_counting_matches_one_value_at_a_time() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(0.0, 4.0) for _ in range(20_000)] + [0.0, h.MAX_MS * 2]
    for i in range(1, h.MAX_INDEX + 1, 7):  # each side of bucket edges
        edge = h.MIN_MS * h.GAMMA ** (i - 1)
        values += [math.nextafter(edge, 0.0), edge, math.nextafter(edge, math.inf)]
    counted: h.Histogram = {}
    h.count_sorted_into(counted, sorted(values))
    assert counted == _histogram(values)


@pytest.mark.parametrize("compiled", [True, False], ids=["C", "python"])
def test_counting_in_any_order_matches_one_value_at_a_time(
        compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``count_into``: in C (``log_counts``) or over a sort, the counts of
    ``bucket_of`` for each value, added to what the histogram held."""
    if not compiled:
        monkeypatch.setenv(NO_EXTENSIONS_ENV, "1")
    assert (speedups() is not None) is compiled
    rng = random.Random(4)
    values = [rng.lognormvariate(0.0, 4.0) for _ in range(20_000)] + [0.0, -1.0, h.MAX_MS * 2]
    for i in range(1, h.MAX_INDEX + 1, 5):  # each side of bucket edges
        edge = h.MIN_MS * h.GAMMA ** (i - 1)
        values += [math.nextafter(edge, 0.0), edge, math.nextafter(edge, math.inf)]
    rng.shuffle(values)
    counted: h.Histogram = {3: 5}
    h.count_into(counted, values)
    expected = _histogram(values)
    expected[3] = expected.get(3, 0) + 5
    assert counted == expected
