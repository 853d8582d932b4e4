"""Server-Sent Events (the WHATWG HTML "event stream" format), sans-IO.

:class:`SseParser` takes bytes as they arrive, in any split, and gives back whole
events; :func:`encode_event` writes one.  Every provider that streams over SSE
(OpenAI, Azure, Anthropic, Gemini with ``alt=sse``, Mistral, Cohere, ...) and every
client-facing stream goes through these two.

Parsing follows the spec: lines end in CRLF, LF or CR; a blank line dispatches the
event; ``data`` lines are joined with ``\\n``; a field without a colon has an empty
value; one leading space after the colon is dropped; lines starting with ``:`` are
comments; a UTF-8 BOM at the very start is skipped; an event with no data is not
dispatched.  ``retry`` is parsed but has no use here.  A line longer than
:data:`MAX_LINE` is an error (a stream that never ends a line would otherwise grow
without bound).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_LINE", "SseError", "SseEvent", "SseParser", "encode_event"]

#: Longest line accepted (bytes): a whole provider chunk fits many times over.
MAX_LINE = 4 * 1024 * 1024


class SseError(ValueError):
    """The bytes are not an event stream (a line too long)."""


@dataclass(frozen=True)
class SseEvent:
    #: The ``event`` field ("" when absent: the spec's "message").
    event: str
    data: str
    id: str | None = None


class SseParser:
    """Incremental event-stream parser: :meth:`feed` bytes, get events."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        #: How far the buffer is known to hold no line end (a long line arriving in
        #: many pieces is scanned once, not once per piece).
        self._scanned = 0
        self._started = False
        self._skip_lf = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events completed by ``chunk``."""
        if not chunk:
            return []
        data = self._buffer
        data += chunk
        if not self._started:
            if len(data) < 3 and b"\xef\xbb\xbf".startswith(data):
                return []
            if data.startswith(b"\xef\xbb\xbf"):
                del data[:3]
            self._started = True
        if self._skip_lf and data.startswith(b"\n"):
            del data[:1]
        self._skip_lf = False
        events: list[SseEvent] = []
        start = 0
        size = len(data)
        # The next CR and LF at or after ``pos``, each found once (-1: none left).
        pos = self._scanned
        cr = data.find(b"\r", pos)
        lf = data.find(b"\n", pos)
        while cr != -1 or lf != -1:
            end = lf if cr == -1 else cr if lf == -1 else min(cr, lf)
            line = bytes(data[start:end])
            if end == cr:
                if end + 1 < size:
                    start = end + 2 if end + 1 == lf else end + 1
                else:  # a CR at the end: the LF of a CRLF may come with the next chunk
                    start = end + 1
                    self._skip_lf = True
            else:
                start = end + 1
            if cr != -1 and cr < start:
                cr = data.find(b"\r", start)
            if lf != -1 and lf < start:
                lf = data.find(b"\n", start)
            event = self._line(line)
            if event is not None:
                events.append(event)
        del data[:start]
        self._scanned = len(data)
        if len(data) > MAX_LINE:
            raise SseError(f"an event-stream line longer than {MAX_LINE} bytes")
        return events

    def close(self) -> list[SseEvent]:
        """End of stream.  An event not ended by a blank line is discarded, as the spec
        says: a stream cut in the middle of an event must not yield half of it.
        Returns [] (kept for the symmetry of the decoders built on it)."""
        self._buffer = bytearray()
        self._scanned = 0
        self._event, self._data, self._id = "", [], None
        return []

    @property
    def pending(self) -> bool:
        """Whether an event has begun and not ended (for telling a cut stream)."""
        return bool(self._buffer or self._data)

    def _line(self, raw: bytes) -> SseEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", "replace")
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        if self._id is not None:
            self._last_id = self._id
        if not self._data:
            self._event = ""
            self._id = None
            return None
        event = SseEvent(self._event, "\n".join(self._data), self._last_id)
        self._event = ""
        self._data = []
        self._id = None
        return event


def encode_event(data: str, event: str | None = None) -> bytes:
    """One event, ready to send: ``event:`` (if any), one ``data:`` line per line of
    ``data``, and the blank line."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode("utf-8")
