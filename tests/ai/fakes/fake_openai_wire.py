"""OpenAI's wire format, as the API reference documents it: ``POST /v1/chat/completions``
(a ``chat.completion``, or ``chat.completion.chunk`` server-sent events ending in
``data: [DONE]``, with a last ``choices: []`` chunk carrying ``usage`` when
``stream_options.include_usage`` is set), ``POST /v1/embeddings`` (floats or
``encoding_format: base64``: little-endian float32) and the error object
``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from fake_reply import Reply

__all__ = ["chat_completion", "chat_events", "embeddings", "error_body"]

CREATED = 1_760_000_000
_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error",
                                                        "invalid_api_key"),
           403: ("insufficient_quota", None), 404: ("invalid_request_error",
                                                     "model_not_found"),
           429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None),
           503: ("server_error", None)}


def _usage(reply: Reply) -> dict[str, Any]:
    return {"prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens,
                                      "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def chat_completion(reply: Reply, model: str) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None,
                               "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls]
    return json.dumps({
        "id": "chatcmpl-fake0001", "object": "chat.completion", "created": CREATED,
        "model": model, "system_fingerprint": "fp_fake", "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": reply.finish_reason}],
        "usage": _usage(reply)}).encode()


def chat_events(reply: Reply, model: str, include_usage: bool) -> list[bytes]:
    """Every event of the stream, ``data: [DONE]`` last."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": "chatcmpl-fake0001", "object": "chat.completion.chunk",
            "created": CREATED, "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
        if include_usage:
            body["usage"] = None
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in reply.text_pieces()]
    for index, call in enumerate(reply.tool_calls):
        events.append(chunk({"tool_calls": [
            {"index": index, "id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": ""}}]}))
        half = len(call.arguments) // 2
        for part in (call.arguments[:half], call.arguments[half:]):
            if part:
                events.append(chunk({"tool_calls": [
                    {"index": index, "function": {"arguments": part}}]}))
    events.append(chunk({}, reply.finish_reason))
    if include_usage:
        events.append(b"data: " + json.dumps({
            "id": "chatcmpl-fake0001", "object": "chat.completion.chunk",
            "created": CREATED, "model": model, "system_fingerprint": "fp_fake",
            "choices": [], "usage": _usage(reply)}).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def embeddings(body: dict[str, Any], reply: Reply) -> bytes:
    """A vector of 8 floats per input, the same for the same text."""
    inputs = body.get("input", "")
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    data = []
    for index, text in enumerate(texts):
        seed = sum(str(text).encode()) % 97
        vector = [round((seed + i) / 100.0, 2) for i in range(8)]
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return json.dumps({"object": "list", "data": data, "model": body.get("model", ""),
                       "usage": {"prompt_tokens": reply.prompt_tokens,
                                 "total_tokens": reply.prompt_tokens}}).encode()


def error_body(reply: Reply) -> bytes:
    kind, code = _ERRORS.get(reply.status, ("server_error", None))
    message = reply.error_message or f"fake provider error {reply.status}"
    return json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": code}}).encode()
