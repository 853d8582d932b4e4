"""Anthropic's Messages API (``POST /v1/messages``) as a client-facing API: what the
``anthropic`` SDK sends, made canonical (:func:`to_chat`), and the canonical answer
made an Anthropic ``Message`` (:func:`from_chat`).  Streams:
:mod:`.anthropic_messages_stream`.

The reverse of :mod:`campusgate.ai.providers.anthropic_request` (API reference,
"Create a Message"):

- ``system`` (a string, or text blocks kept as text parts with their
  ``cache_control``) -> one ``system`` message first;
- content blocks: ``text`` -> text parts; ``image`` (``base64`` -> a ``data:`` URL,
  ``url`` -> the URL) -> ``image_url`` parts; ``document`` (base64 PDF) -> a ``file``
  part; ``tool_use`` -> the assistant's ``tool_calls`` (``input`` as JSON text);
  ``tool_result`` -> a ``role: tool`` message each, before the rest of the user turn
  (text parts of the result joined; images in a result follow in a user message, as
  tool messages take text only; ``is_error`` has no OpenAI form and is dropped);
  ``thinking`` / ``redacted_thinking`` in the history are dropped;
- ``tools`` (``input_schema`` -> ``parameters``; server tools are refused),
  ``tool_choice`` (``any`` -> ``required``, ``tool`` -> a named function,
  ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``);
- ``stop_sequences`` -> ``stop``; ``max_tokens`` -> ``max_completion_tokens``;
  ``temperature``, ``top_p``; ``metadata.user_id`` -> ``user``;
  ``output_config.format`` (json_schema) -> ``response_format``; ``stream`` ->
  ``stream`` with ``stream_options.include_usage`` (Anthropic clients always get
  usage); ``top_k``, ``thinking``, ``service_tier`` have no OpenAI form: dropped.

The answer: text then tool_use blocks, ``stop_reason`` from the finish reason
(``stop_sequence`` with the sequence when the canonical choice names it in
``stop_reason`` and the client asked for it), usage with ``input_tokens`` the
uncached input (:func:`~campusgate.ai.providers.anthropic_wire.messages_usage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.anthropic_wire import messages_usage, stop_reason
from campusgate.ai.types import ChatRequest, ChatResponse, Json

__all__ = ["from_chat", "matched_stop_sequence", "to_chat"]


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_request", message, status=400)


def _part(block: Mapping[str, Any]) -> Json:
    """A text, image or document block as an OpenAI content part."""
    kind = block.get("type")
    if kind == "text":
        part: Json = {"type": "text", "text": block.get("text", "")}
    elif kind in ("image", "document"):
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url" and kind == "image":
            url = str(source.get("url"))
        else:
            raise _bad(f"{kind} source {source.get('type')!r} is not supported")
        part = ({"type": "image_url", "image_url": {"url": url}} if kind == "image" else
                {"type": "file", "file": {"file_data": url}})
    else:
        raise _bad(f"content block {kind!r} is not supported here")
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _tool_result(block: Mapping[str, Any]) -> tuple[Json, list[Json]]:
    """A ``tool`` message, and the images of the result for a user message."""
    content = block.get("content")
    images: list[Json] = []
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if b.get("type") == "text"]
        images = [_part(b) for b in content if b.get("type") == "image"]
        content = "".join(texts)
    return ({"role": "tool", "tool_call_id": block.get("tool_use_id"),
             "content": content or ""}, images)


def _user(content: list[Any]) -> list[Json]:
    tools: list[Json] = []
    parts: list[Json] = []
    for block in content:
        if block.get("type") == "tool_result":
            message, images = _tool_result(block)
            tools.append(message)
            parts += images
        elif block.get("type") not in ("thinking", "redacted_thinking"):
            parts.append(_part(block))
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: list[Any]) -> Json:
    text: list[str] = []
    calls: list[Json] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"),
                "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
        elif kind not in ("thinking", "redacted_thinking"):
            raise _bad(f"assistant content block {kind!r} is not supported here")
    message: Json = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: Mapping[str, Any]) -> list[Json]:
    out: list[Json] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        out.append({"role": "system", "content": [_part(b) for b in system]})
    for message in body.get("messages") or []:
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant"):
            raise _bad(f"message role {role!r} is not user or assistant")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif role == "user":
            out += _user(content or [])
        else:
            out.append(_assistant(content or []))
    return out


def _tools(body: Mapping[str, Any], out: Json) -> None:
    tools = []
    for tool in body.get("tools") or []:
        if tool.get("type") not in (None, "custom"):
            raise _bad(f"server tool {tool.get('type')!r} is not supported")
        function: Json = {"name": tool["name"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema") or {"type": "object"}
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if not isinstance(choice, Mapping):
        return
    kind = choice.get("type")
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in ("auto", "any", "none"):
        out["tool_choice"] = {"any": "required"}.get(kind, kind)
    else:
        raise _bad(f"tool_choice {kind!r} is not supported")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def to_chat(body: Mapping[str, Any]) -> ChatRequest:
    """The canonical request for a Messages API request body."""
    if not isinstance(body.get("messages"), list):
        raise _bad("messages: a list is required")
    out: ChatRequest = {"model": body.get("model"), "messages": _messages(body)}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    _tools(body, out)
    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "response", "schema": fmt.get("schema"), "strict": True}}
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def matched_stop_sequence(choice: Mapping[str, Any], request: Mapping[str, Any]
                          ) -> str | None:
    """The stop sequence that ended the text, when the canonical choice names one
    the client asked for (``stop_reason``, vLLM's extension)."""
    named = choice.get("stop_reason")
    asked = request.get("stop_sequences") or []
    return named if isinstance(named, str) and named in asked else None


def from_chat(response: ChatResponse, request: Mapping[str, Any]) -> Json:
    """The Anthropic ``Message`` for a canonical ``chat.completion``."""
    choice = response["choices"][0]
    message = choice.get("message") or {}
    content: list[Json] = []
    text = message.get("content") or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError as exc:
            raise ProviderError("bad_response", "the model's tool call arguments are not "
                                "JSON", status=502) from exc
        content.append({"type": "tool_use", "id": call.get("id"),
                        "name": function.get("name"), "input": arguments})
    sequence = matched_stop_sequence(choice, request)
    return {"id": response.get("id"), "type": "message", "role": "assistant",
            "model": response.get("model"), "content": content,
            "stop_reason": stop_reason(choice.get("finish_reason"), sequence),
            "stop_sequence": sequence, "usage": messages_usage(response.get("usage"))}
