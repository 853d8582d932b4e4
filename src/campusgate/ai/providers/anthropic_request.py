"""A canonical request (OpenAI Chat Completions) as the body of Anthropic's
``POST /v1/messages`` (Messages API reference, "Create a Message").

Mapping (where the two differ):

- ``system`` and ``developer`` messages, wherever they stand, become the top-level
  ``system`` (a list of text blocks, in order): Anthropic has no system role.
- Messages become content blocks; consecutive turns of one role are merged into one
  (Anthropic wants user and assistant to alternate).  ``role: tool`` results are
  ``tool_result`` blocks of a user turn, so consecutive results share one turn and
  come before the user's own text, as the tool-use guide requires.  A message left
  with no content (an empty string) is skipped: Anthropic refuses empty turns.
- ``image_url`` parts: a ``data:`` URL is a ``base64`` image source, an http(s) URL a
  ``url`` source ("Vision"); ``file`` parts carrying a PDF ``data:`` URL are
  ``document`` blocks.  Other parts (audio) are refused.  ``cache_control`` on a part
  is kept (prompt caching).
- assistant ``tool_calls`` are ``tool_use`` blocks; ``arguments`` must be JSON.
- ``max_tokens`` is required by Anthropic: ``max_completion_tokens``, else
  ``max_tokens``, else the deployment's ``max_tokens`` option, else
  :data:`DEFAULT_MAX_TOKENS`.
- ``stop`` -> ``stop_sequences``; ``temperature`` and ``top_p`` as they are (Anthropic
  takes temperature in 0..1 and answers 400 above it: no silent clamping);
  ``user`` -> ``metadata.user_id``.
- ``tools`` (functions) -> ``{name, description, input_schema}``; ``tool_choice``
  ``auto``/``none``/``required``/a named function -> ``auto``/``none``/``any``/
  ``{"type": "tool", "name"}``; ``parallel_tool_calls: false`` ->
  ``disable_parallel_tool_use`` ("Tool use": tool_choice).
- ``response_format``: ``json_schema`` -> ``output_config.format`` (structured
  outputs, native on current models); ``json_object`` has no native form (Anthropic's
  format needs a schema), so a system instruction asks for one JSON object.
- ``n > 1`` and ``logprobs`` cannot be honoured: bad_request.  ``seed``,
  ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``stream_options``
  (Anthropic always reports usage), ``reasoning_effort`` are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.anthropic_wire import PROVIDER
from campusgate.ai.types import ChatRequest, Json

__all__ = ["DEFAULT_MAX_TOKENS", "JSON_OBJECT_INSTRUCTION", "messages_body"]

#: ``max_tokens`` when the client gave none (Anthropic requires one).
DEFAULT_MAX_TOKENS: Final = 4096
JSON_OBJECT_INSTRUCTION: Final = ("Respond with a single valid JSON object and nothing "
                                  "else: no prose, no code fences.")
_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_request", message, status=400, provider=PROVIDER)


def _text_of(content: Any) -> str:
    """The text of a system/developer/tool message (a string or text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content
                   if isinstance(part, Mapping) and part.get("type") == "text")


def _data_url(url: str) -> tuple[str, str]:
    """``data:<media type>;base64,<data>`` -> (media type, data)."""
    head, comma, data = url.partition(",")
    media_type, _, encoding = head[5:].partition(";")
    if not comma or encoding != "base64":
        raise _bad("a data: URL must be base64-encoded")
    return media_type, data


def _image(part: Mapping[str, Any]) -> Json:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise _bad("an image_url part needs a url")
    if url.startswith("data:"):
        media_type, data = _data_url(url)
        if media_type not in _IMAGE_TYPES:
            raise _bad(f"anthropic takes jpeg, png, gif and webp images, not {media_type}")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document(part: Mapping[str, Any]) -> Json:
    file = part.get("file") or {}
    url = file.get("file_data") if isinstance(file, Mapping) else None
    if not isinstance(url, str) or not url.startswith("data:application/pdf"):
        raise _bad("anthropic takes file parts as PDF data: URLs (file_data) only")
    media_type, data = _data_url(url)
    return {"type": "document", "source": {"type": "base64", "media_type": media_type,
                                           "data": data}}


def _blocks(content: Any) -> list[Json]:
    """A user or assistant message's content as content blocks (empty text dropped:
    Anthropic refuses empty text blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Json] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind) or ""
            if not text:
                continue
            block: Json = {"type": "text", "text": text}
        elif kind == "image_url":
            block = _image(part)
        elif kind == "file":
            block = _document(part)
        else:
            raise _bad(f"anthropic does not take {kind!r} content parts")
        if part.get("cache_control") is not None:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _tool_use(call: Mapping[str, Any]) -> Json:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError as exc:
        raise _bad(f"tool call {call.get('id')}: arguments are not JSON ({exc})") from exc
    if not isinstance(arguments, dict):
        raise _bad(f"tool call {call.get('id')}: arguments must be a JSON object")
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
            "input": arguments}


def _turn(message: Mapping[str, Any]) -> tuple[str, list[Json]]:
    role = message.get("role")
    if role == "user":
        return "user", _blocks(message.get("content"))
    if role == "assistant":
        calls = [_tool_use(call) for call in message.get("tool_calls") or []]
        return "assistant", _blocks(message.get("content")) + calls
    if role == "tool":
        content = message.get("content")
        result: Json = {"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                        "content": _text_of(content)}
        return "user", [result]
    raise _bad(f"anthropic does not take {role!r} messages")


def _conversation(messages: list[Json]) -> tuple[list[Json], list[Json]]:
    """(system blocks, alternating messages)."""
    system: list[Json] = []
    turns: list[Json] = []
    for message in messages:
        if message.get("role") in ("system", "developer"):
            system.extend(_blocks(message.get("content")))
            continue
        role, blocks = _turn(message)
        if not blocks:  # Anthropic refuses empty turns; an empty one says nothing
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tools(request: ChatRequest, body: Json) -> None:
    tools = request.get("tools")
    if not tools:
        return
    out: list[Json] = []
    for tool in tools:
        if tool.get("type") != "function":
            raise _bad(f"anthropic does not take {tool.get('type')!r} tools")
        function = tool["function"]
        entry: Json = {"name": function["name"]}
        if function.get("description"):
            entry["description"] = function["description"]
        entry["input_schema"] = function.get("parameters") or {"type": "object",
                                                               "properties": {}}
        out.append(entry)
    body["tools"] = out
    choice = request.get("tool_choice")
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise _bad("tool_choice names no function")
        mapped: Json = {"type": "tool", "name": name}
    else:
        mapped = {"type": {"required": "any"}.get(choice or "auto", choice or "auto")}
        if mapped["type"] not in ("auto", "any", "none"):
            raise _bad(f"tool_choice {choice!r} is not one of auto, none, required")
    if request.get("parallel_tool_calls") is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    if choice is not None or "disable_parallel_tool_use" in mapped:
        body["tool_choice"] = mapped


def _response_format(request: ChatRequest, system: list[Json], body: Json) -> None:
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif fmt.get("type") == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})


def messages_body(request: ChatRequest, model: str, default_max_tokens: int) -> Json:
    """The Messages API body for ``request``, to run on ``model``."""
    if (request.get("n") or 1) > 1:
        raise _bad("anthropic gives one choice per request: n must be 1")
    if request.get("logprobs"):
        raise _bad("anthropic does not report logprobs")
    system, turns = _conversation(list(request.get("messages") or []))
    max_tokens = request.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = request.get("max_tokens")
    body: Json = {"model": model, "max_tokens": default_max_tokens if max_tokens is None
                  else max_tokens, "messages": turns}
    _response_format(request, system, body)
    if system:
        body["system"] = system
    stop = request.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for name in ("temperature", "top_p"):
        if request.get(name) is not None:
            body[name] = request[name]
    _tools(request, body)
    if request.get("user"):
        body["metadata"] = {"user_id": request["user"]}
    if request.get("stream"):
        body["stream"] = True
    return body
