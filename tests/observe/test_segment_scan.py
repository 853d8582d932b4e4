"""The pure parts of ``observe/segment_scan.py``: the newest-first merge across
overlapping segments, the per-segment filter and the body prefilter (the SQL side
and the whole scan run against real databases in test_logsearch.py)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from campusgate.observe import columnar, segments
from campusgate.observe._speedups import speedups
from campusgate.observe.logsearch import LogQuery
from campusgate.observe.record import FIELDS
from campusgate.observe.segment_scan import NewestFirst, body_filter, matching

_TIME = FIELDS.index("time")


def row(time_ms: int, **values: Any) -> list[Any]:
    out: list[Any] = [None] * len(FIELDS)
    out[_TIME] = time_ms / 1000
    for name, value in values.items():
        out[FIELDS.index(name)] = value
    return out


def merged(segments: list[tuple[int, int, list[list[Any]]]]) -> list[tuple[int, int, int]]:
    """Feed segments as the scan does (time_max descending, then id descending),
    taking what is final before each one; the keys in the order they came out."""
    merge = NewestFirst()
    out: list[tuple[int, int, int]] = []
    for segment_id, time_max, rows in sorted(segments, key=lambda s: (-s[1], -s[0])):
        out += [key for key, _ in merge.take(newer_than=time_max)]
        merge.add(segment_id, matching(LogQuery(), None, segment_id, rows))
    out += [key for key, _ in merge.take()]
    return out


def test_overlapping_segments_come_out_in_one_exact_newest_first_order() -> None:
    rng = random.Random(7)
    segments = []
    for segment_id in range(1, 40):
        times = [rng.randrange(1000, 1400) for _ in range(rng.randrange(1, 30))]
        segments.append((segment_id, max(times), [row(t) for t in times]))
    keys = merged(segments)
    expected = sorted(((t, sid, i) for sid, _, rows in segments
                       for i, t in enumerate(int(r[_TIME] * 1000) for r in rows)), reverse=True)
    assert keys == expected


def test_a_cursor_cuts_inside_a_segment_and_filters_hold_exactly() -> None:
    rows = [row(1000, consumer="a", status=200), row(1000, consumer="b", status=503),
            row(1001, consumer="a", status=404), row(999, consumer="a", status=500)]
    picked = matching(LogQuery({"consumer": "a"}, status_class=5), None, 3, rows)
    assert [(t, i) for t, i, _ in picked] == [(999, 3)]
    after = matching(LogQuery(), (1000, 3, 1), 3, rows)  # strictly older than the cursor
    assert [(t, i) for t, i, _ in after] == [(1000, 0), (999, 3)]


def test_the_body_prefilter_never_rules_out_a_segment_that_matches() -> None:
    body = orjson.dumps([1, FIELDS, [row(1, trace_id="t" * 32, path="/Roster/Users")]])
    assert body_filter(LogQuery()) is None
    assert body_filter(LogQuery({"trace_id": "t" * 32}))(body)  # type: ignore[misc]
    assert not body_filter(LogQuery({"trace_id": "u" * 32}))(body)  # type: ignore[misc]
    assert body_filter(LogQuery(text="roster/USERS"))(body)  # type: ignore[misc]
    assert not body_filter(LogQuery(text="grades"))(body)  # type: ignore[misc]


def test_the_prefilter_reads_bodies_in_binary_columns_too() -> None:
    module = speedups()
    if module is None:
        pytest.skip("the C helpers are not built")
    rows = [row(1, trace_id="t" * 32, path="/Roster/Users", worker=7, client_ip='a"b'),
            row(2, trace_id="v" * 32, path="/grades", worker=7, client_ip="10.0.0.1")]
    body = segments.body_text(list(map(list, zip(*rows, strict=True))))
    assert body.startswith(columnar.MAGIC)

    def may(query: LogQuery) -> bool:
        check = body_filter(query)
        assert check is not None
        return check(body)

    assert may(LogQuery({"trace_id": "t" * 32})) and may(LogQuery({"trace_id": "v" * 32}))
    assert not may(LogQuery({"trace_id": "u" * 32}))
    assert may(LogQuery(text="roster/USERS")) and may(LogQuery(text="GRADES"))
    assert not may(LogQuery(text="teachers"))
    # what a binary body cannot rule out: a number, a string JSON would escape
    assert may(LogQuery({"worker": 8})) and may(LogQuery({"client_ip": 'x"y'}))
    # a string that is not ASCII: lower() may differ, no text rules the body out
    other = segments.body_text([[value] for value in row(1, path="/CAFÉ")])
    check = body_filter(LogQuery(text="nowhere"))
    assert check is not None and check(other)


def test_the_prefilter_finds_ids_kept_as_bytes_in_hex_columns() -> None:
    if speedups() is None:
        pytest.skip("the C helpers are not built")
    ids = [f"{i:032x}" for i in range(1, 301)]
    agents = [f"{i:08x}" for i in range(300)]  # a text field of hex values alone
    rows = [row(i, request_id=rid, trace_id=rid, span_id=rid[:16], user_agent=agent)
            for i, (rid, agent) in enumerate(zip(ids, agents, strict=True))]
    body = segments.body_text(list(map(list, zip(*rows, strict=True))))
    assert ids[7].encode() not in body  # kept as bytes, not digits

    def may(query: LogQuery) -> bool:
        check = body_filter(query)
        assert check is not None
        return check(body)

    assert may(LogQuery({"trace_id": ids[7]})) and may(LogQuery({"span_id": ids[299][:16]}))
    assert not may(LogQuery({"trace_id": f"{10**6:032x}"}))
    assert not may(LogQuery({"trace_id": "f" * 31}))  # odd: never a hex column's value
    assert may(LogQuery(text="0000012"))  # inside an agent's digits: cannot be ruled out
    assert not may(LogQuery(text="mozilla"))
