"""The event-stream parser (ai/sse.py) against the WHATWG rules, in every split."""

from __future__ import annotations

import pytest
from ai_kit import splits

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment
from campusgate.ai.sse import MAX_LINE, SseError, SseEvent, SseParser, encode_event


def parse(pieces: list[bytes]) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.close()


STREAM = (b"\xef\xbb\xbf: a comment\r\n"
          b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n"
          b"data: line one\ndata:line two\n\n"
          b"id: 7\rdata: cr only\r\r"
          b"event: ping\n\n"                      # no data: not dispatched
          b"data\n\n"                             # a field without a colon: empty data
          b"data: [DONE]\n\n")
EXPECTED = [SseEvent("message_start", '{"a":1}'), SseEvent("", "line one\nline two"),
            SseEvent("", "cr only", "7"), SseEvent("", "", "7"), SseEvent("", "[DONE]", "7")]


def test_every_split_gives_the_same_events() -> None:
    for pieces in splits(STREAM):
        assert parse(pieces) == EXPECTED


def test_a_cut_stream_drops_the_half_event_and_says_so() -> None:
    parser = SseParser()
    assert parser.feed(b"data: {\"x\":1}\n\ndata: {\"y\"") == [SseEvent("", '{"x":1}')]
    assert parser.pending
    assert parser.close() == []


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    assert parse([b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n"]) == [
        SseEvent("", "a"), SseEvent("", "b")]


def test_an_endless_line_is_refused() -> None:
    parser = SseParser()
    with pytest.raises(SseError):
        parser.feed(b"data: " + b"x" * (MAX_LINE + 1))


@pytest.mark.parametrize(("data", "event"), [("{}", None), ("a\nb", "delta")])
def test_encoded_events_parse_back(data: str, event: str | None) -> None:
    assert parse([encode_event(data, event)]) == [SseEvent(event or "", data)]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "cohere"])
def test_a_line_past_the_limit_is_the_providers_bad_response(kind: str) -> None:
    decoder = translator(kind).chat_stream(Deployment(kind, "m", "https://x", "k"))
    with pytest.raises(ProviderError) as caught:
        decoder.feed(b"data: " + b"x" * (MAX_LINE + 1))
    assert caught.value.kind == "bad_response"


def test_a_long_line_in_many_pieces_is_one_event() -> None:
    """Pieces without a line end are kept, not rescanned, until the line ends, in
    whatever piece a CRLF's two bytes arrive."""
    parser = SseParser()
    text = "x" * 200_000
    assert parser.feed(b"data: ") == []
    for start in range(0, len(text), 1000):
        assert parser.feed(text[start:start + 1000].encode()) == []
    assert parser.feed(b"\r") == []
    assert parser.pending
    (event,) = parser.feed(b"\n\r\ndata: next\n\n")[:1]
    assert event.data == text
    assert parser.feed(b"data: last\n\n")[0].data == "last"
