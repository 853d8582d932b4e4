"""What a fake provider answers: one :class:`Reply`, rendered by each wire module
(:mod:`fake_openai_wire`, :mod:`fake_anthropic_wire`) as that provider documents it.

A reply is stated once, in neutral terms (the text, the tool calls, the usage with
cached tokens, a finish reason in OpenAI's words), so a test can say "the provider
answered this" and check what the client sees after translation either way.  The
switches (an error status, ``retry-after``, a stream cut mid-way, a slow first byte,
a pause between stream events) are fields of the same object: the server applies them
the same way for every wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ANTHROPIC_STOP", "Reply", "ToolCall"]

#: OpenAI finish reasons as Anthropic's stop reasons.
ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                  "content_filter": "refusal"}


@dataclass(frozen=True)
class ToolCall:
    """A call of one function; ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    text: str = "Hello from the fake provider."
    tool_calls: tuple[ToolCall, ...] = ()
    #: OpenAI's finish reason (stop, length, tool_calls, content_filter).
    finish_reason: str = "stop"
    #: Every input token, cached ones included (OpenAI's ``prompt_tokens``).
    prompt_tokens: int = 12
    completion_tokens: int = 7
    #: Input tokens read from a cache.
    cached_tokens: int = 0
    #: Input tokens written to a cache (Anthropic's ``cache_creation_input_tokens``).
    cache_write_tokens: int = 0
    #: Not 200: answer this status with the provider's error body.
    status: int = 200
    error_message: str = ""
    #: Sent as ``retry-after`` (seconds) with an error.
    retry_after: int | None = None
    #: Streams: close the connection after this many events (no end of stream).
    #: Non-streamed answers: close after half the body.
    cut_after: int | None = None
    #: Seconds before the status line is written.
    first_byte_delay: float = 0.0
    #: Seconds between two stream events.
    event_delay: float = 0.0
    #: Pieces the text is streamed in (split on spaces when not given).
    pieces: tuple[str, ...] | None = field(default=None)

    def text_pieces(self) -> list[str]:
        """The text as stream deltas: ``pieces`` or word by word (spaces kept)."""
        if self.pieces is not None:
            return list(self.pieces)
        return re.findall(r"\S+\s*|\s+", self.text)
