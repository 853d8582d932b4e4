"""Record batches held as columns: what the log writer hands its sinks, and the
finish of shipped rows into them (every value exactly as one row at a time)."""

from __future__ import annotations

import pytest
from access_samples import series

from campusgate.observe.batch import INDEX, RecordBatch, group, pick
from campusgate.observe.capture import finish_rows
from campusgate.observe.record import FIELDS, AccessRecord

OFFSET = 1_700_000_000.0


def row(started: float = 100.0, ended: float | None = 100.0125,
        upstream_started: float | None = 100.001, upstream_ended: float | None = 100.012,
        status: int = 200, error: str | None = None, bytes_out: int = 512,
        agent: bytes | None = b"curl/8.0", ai: dict[str, object] | None = None,
        bodies: dict[str, object] | None = None, request_id: str = "rid") -> tuple[object, ...]:
    """A row as ``Capture.row`` ships it."""
    return (started, ended, upstream_started, upstream_ended, request_id,
            "127.0.0.1:9000", "cred-1", "10.0.0.5", "GET", "gw", "/p", status, 10,
            bytes_out, 0, None, error, OFFSET, "proxy", 7, "t" * 32, "s" * 16, None,
            "route", "service", "consumer", 40, agent, ai, bodies)


def test_a_batch_is_its_records_by_index_and_by_column() -> None:
    records = series(5, consumer="district-app")
    batch = RecordBatch.of(records)
    assert len(batch) == 5 and list(batch) == records and batch[2] == records[2]
    assert batch.column("request_id") == tuple(r.request_id for r in records)
    assert RecordBatch.of(batch) is batch
    rebuilt = RecordBatch(batch.columns)  # records built from the columns alone
    assert rebuilt.records == records and type(rebuilt[0]) is AccessRecord
    assert len(RecordBatch.of([])) == 0 and list(RecordBatch.of([])) == []
    with pytest.raises(ValueError, match="columns"):
        RecordBatch([(1,), (2,)])


def test_group_finds_each_combination_in_order() -> None:
    routes = ["a", "b", "a", "c", "b", "a"]
    statuses = [200, 200, 200, 500, 200, 404]
    assert group([routes, statuses]) == {("a", 200): [0, 2], ("b", 200): [1, 4],
                                         ("c", 500): [3], ("a", 404): [5]}
    assert list(group([routes, statuses])) == [("a", 200), ("b", 200), ("c", 500),
                                               ("a", 404)]
    one = group([["a"] * 4, [200] * 4])
    assert list(one) == [("a", 200)] and list(one[("a", 200)]) == [0, 1, 2, 3]
    assert group([[], []]) == {}


def test_pick_takes_values_in_order() -> None:
    column = ("v0", "v1", "v2", "v3")
    assert list(pick(column, [1, 3])) == ["v1", "v3"]
    assert list(pick(column, [2])) == ["v2"]
    assert pick(column, range(4)) is column


def test_finished_rows_are_their_records_one_at_a_time() -> None:
    rows = [
        row(),
        row(request_id="no-upstream", upstream_started=None, upstream_ended=None),
        row(request_id="cut", upstream_ended=None, status=200, error="client_abort"),
        row(request_id="5xx", status=502),
        row(request_id="own-5xx", status=500, upstream_started=None, upstream_ended=None),
        row(request_id="clock", upstream_started=100.02, upstream_ended=100.019),
        row(request_id="nothing-sent", bytes_out=-1, agent=None, status=0),
        row(request_id="ai", ai={"provider": "openai", "model": "gpt-fast",
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
            bodies={"request": "{}", "response": "[]"}),
    ]
    together = finish_rows(rows).records
    alone = [finish_rows([r]).records[0] for r in rows]
    assert together == alone
    by_id = {r.request_id: r for r in together}
    first = by_id["rid"]
    assert first.time == 100.0 + OFFSET and first.bytes_in == 50
    assert first.latency_ms == pytest.approx(12.5)
    assert first.upstream_latency_ms == pytest.approx(11.0)
    assert first.overhead_ms == pytest.approx(1.5) and first.user_agent == "curl/8.0"
    assert by_id["no-upstream"].upstream_latency_ms is None
    assert by_id["no-upstream"].overhead_ms == by_id["no-upstream"].latency_ms
    assert by_id["cut"].upstream_latency_ms == pytest.approx(11.5)  # to the request's end
    assert by_id["5xx"].error == "upstream_status" and by_id["own-5xx"].error == "internal"
    assert by_id["clock"].upstream_latency_ms == 0.0  # clocks never go backwards here
    assert by_id["nothing-sent"].bytes_out == 0 and by_id["nothing-sent"].user_agent is None
    ai = by_id["ai"]
    assert (ai.ai_provider, ai.ai_model, ai.ai_input_tokens, ai.ai_output_tokens) == (
        "openai", "gpt-fast", 3, 4)
    assert (ai.request_body, ai.response_body) == ("{}", "[]")
    assert by_id["rid"].ai_provider is None and by_id["rid"].request_body is None


def test_the_usual_batch_and_its_exceptions_agree() -> None:
    # every row proxied (the columns' fast path) and one not: the same values
    usual = [row(request_id=f"r{i}", started=100.0 + i, ended=100.0 + i + 0.01 * i,
                 upstream_started=100.0 + i + 0.001, upstream_ended=100.0 + i + 0.009 * i)
             for i in range(1, 20)]
    mixed = [*usual, row(request_id="local", upstream_started=None, upstream_ended=None)]
    assert finish_rows(mixed).records[:-1] == finish_rows(usual).records


def test_a_request_still_running_ends_now() -> None:
    record = finish_rows([row(ended=None, started=0.0)]).records[0]
    assert record.latency_ms > 0.0


@pytest.mark.parametrize("bad", [
    [row()[:-1]],  # a field short
    [row(), row()[:-1]],  # rows of different lengths
    [42],  # not a row
    [row(started="noon")],  # type: ignore[arg-type]  # not a time
])
def test_a_malformed_row_raises(bad: list[tuple[object, ...]]) -> None:
    with pytest.raises((ValueError, TypeError)):
        finish_rows(bad)


def test_the_columns_follow_the_fields() -> None:
    batch = finish_rows([row()])
    assert len(batch.columns) == len(FIELDS)
    assert batch.columns[INDEX["status"]][0] == 200
    assert batch.column("route") == ("route",)


def test_a_column_is_sorted_once_per_batch_and_shared() -> None:
    batch = RecordBatch.of(series(40))
    latencies = batch.column("latency_ms")
    first = batch.sorted(latencies)
    assert first == sorted(latencies) and batch.sorted(latencies) is first
    part = pick(latencies, range(0, 40, 2))  # another sequence: sorted on its own
    assert batch.sorted(part) == sorted(part) and batch.sorted(part) is not first
    assert RecordBatch.of(series(40)).sorted(latencies) is not first  # per batch
