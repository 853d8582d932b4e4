"""W3C Trace Context parsing and the trace each request gets (table-driven)."""

from __future__ import annotations

import pytest

from campusgate.observe.tracing import parse_traceparent, start_trace, traceparent_of

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
VALID = f"00-{TRACE}-{PARENT}-01".encode()


@pytest.mark.parametrize(("value", "expected"), [
    (VALID, (TRACE, PARENT, "01")),
    (f"00-{TRACE}-{PARENT}-00".encode(), (TRACE, PARENT, "00")),
    # a later version may carry more fields: read as version 00
    (f"cc-{TRACE}-{PARENT}-01-what-ever".encode(), (TRACE, PARENT, "01")),
    (f"cc-{TRACE}-{PARENT}-01".encode(), (TRACE, PARENT, "01")),
    # invalid: version ff, a longer version 00, upper case, zeros, lengths, junk
    (f"ff-{TRACE}-{PARENT}-01".encode(), None),
    (f"00-{TRACE}-{PARENT}-01-extra".encode(), None),
    (f"00-{TRACE.upper()}-{PARENT}-01".encode(), None),
    (f"00-{'0' * 32}-{PARENT}-01".encode(), None),
    (f"00-{TRACE}-{'0' * 16}-01".encode(), None),
    (f"00-{TRACE[:-1]}-{PARENT}-01".encode(), None),
    (f"00-{TRACE}-{PARENT}-1".encode(), None),
    (f"00_{TRACE}-{PARENT}-01".encode(), None),
    (f"cc-{TRACE}-{PARENT}-01x".encode(), None),
    (b"", None),
    (b"\xff" * 55, None),
])
def test_parse_traceparent(value: bytes, expected: tuple[str, str, str] | None) -> None:
    assert parse_traceparent(value) == expected


def test_a_valid_traceparent_is_continued_with_a_new_span() -> None:
    trace = start_trace([(b"host", b"x"), (b"traceparent", VALID)], None)
    assert (trace.trace_id, trace.parent_id, trace.flags) == (TRACE, PARENT, "01")
    assert len(trace.span_id) == 16 and trace.span_id != PARENT
    assert trace.traceparent() == f"00-{TRACE}-{trace.span_id}-01".encode()
    assert traceparent_of(trace) == trace.traceparent().decode()
    assert traceparent_of(None) is None


@pytest.mark.parametrize("headers", [
    [],
    [(b"traceparent", b"00-garbage")],
    [(b"traceparent", VALID), (b"traceparent", VALID)],  # repeated: not trusted
])
def test_otherwise_a_new_trace_starts(headers: list[tuple[bytes, bytes]]) -> None:
    a = start_trace(headers, None)
    b = start_trace(headers, None)
    assert a.parent_id is None and a.flags == "01"
    assert len(a.trace_id) == 32 and int(a.trace_id, 16) != 0
    assert a.trace_id != b.trace_id and a.span_id != b.span_id


def test_a_new_trace_reuses_the_request_id_the_gateway_made() -> None:
    trace = start_trace([], TRACE)
    assert trace.trace_id == TRACE and trace.parent_id is None
