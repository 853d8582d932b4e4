"""The C row packer (``observe/_rowpack.c``) and its queue (``observe/packed.py``):
the rows it packs are exactly the rows ``Capture.row`` makes, whatever the values;
a row it cannot pack is left out whole and counted; the queue never waits and drops
its oldest chunk when full; a malformed chunk is refused, never a crash."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest

from campusgate.observe import packed as packed_module
from campusgate.observe._ship import encode_frame
from campusgate.observe._speedups import NO_EXTENSIONS_ENV, speedups
from campusgate.observe.capture import Capture, Row, finish_rows
from campusgate.observe.packed import (
    MAGIC,
    ChunkQueue,
    Entry,
    PackedQueue,
    chunk_rows,
    finish_chunks,
    finish_entries,
    unpack_rows,
)
from campusgate.observe.record import FIELDS
from campusgate.observe.tracing import start_trace
from campusgate.proxy.context import RequestContext

MODULE = speedups()
# The packer is built by `make install` (a C compiler is part of the test set-up):
# tests that need it fail, not skip, when it is missing.
assert MODULE is not None, f"the C row packer is not built (or {NO_EXTENSIONS_ENV} is set)"
PATH, TRACE_ID, SPAN_ID, PARENT_ID = 10, 20, 21, 22


def _named(name: str) -> Any:
    return SimpleNamespace(name=name)


ROUTE, SERVICE, ALICE = _named("orders"), _named("shop"), _named("alice")


def context(i: int, **values: Any) -> RequestContext:
    headers = [(b"host", b"gw.example"), (b"user-agent", b"curl/8.5"), (b"accept", b"*/*")]
    ctx = RequestContext("GET", f"/orders/{i}", "", headers, "10.0.0.7", "http",
                         "gw.example", f"{i:032x}")
    ctx.route, ctx.service, ctx.consumer = ROUTE, SERVICE, ALICE
    ctx.credential, ctx.upstream_target, ctx.rate_limit = "cred-1", "127.0.0.1:9000", "allowed"
    ctx.trace = start_trace(headers, ctx.request_id)
    ctx.started, ctx.upstream_started = 5000.0 + i, 5000.001 + i
    ctx.upstream_ended, ctx.ended = 5000.004 + i, 5000.005 + i
    ctx.status, ctx.bytes_in, ctx.bytes_out = 200, 120, 345
    for name, value in values.items():
        setattr(ctx, name, value)
    return ctx


def chunks_of(capture: Capture, contexts: list[RequestContext], chunk: int = 1000,
              ) -> tuple[list[bytes], PackedQueue]:
    """The packed chunks of ``contexts``, frame by frame."""
    assert MODULE is not None
    queue = PackedQueue(100_000, chunk, capture, MODULE)
    for ctx in contexts:
        queue.record(ctx)
    chunks = []
    while len(queue):
        frame, count, _ = queue.take_frame(chunk)
        assert int.from_bytes(frame[:4], "big") == len(frame) - 4
        assert frame[4:].startswith(MAGIC) and chunk_rows(frame[4:]) == count
        chunks.append(frame[4:])
    return chunks, queue


def packed(capture: Capture, contexts: list[RequestContext], chunk: int = 1000,
           ) -> tuple[list[Row], PackedQueue]:
    """The rows of ``contexts`` through a packed queue, frame by frame."""
    chunks, queue = chunks_of(capture, contexts, chunk)
    return [row for data in chunks for row in unpack_rows(data)], queue


def columns(entries: list[Entry]) -> list[list[Any]]:
    return [list(column) for column in finish_entries(entries).columns]


class Sub(RequestContext):
    """Not the class the packer knows: read by plain attribute lookups."""


NON_ASCII_ID = "r\u00e9q-1"
UNUSUAL: list[tuple[str, dict[str, Any]]] = [
    ("no route, service, consumer, credential", {
        "route": None, "service": None, "consumer": None, "credential": None,
        "upstream_target": None, "rate_limit": None}),
    ("an error, unfinished upstream", {
        "error": "upstream_timeout", "upstream_ended": 0.0, "status": 504, "retries": 2}),
    ("a query and many headers", {
        "query": "a=1&b=%20", "headers": [(b"x-%d" % n, b"v" * n) for n in range(40)]}),
    ("a long user-agent, twice", {
        "headers": [(b"user-agent", b"u" * 2000), (b"user-agent", b"second")]}),
    ("non-ASCII path, host, consumer", {
        "path": "/caf\u00e9/\U0001f600", "host": "b\u00fccher.example",
        "consumer": _named("Zo\u00eb")}),
    ("a lone surrogate in the path", {"path": "/bad/\udcff"}),
    ("a number past 64 bits", {"bytes_out": 1 << 70}),
    ("negative numbers", {"bytes_out": -1, "status": -7}),
    ("a trace with a parent", {
        "trace": SimpleNamespace(trace_id="a" * 32, span_id="b" * 16, parent_id="c" * 16)}),
    ("an AI call and captured bodies", {"vars": {
        "ai": {"provider": "openai", "model": "m", "usage": {"prompt_tokens": 5},
               "cost": "0.001", "redactions": {"email": 2}},
        "log.bodies": {"request": "{}", "response": "[]"}, "other": object()}}),
    ("vars without the record's keys", {"vars": {"plugin.state": object()}}),
    ("bytes where text was expected", {"client_ip": b"10.0.0.9", "method": b"GET"}),
    ("a non-ASCII request id, the trace's id too", {
        "request_id": NON_ASCII_ID,
        "trace": SimpleNamespace(trace_id=NON_ASCII_ID, span_id="b" * 16, parent_id=None)}),
]


@pytest.mark.parametrize(("values",), [(v,) for _, v in UNUSUAL], ids=[n for n, _ in UNUSUAL])
def test_a_packed_row_is_the_row_capture_makes(values: dict[str, Any]) -> None:
    capture = Capture("proxy", 4242)
    contexts = [context(1), context(2, **values), context(3, **values), context(4)]
    rows, queue = packed(capture, contexts)
    assert rows == [capture.row(ctx) for ctx in contexts]
    assert [type(v) for v in rows[1]] == [type(v) for v in capture.row(contexts[1])]
    assert queue.packer.broken == 0


def test_a_trace_the_gateway_started_refers_to_the_request_id_written_once() -> None:
    capture = Capture("proxy", 4242)
    started = [context(i) for i in range(50)]  # the trace's id is the request id itself
    equal = [context(i) for i in range(50)]
    for ctx in equal:  # the same text, another object: written out
        assert ctx.trace is not None
        ctx.trace = SimpleNamespace(trace_id="".join(ctx.trace.trace_id),
                                    span_id=ctx.trace.span_id, parent_id=None)
    (short,), _ = chunks_of(capture, started)
    (long,), _ = chunks_of(capture, equal)
    assert len(long) - len(short) == 50 * 32  # 37 bytes of text against a 5-byte reference
    assert unpack_rows(short) == [capture.row(ctx) for ctx in started]
    assert unpack_rows(long) == [capture.row(ctx) for ctx in equal]
    finished = finish_entries([short]).columns
    request_ids, trace_ids = (finished[FIELDS.index(name)]
                              for name in ("request_id", "trace_id"))
    assert all(a is b for a, b in zip(request_ids, trace_ids, strict=True))


def test_chunks_are_cut_at_their_frame_size_and_the_queue_is_bounded_in_bytes() -> None:
    assert MODULE is not None
    capture = Capture("proxy", 4242)
    queue = PackedQueue(100_000, 5000, capture, MODULE, frame_bytes=100_000,
                        queue_bytes=350_000)
    contexts = [context(i, vars={"log.bodies": {"request": f"{i}".ljust(30_000, "q"),
                                                "response": None}})
                for i in range(40)]
    for ctx in contexts:
        queue.record(ctx)
    # a chunk is cut once its frame reaches 100,000 bytes: after 4 rows of ~30 KB
    assert all(count == 4 for _, count, _ in queue.items)
    assert all(len(frame) < 100_000 + 31_000 for frame, _, _ in queue.items)
    # at most 350,000 bytes of frames are held: the oldest went, counted
    assert queue.held_bytes == sum(len(frame) for frame, _, _ in queue.items) <= 350_000
    assert queue.dropped == 40 - len(queue) and queue.accepted == 40
    rows = [row for frame, _, _ in list(queue.items) for row in unpack_rows(frame[4:])]
    assert rows == [capture.row(ctx) for ctx in contexts[-len(rows):]]
    queue.take(4)
    assert queue.held_bytes == sum(len(frame) for frame, _, _ in queue.items)


def test_many_rows_over_several_chunks_share_nothing_across_chunks() -> None:
    """Names repeat (packed once per chunk, then referenced); each chunk reads alone."""
    capture = Capture("admin", 7)
    rng = random.Random(5)
    names = [_named(f"route-{n}") for n in range(200)]  # more than the packer caches
    contexts = [context(i, route=rng.choice(names), client_ip=f"10.0.{i % 7}.1",
                        status=rng.choice((200, 404, 502)))
                for i in range(2500)]
    rows, queue = packed(capture, contexts, chunk=300)
    assert rows == [capture.row(ctx) for ctx in contexts]
    assert queue.taken == 2500 and queue.accepted == 2500


def test_a_context_of_another_class_is_read_by_its_attributes() -> None:
    capture = Capture("proxy", 1)
    ctx = Sub("POST", "/x", "", [], "::1", "https", "h", "id-1")
    ctx.status, ctx.ended = 201, ctx.started + 0.5
    ctx.trace = start_trace([], "id-1")
    rows, _ = packed(capture, [ctx])
    assert rows == [capture.row(ctx)]


def test_an_unset_slot_raises_as_the_attribute_would() -> None:
    assert MODULE is not None
    queue = PackedQueue(10, 10, Capture("proxy", 1), MODULE)
    ctx = context(1)
    del ctx.request_id
    with pytest.raises(AttributeError):
        queue.record(ctx)
    queue.record(context(2))  # nothing of the failed row is left behind
    assert [r[4] for r in unpack_rows(queue.take_frame(10)[0][4:])] == [f"{2:032x}"]


def test_a_trace_not_propagated_is_worked_out_as_capture_does() -> None:
    """No upstream call, so no trace yet: the row's trace id is the request id the
    gateway made, with a new span, unless the client sent its own request id."""
    capture = Capture("proxy", 1)
    made = context(1, trace=None)
    sent = context(2, trace=None, headers=[(b"x-request-id", b"mine")])
    caller = "00-" + "d" * 32 + "-" + "e" * 16 + "-01"
    continued = context(3, trace=None, headers=[(b"traceparent", caller.encode())])
    rows, _ = packed(capture, [made, sent, continued])
    assert rows[0][TRACE_ID] == made.request_id and len(rows[0][SPAN_ID]) == 16
    assert rows[1][TRACE_ID] != sent.request_id and len(rows[1][TRACE_ID]) == 32
    assert (rows[2][TRACE_ID], rows[2][PARENT_ID]) == ("d" * 32, "e" * 16)
    assert made.trace is None  # the context is only read
    assert rows[0][PARENT_ID] is None and rows[1][PARENT_ID] is None


def test_new_spans_are_sixteen_hex_digits_and_do_not_repeat(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The packer starts the request id's trace itself (no Python call): each row a
    new span id, as ``trace_from`` makes them, in every queue (seeded apart)."""

    def no_call(ctx: RequestContext) -> None:
        raise AssertionError("trace_of was called")

    monkeypatch.setattr(packed_module, "trace_of", no_call)
    spans = []
    for _ in range(2):
        rows, _ = packed(Capture("proxy", 1), [context(i, trace=None) for i in range(2000)])
        assert all(row[TRACE_ID] == f"{i:032x}" for i, row in enumerate(rows))
        spans += [row[SPAN_ID] for row in rows]
    assert all(re.fullmatch("[0-9a-f]{16}", span) and span != "0" * 16 for span in spans)
    assert len(set(spans)) == len(spans)


def test_a_row_that_cannot_be_packed_is_left_out_whole_and_counted() -> None:
    """As the marshal path does (``encode_frame``): the row goes, the others stay,
    including a name first seen in the row that went."""
    capture = Capture("proxy", 1)
    fresh = _named("fresh-route")
    bad = context(2, route=fresh, vars={"ai": {"provider": object()}})
    contexts = [context(1), bad, context(3, route=fresh), context(4)]
    rows, queue = packed(capture, contexts)
    assert rows == [capture.row(ctx) for ctx in contexts if ctx is not bad]
    assert queue.packer.broken == 1 and queue.accepted == 4
    _, dropped = encode_frame([capture.row(ctx) for ctx in contexts])
    assert dropped == 1


def test_the_queue_cuts_chunks_wakes_the_shipper_and_drops_its_oldest_chunk() -> None:
    assert MODULE is not None
    queue = PackedQueue(10, 4, Capture("proxy", 1), MODULE)
    wakes: list[int] = []
    queue.on_full_batch = lambda: wakes.append(len(queue))
    for i in range(3):
        queue.record(context(i))
    assert (wakes, len(queue), queue.depth) == ([], 3, 3)
    queue.record(context(3))
    assert wakes == [4]  # a full chunk waits
    for i in range(4, 13):
        queue.record(context(i))
    # chunks [0-3] [4-7] [8-11] and 12 in the packer: 13 > 10, the oldest chunk went
    assert (queue.dropped, len(queue), queue.accepted) == (4, 9, 13)
    first = [int(r[4], 16) for r in unpack_rows(queue.take_frame(10)[0][4:])]
    assert first == [4, 5, 6, 7]
    _, count, bad = queue.take_frame(10)
    assert (count, bad) == (4, 0)
    frame, count, _ = queue.take_frame(10)  # the part-filled chunk, cut
    assert count == 1 and [int(r[4], 16) for r in unpack_rows(frame[4:])] == [12]
    assert (len(queue), queue.taken, queue.accepted) == (0, 9, 13)


def _chunk() -> bytes:
    capture = Capture("proxy", 1)
    contexts = [context(i, vars={"ai": {"model": "m"}}) for i in range(3)]
    assert MODULE is not None
    queue = PackedQueue(10, 10, capture, MODULE)
    for ctx in contexts:
        queue.record(ctx)
    return queue.take_frame(10)[0][4:]


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda c: c[:3], "not a chunk"),
    (lambda c: b"\x00CGX" + c[4:], "not a chunk"),
    (lambda c: c[:4] + b"\x09" + c[5:], "not a chunk"),  # another version
    (lambda c: c[:5] + b"\x00" + c[6:], "not a chunk"),  # no fields
    (lambda c: c[:-3], "cut short"),
    (lambda c: c[:10] + b"\x63" + c[11:], "unknown tag"),
    (lambda c: c[:10] + b"\x04\xff\x00\x00\x00" + c[11:], "reference to no string"),
    (lambda c: c[:6] + b"\xff\xff\x00\x00" + c[10:], "more rows than"),
    (lambda c: c[:6] + b"\x01\x00\x00\x00" + c[10:], "after the last row"),
], ids=["short", "magic", "version", "fields", "truncated", "tag", "reference", "count",
       "trailing"])
def test_a_malformed_chunk_is_refused(mangle: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        unpack_rows(mangle(_chunk()))


def test_random_damage_to_a_chunk_never_crashes_the_reader() -> None:
    chunk = _chunk()
    rng = random.Random(11)
    for _ in range(3000):
        damaged = bytearray(chunk)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(10, len(damaged))] = rng.randrange(256)
        cut = bytes(damaged[:rng.randint(10, len(damaged))])
        try:
            rows = unpack_rows(cut)
        except (ValueError, EOFError, TypeError):
            continue
        assert all(isinstance(row, tuple) for row in rows)


def test_no_extensions_turns_the_packer_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NO_EXTENSIONS_ENV, "1")
    assert speedups() is None
    monkeypatch.setenv(NO_EXTENSIONS_ENV, "0")
    assert speedups() is MODULE


def test_a_packer_is_made_once_with_sane_settings() -> None:
    assert MODULE is not None
    packer = cast(Any, PackedQueue(5, 5, Capture("proxy", 1), MODULE).packer)
    with pytest.raises(TypeError, match="made once"):
        packer.__init__(RequestContext, SimpleNamespace, 0.0, "p", 1, 5, print, print)
    with pytest.raises(ValueError, match="at least 1"):
        MODULE.Packer(RequestContext, SimpleNamespace, 0.0, "p", 1, 0, print, print)
    with pytest.raises(TypeError, match="callable"):
        MODULE.Packer(RequestContext, SimpleNamespace, 0.0, "p", 1, 5, None, print)


@pytest.mark.parametrize(("values",), [(v,) for _, v in UNUSUAL], ids=[n for n, _ in UNUSUAL])
def test_chunks_finish_into_the_records_of_their_rows(values: dict[str, Any]) -> None:
    """``_rowpack.finish`` (the log writer's path for packed frames) gives the
    columns ``capture.finish_rows`` gives for the same rows: latencies, the error
    class of a 5xx, bytes, the user agent, the AI call's and bodies' fields."""
    capture = Capture("proxy", 4242)
    contexts = [context(i, **values) for i in range(5)]
    contexts[1].status, contexts[2].status = 503, 500
    contexts[2].upstream_ended = 0.0  # no answer: the gateway's own 5xx
    contexts[3].upstream_started = 0.0  # no upstream called
    contexts[4].upstream_started = contexts[4].ended + 1  # clocks disagree: 0, not less
    contexts[0].vars = {"log.bodies": {"request": "hi"}}
    chunks, _ = chunks_of(capture, contexts, chunk=2)
    assert len(chunks) == 3
    expected = [list(column) for column in finish_rows([capture.row(c) for c in contexts]).columns]
    got = [list(column) for column in finish_chunks(chunks).columns]
    assert len(got) == len(FIELDS)
    for name, mine, theirs in zip(FIELDS, got, expected, strict=True):
        assert mine == theirs, name


def test_an_unfinished_request_ends_when_its_batch_is_finished() -> None:
    capture = Capture("proxy", 1)
    began = time.monotonic() - 0.5
    cut = context(1, started=began, upstream_started=began + 0.1, ended=0.0,
                  upstream_ended=0.0)
    chunks, _ = chunks_of(capture, [cut])
    finished = columns(list(chunks))
    latency, upstream = (finished[FIELDS.index(name)][0]
                         for name in ("latency_ms", "upstream_latency_ms"))
    assert latency >= 500 and 400 <= upstream == pytest.approx(latency - 100)  # up to now


def test_a_damaged_chunk_is_left_out_of_its_batch_not_the_others() -> None:
    capture = Capture("proxy", 1)
    good, _ = chunks_of(capture, [context(i) for i in range(3)])
    bad = bytearray(good[0])
    bad[10] = 0x63  # an unknown tag
    rows = [capture.row(context(9))]
    batch = finish_entries([good[0], bytes(bad), rows, good[0]])
    ids = batch.columns[FIELDS.index("request_id")]
    assert [int(i, 16) for i in ids] == [0, 1, 2, 9, 0, 1, 2]
    with pytest.raises(ValueError, match="not a chunk"):
        chunk_rows(b"\x00CGR\x02" + bytes(20))


def test_the_writers_queue_counts_records_and_drops_its_oldest_frames() -> None:
    queue = ChunkQueue(10, wake_at=6)
    wakes: list[int] = []
    queue.on_full_batch = lambda: wakes.append(len(queue))
    queue.put(b"a", 4)
    queue.put([(1,), (2,)], 2)
    assert wakes == [6] and (len(queue), queue.depth) == (6, 6)
    queue.put(b"c", 5)  # 11 > 10: the oldest frame goes
    assert (len(queue), queue.dropped, queue.accepted) == (7, 4, 11)
    assert queue.take(6) == [[(1,), (2,)]]  # whole frames, up to the limit
    assert queue.take(1) == [b"c"]  # at least one
    assert (len(queue), queue.taken, queue.accepted) == (0, 7, 11)
    queue.put(b"big", 50)  # one frame past the size is kept
    assert (len(queue), queue.dropped) == (50, 4)
    with pytest.raises(ValueError):
        ChunkQueue(0)


def test_the_writers_queue_drops_its_oldest_frames_past_its_bytes() -> None:
    queue: ChunkQueue[bytes] = ChunkQueue(1000, max_bytes=100)
    queue.put(b"a" * 40, 1, 40)
    queue.put(b"b" * 40, 1, 40)
    assert (queue.held_bytes, queue.dropped) == (80, 0)
    queue.put(b"c" * 40, 1, 40)  # 120 > 100: the oldest frame goes
    assert (queue.held_bytes, queue.dropped, len(queue)) == (80, 1, 2)
    assert queue.take(1) == [b"b" * 40] and queue.held_bytes == 40
    queue.put(b"d" * 500, 1, 500)  # one frame past the bytes is kept, alone
    assert (queue.held_bytes, queue.dropped, queue.accepted) == (500, 2, 4)


@dataclass(frozen=True)
class FrozenRoute:
    name: str


def test_names_are_read_again_unless_their_object_is_frozen() -> None:
    """The snapshot's routes and services are frozen dataclasses: their names are
    remembered for the chunk; any other object's name is read for every row."""
    assert MODULE is not None
    queue = PackedQueue(100, 100, Capture("proxy", 1), MODULE)
    frozen, loose = FrozenRoute("fixed"), _named("before")
    queue.record(context(1, route=frozen, consumer=loose))
    loose.name = "after"
    queue.record(context(2, route=frozen, consumer=loose))
    rows = unpack_rows(queue.take_frame(100)[0][4:])
    assert [(r[23], r[25]) for r in rows] == [("fixed", "before"), ("fixed", "after")]


def test_names_are_one_object_each_across_chunks_and_batches() -> None:
    """Each chunk makes its own strings; with the writer's ``names`` a route's or a
    target's name is one object in every batch (the stages then group by identity)."""
    capture = Capture("proxy", 1)
    chunks, _ = chunks_of(capture, [context(i) for i in range(30)], chunk=10)
    names: dict[str, str] = {}
    first, second = finish_chunks(chunks[:2], names), finish_chunks(chunks[2:], names)
    for field in ("route", "service", "upstream", "method", "host", "rate_limit", "listener"):
        values = [*first.column(field), *second.column(field)]
        assert all(value is values[0] for value in values), field
    assert [*first.column("request_id"), *second.column("request_id")] == [
        f"{i:032x}" for i in range(30)]
    apart = finish_chunks(chunks[:2])  # without: a string per chunk
    assert apart.column("route")[0] is not apart.column("route")[10]
    assert [list(c) for c in apart.columns] == [list(c) for c in first.columns]


def test_a_value_that_repeats_from_row_to_row_is_one_object_and_the_others_stay_apart(
        ) -> None:
    """The writer keeps each field's int or string of the row before: a worker's id,
    a response's size past the small ints, a polled path come out as one object
    while they repeat, and every value is still its row's own."""
    capture = Capture("proxy", 7434)
    paths = ["/poll", "/poll", "/poll", "/orders/3", "/poll", "/poll", "/pol", "/poll"]
    sizes = [900, 900, 901, 900, 900, -1, 900, 1 << 70]
    contexts = [context(i, path=path, bytes_out=size)
                for i, (path, size) in enumerate(zip(paths, sizes, strict=True))]
    chunks, _ = chunks_of(capture, contexts, chunk=100)
    batch = finish_chunks(chunks)
    assert list(batch.column("path")) == paths
    assert list(batch.column("bytes_out")) == [900, 900, 901, 900, 900, 0, 900, 1 << 70]
    assert list(batch.column("worker")) == [7434] * 8
    assert len({id(w) for w in batch.column("worker")}) == 1
    path, size = batch.column("path"), batch.column("bytes_out")
    assert path[0] is path[1] is path[2] and path[4] is path[5] and path[4] is not path[0]
    assert size[0] is size[1] and size[3] is size[4] and size[3] is not size[1]
    assert list(batch.column("request_id")) == [f"{i:032x}" for i in range(8)]
    rows = unpack_rows(chunks[0])  # the rows read back share them the same way
    assert [row[10] for row in rows] == paths and rows[0][10] is rows[1][10]


def test_the_names_kept_are_bounded() -> None:
    capture = Capture("proxy", 1)
    hosts = [context(i, host=f"h{i}.example") for i in range(5000)]
    chunks, _ = chunks_of(capture, hosts, chunk=1000)
    names: dict[str, str] = {}
    batch = finish_chunks(chunks, names)
    assert list(batch.column("host")) == [f"h{i}.example" for i in range(5000)]
    assert len(names) <= 4096
