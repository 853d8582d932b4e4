"""Helpers of the AI translation tests (``from ai_kit import ...``): feed a stream in
every kind of split, and put canonical chunks back together the way a client does,
checking the rules of ``campusgate/ai/types.py`` on the way."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campusgate.ai.providers.base import StreamDecoder
from campusgate.ai.types import FINISH_REASONS

__all__ = ["FIXTURES", "Assembled", "assemble", "fixture", "fixture_bytes", "run_stream",
           "same_in_every_split", "splits"]

FIXTURES = Path(__file__).with_name("fixtures")


def fixture(*parts: str) -> Any:
    """A JSON fixture: ``fixture("anthropic", "response_tool_use.json")``."""
    return json.loads(FIXTURES.joinpath(*parts).read_text())


def fixture_bytes(*parts: str) -> bytes:
    """A raw fixture (a recorded stream body), byte for byte."""
    return FIXTURES.joinpath(*parts).read_bytes()


def splits(data: bytes, seeds: int = 12) -> Iterator[list[bytes]]:
    """``data`` whole, byte by byte, and cut at random places (``seeds`` ways)."""
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for seed in range(seeds):
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1,
                                                          rng.randint(1, 40))))
        yield [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def run_stream(decoder: StreamDecoder, pieces: list[bytes]) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for piece in pieces:
        chunks += decoder.feed(piece)
    chunks += decoder.finish()
    return chunks


@dataclass
class Assembled:
    """What a client makes of a stream."""

    role: str | None = None
    text: str = ""
    #: Tool calls by index: {"id", "name", "arguments"} (arguments joined).
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    ids: set[str] = field(default_factory=set)


def assemble(chunks: list[dict[str, Any]]) -> Assembled:
    """Join ``chunks`` as the openai SDK's stream helpers do, asserting the canonical
    rules: chunk objects, role first, finish reason once and last among deltas, a
    usage chunk (if any) with ``choices: []`` at the very end."""
    out = Assembled()
    calls: dict[int, dict[str, str]] = {}
    for n, chunk in enumerate(chunks):
        assert chunk["object"] == "chat.completion.chunk", chunk
        out.ids.add(chunk["id"])
        if not chunk["choices"]:
            assert chunk.get("usage") is not None and n == len(chunks) - 1, chunk
            out.usage = chunk["usage"]
            continue
        (choice,) = chunk["choices"]
        assert out.finish_reason is None, f"a delta after the finish reason: {chunk}"
        delta = choice["delta"]
        if "role" in delta:
            assert out.role is None and n == 0, f"role again or late: {chunk}"
            out.role = delta["role"]
        if delta.get("content"):
            out.text += delta["content"]
        for call in delta.get("tool_calls") or []:
            index = call["index"]
            slot = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if call.get("id"):
                assert not slot["id"], f"tool call {index} got a second id"
                slot["id"] = call["id"]
            function = call.get("function") or {}
            if function.get("name"):
                slot["name"] += function["name"]
            slot["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason") is not None:
            assert choice["finish_reason"] in FINISH_REASONS, chunk
            out.finish_reason = choice["finish_reason"]
    assert out.role == "assistant", "the first chunk must carry role: assistant"
    assert len(out.ids) == 1, f"one id for the whole stream, got {out.ids}"
    out.tool_calls = [calls[i] for i in sorted(calls)]
    return out


def same_in_every_split(make: Callable[[], StreamDecoder], data: bytes) -> Assembled:
    """Decode ``data`` in every split of :func:`splits`; all must assemble alike
    (ids aside).  Returns the whole-body result."""
    first: Assembled | None = None
    for pieces in splits(data):
        got = assemble(run_stream(make(), pieces))
        got.ids = set()
        if first is None:
            first = got
        else:
            assert got == first, f"a split of {len(pieces)} pieces decoded differently"
    assert first is not None
    return first
