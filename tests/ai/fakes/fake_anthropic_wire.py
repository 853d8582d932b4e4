"""Anthropic's Messages API wire format, as its reference documents it: ``POST
/v1/messages`` answering a ``message`` object, or the server-sent events
``message_start``, ``content_block_start``/``_delta``/``_stop`` (``text_delta``,
``input_json_delta``), ``ping``, ``message_delta`` (stop reason, output tokens) and
``message_stop``; errors as ``{"type": "error", "error": {"type", "message"}}``.

Anthropic counts cache reads and writes apart from ``input_tokens``: a reply's
``prompt_tokens`` (all input) is split accordingly."""

from __future__ import annotations

import json
from typing import Any

from fake_reply import ANTHROPIC_STOP, Reply

__all__ = ["error_body", "message", "message_events"]

_ERRORS = {400: "invalid_request_error", 401: "authentication_error",
           403: "permission_error", 404: "not_found_error", 413: "request_too_large",
           429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def _usage(reply: Reply, output: int) -> dict[str, Any]:
    fresh = reply.prompt_tokens - reply.cached_tokens - reply.cache_write_tokens
    return {"input_tokens": fresh, "cache_creation_input_tokens": reply.cache_write_tokens,
            "cache_read_input_tokens": reply.cached_tokens, "output_tokens": output}


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name,
                "input": json.loads(c.arguments)} for c in reply.tool_calls]
    return blocks


def message(reply: Reply, model: str) -> bytes:
    return json.dumps({
        "id": "msg_fake0001", "type": "message", "role": "assistant", "model": model,
        "content": _blocks(reply), "stop_reason": ANTHROPIC_STOP[reply.finish_reason],
        "stop_sequence": None, "usage": _usage(reply, reply.completion_tokens)}).encode()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def message_events(reply: Reply, model: str) -> list[bytes]:
    events = [_event("message_start", {"type": "message_start", "message": {
        "id": "msg_fake0001", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": _usage(reply, 1)}})]
    index = 0
    if reply.text:
        events.append(_event("content_block_start", {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}))
        events.append(_event("ping", {"type": "ping"}))
        events += [_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}})
            for piece in reply.text_pieces()]
        events.append(_event("content_block_stop", {"type": "content_block_stop",
                                                    "index": 0}))
        index = 1
    for offset, call in enumerate(reply.tool_calls):
        at = index + offset
        events.append(_event("content_block_start", {
            "type": "content_block_start", "index": at,
            "content_block": {"type": "tool_use", "id": call.id, "name": call.name,
                              "input": {}}}))
        half = len(call.arguments) // 2
        events += [_event("content_block_delta", {
            "type": "content_block_delta", "index": at,
            "delta": {"type": "input_json_delta", "partial_json": part}})
            for part in (call.arguments[:half], call.arguments[half:])]
        events.append(_event("content_block_stop", {"type": "content_block_stop",
                                                    "index": at}))
    events.append(_event("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": ANTHROPIC_STOP[reply.finish_reason],
                  "stop_sequence": None},
        "usage": {"output_tokens": reply.completion_tokens}}))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def error_body(reply: Reply) -> bytes:
    kind = _ERRORS.get(reply.status, "api_error")
    message_text = reply.error_message or f"fake provider error {reply.status}"
    return json.dumps({"type": "error",
                       "error": {"type": kind, "message": message_text}}).encode()
