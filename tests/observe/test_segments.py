"""The segment codec: what goes into a segment comes back, and what a search needs to
find it (time range, id range, loose ids, terms) is right."""

from __future__ import annotations

import random
import zlib

import orjson
import pytest
import zstandard
from access_samples import sample, series

from campusgate.observe import columnar, segments
from campusgate.observe.record import FIELDS, AccessRecord
from campusgate.observe.segments import LOCATE_WINDOW_MS, decode, encode, id_time_ms
from campusgate.proxy.request_ids import new_request_id

T0 = 1_700_000_000.0
T0_MS = int(T0 * 1000)


def gateway_id(time_ms: int, tail: str = "0" * 20) -> str:
    """An id shaped like :func:`new_request_id`'s, carrying ``time_ms``."""
    return f"{time_ms:012x}{tail}"


def as_dicts(body: bytes) -> list[dict[str, object]]:
    return [dict(zip(FIELDS, values, strict=True)) for values in decode(body)]


@pytest.fixture(params=["columns", "json"])
def body_format(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Bodies in binary columns (the C helpers; skipped when not built) or, as an
    install without them writes, JSON: what the body text starts with."""
    if request.param == "json":
        monkeypatch.setattr(segments, "_MODULE", None)
        return b"["
    if segments._MODULE is None:
        pytest.skip("the C helpers are not built")
    return columnar.MAGIC


def test_every_field_comes_back(body_format: bytes) -> None:
    batch = [
        *series(50),
        sample(time=T0 + 0.123456, request_id=new_request_id(), ai_provider="openai",
               ai_model="gpt-fast", ai_provider_model="gpt-4o-mini", ai_input_tokens=10,
               ai_output_tokens=20, ai_cached_tokens=0, ai_cost="0.000123",
               ai_redactions={"email": 1, "card": 3}, request_body='{"q": "naïve 日本"}',
               response_body="line\nbreak\t\"quoted\"", path="/ü/" + "p" * 5000,
               upstream_latency_ms=None, latency_ms=0.1 + 0.2, parent_span_id="f" * 16,
               user_agent=None, rate_limit=None, consumer=None, error="upstream_timeout"),
    ]
    segment = encode(batch)
    assert segment.records == 51
    assert segments.inflate(segment.body).startswith(body_format)
    assert as_dicts(segment.body) == [record.as_dict() for record in batch]


def test_time_range_is_the_records_in_milliseconds() -> None:
    batch = [sample(time=T0 + 5.0009), sample(time=T0 - 1.5), sample(time=T0 + 2)]
    segment = encode(batch)
    assert (segment.time_min_ms, segment.time_max_ms) == (T0_MS - 1500, T0_MS + 5000)


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        encode([])


@pytest.mark.parametrize(("request_id", "time_ms"), [
    (gateway_id(T0_MS, "0123456789abcdef0123"), T0_MS),
    ("0" * 32, 0),
    ("f" * 32, (1 << 48) - 1),
    ("0" * 31, None),  # too short
    ("0" * 33, None),  # too long
    (gateway_id(T0_MS).upper(), None),  # the gateway writes lowercase
    (gateway_id(T0_MS)[:-1] + "g", None),
    (" " + gateway_id(T0_MS)[1:], None),  # int() would take the space
    ("+" + gateway_id(T0_MS)[1:], None),
    ("0_" + gateway_id(T0_MS)[2:], None),  # ... and the underscore
    ("client-chose-this", None),
    ("", None),
])
def test_id_time_ms(request_id: str, time_ms: int | None) -> None:
    assert id_time_ms(request_id) == time_ms


@pytest.mark.usefixtures("body_format")
def test_gateway_ids_are_located_by_range_and_others_are_loose() -> None:
    made = [gateway_id(T0_MS + i * 10, f"{i:020x}") for i in range(5)]
    others = ["client-1", gateway_id(T0_MS).upper(), gateway_id(T0_MS - 3_600_000)]
    batch = [sample(time=T0 + i / 100, request_id=rid)
             for i, rid in enumerate([*made, *others])]
    segment = encode(batch)
    assert (segment.rid_min, segment.rid_max) == (min(made), max(made))
    assert segment.loose_ids == [(rid, T0_MS + (5 + i) * 10) for i, rid in enumerate(others)]


@pytest.mark.usefixtures("body_format")
def test_a_batch_of_only_client_ids_has_no_range() -> None:
    segment = encode(series(3))
    assert (segment.rid_min, segment.rid_max) == (None, None)
    assert segment.loose_ids == [(f"req-{i}", T0_MS + i * 1000) for i in range(3)]


@pytest.mark.parametrize(("offset_ms", "located"), [
    (-LOCATE_WINDOW_MS - 1, False),
    (-LOCATE_WINDOW_MS, True),
    (0, True),
    (10_000 + LOCATE_WINDOW_MS, True),  # the segment spans T0 .. T0 + 10 s
    (10_000 + LOCATE_WINDOW_MS + 1, False),
])
def test_the_window_around_the_segments_time_range(offset_ms: int, located: bool) -> None:
    rid = gateway_id(T0_MS + offset_ms)
    segment = encode([sample(time=T0, request_id=new_request_id()),
                      sample(time=T0 + 10, request_id=rid)])
    assert (rid not in dict(segment.loose_ids)) is located


@pytest.mark.usefixtures("body_format")
def test_every_id_is_in_the_range_or_loose_and_a_lookup_finds_its_segment() -> None:
    """Random batches mixing gateway-made, client and off-time ids: an id with a time
    close enough to the segment is covered by [rid_min, rid_max], and every other one
    has its loose row -- the two ways log search finds a request id."""
    rng = random.Random(7)
    for _ in range(200):
        batch: list[AccessRecord] = []
        for i in range(rng.randint(1, 40)):
            moment = T0 + rng.uniform(0, 5)
            kind = rng.random()
            if kind < 0.6:
                rid = gateway_id(int(moment * 1000) + rng.randint(-3000, 3000),
                                 f"{rng.getrandbits(80):020x}")
            elif kind < 0.8:
                rid = f"client-{rng.randint(0, 5)}"
            else:
                rid = rng.choice(["0" * 32, "f" * 32, "x" * 32, "0" * 31, str(i), "é" * 32,
                                  "A" * 32])
            batch.append(sample(time=moment, request_id=rid))
        segment = encode(batch)
        loose = {rid for rid, _ in segment.loose_ids}
        assert len(segment.loose_ids) + sum(
            r.request_id not in loose for r in batch) == len(batch)
        for record in batch:
            at = id_time_ms(record.request_id)
            found_by_range = (
                at is not None and segment.rid_min is not None
                and segment.rid_max is not None
                and segment.rid_min <= record.request_id <= segment.rid_max
                and segment.time_max_ms >= at - LOCATE_WINDOW_MS
                and segment.time_min_ms <= at + LOCATE_WINDOW_MS)
            assert found_by_range or record.request_id in loose, record.request_id
            if record.request_id in loose:  # loose ids keep their record's time
                assert (record.request_id, int(record.time * 1000)) in segment.loose_ids


@pytest.mark.usefixtures("body_format")
def test_terms_hold_each_distinct_value_once() -> None:
    batch = [sample(consumer="district-app", status=200), sample(consumer="grade-book"),
             sample(consumer="district-app", status=503, error="upstream_timeout"),
             sample(consumer=None, route="multi\nline")]
    terms = encode(batch).terms
    lines = terms.split("\n")
    assert terms.startswith("\n") and terms.endswith("\n")
    assert len(lines) == len(set(lines)) + 1  # only the two framing blanks repeat
    assert {"consumer=district-app", "consumer=grade-book", "status=200", "status=503",
            "error=upstream_timeout", "route=roster-api", "route=multi line",
            "method=GET", "service=roster", "upstream=127.0.0.1:9000"} == set(lines) - {""}
    assert "\nconsumer=None\n" not in terms and "error=None" not in terms


@pytest.mark.usefixtures("body_format")
def test_terms_of_many_values_and_of_equal_values_that_are_other_objects() -> None:
    """A column of more distinct values than a table holds (300 consumers), and one
    whose equal values are distinct objects (made by ``join``): each value once."""
    batch = [sample(consumer=f"app-{i}", route="".join(["roster", "-api"]))
             for i in range(300)]
    lines = encode(batch).terms.split("\n")
    assert {f"consumer=app-{i}" for i in range(300)} <= set(lines)
    assert lines.count("route=roster-api") == 1


@pytest.mark.usefixtures("body_format")
def test_terms_list_only_term_fields_with_values() -> None:
    ai = sample(ai_model="gpt-fast", ai_provider="openai")
    terms = encode([ai]).terms
    assert "\nai_model=gpt-fast\n" in terms and "\nai_provider=openai\n" in terms
    assert "request_id" not in terms and "path" not in terms


def _body(layout: object) -> bytes:
    return zstandard.ZstdCompressor().compress(orjson.dumps(layout))


def _zstd_claiming(size: int) -> bytes:
    """A zstd frame whose header claims ``size`` bytes of content (damaged)."""
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(b"[2]"))
    params = zstandard.get_frame_parameters(bytes(frame))
    assert params.content_size == 3 and frame[4] & 0xC0 == 0  # a one-byte size field
    frame[4] |= 0xC0  # the size field is now eight bytes: the size, then the rest
    return bytes(frame[:5]) + size.to_bytes(8, "little") + bytes(frame[6:])


@pytest.mark.parametrize("body", [
    b"",
    b"not zlib at all",
    zlib.compress(b"{not json"),
    _body(None)[:-3],  # a zstd frame cut short
    segments.ZSTD_MAGIC + b"\x00" * 20,  # a zstd frame header that is not one
    _zstd_claiming(1 << 40),  # a frame claiming a terabyte of text
    _body({"format": 1}),
    _body([1, list(FIELDS)]),  # no rows
    _body([3, list(FIELDS), []]),  # a format this version does not know
    _body([2, ["time", "status"], [[1.5], [200, 404]]]),  # columns of unequal length
    _body([2, ["time", "status"], [[1.5]]]),  # fewer columns than names
    _body(None),
])
def test_a_malformed_body_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode(body)


@pytest.mark.parametrize("layout", [
    [segments.FORMAT, ["request_id", "future_field", "time", "status"],
     [["a", "b"], ["x", None], [1.5, 2.5], [200, 404]]],
    [1, ["request_id", "future_field", "time", "status"],  # rows: written until 2026-11
     [["a", "x", 1.5, 200], ["b", None, 2.5, 404]]],
])
def test_a_segment_with_other_fields_maps_by_name(layout: list[object]) -> None:
    """An older (fewer fields) or newer (unknown fields) segment reads by field name,
    from columns (format 2) as from rows (format 1)."""
    body = _body(layout)
    records = as_dicts(body)
    assert [(r["time"], r["request_id"], r["status"]) for r in records] == [
        (1.5, "a", 200), (2.5, "b", 404)]
    assert all(r["consumer"] is None and r["ai_model"] is None for r in records)
    assert "future_field" not in records[0]


def test_the_body_is_zstd_and_bodies_written_as_zlib_are_read_too() -> None:
    batch = series(20)
    segment = encode(batch)
    assert segment.body.startswith(segments.ZSTD_MAGIC)
    text = segments.inflate(segment.body)
    older = zlib.compress(text)  # a segment written before zstd: the same text
    assert decode(older) == decode(segment.body)
    assert [dict(zip(FIELDS, values, strict=True)) for values in decode(older)] == [
        record.as_dict() for record in batch]
