"""The OpenAI Responses API (``POST /v1/responses``) as a client-facing API, over the
canonical Chat Completions form.

OpenAI API reference, "Responses" -> "Create a model response", "The response object"
and "Streaming events"; the openai SDK's ``types/responses`` (``ResponseCreateParams``,
``Response``, ``ResponseUsage``, ``ResponseInputItemParam``).

:func:`to_chat` -- the request:

==============================================  ==========================================
Responses                                       Chat Completions
==============================================  ==========================================
``instructions``                                a first ``system`` message
``input`` string                                one ``user`` message
``message`` items (user/system/developer)       messages; ``input_text`` -> ``text``,
                                                ``input_image`` -> ``image_url`` (URL or
                                                ``data:``), ``input_file`` -> ``file``
``message`` items (assistant)                   assistant text (``output_text`` parts
                                                joined), ``refusal``
``function_call`` items                         ``tool_calls`` of the assistant message
                                                before them (or of a new one)
``function_call_output`` items                  ``role: tool`` messages
``reasoning`` items                             dropped (no Chat equivalent)
``tools`` (``type: function``)                  ``tools[{type: function, function}]``
``tool_choice`` none/auto/required/function     the same; ``allowed_tools`` -> the tools
                                                list cut to those, and its ``mode``
``text.format`` json_object / json_schema       ``response_format``
``text.verbosity``, ``reasoning.effort``        ``verbosity``, ``reasoning_effort``
``max_output_tokens``                           ``max_completion_tokens``
``temperature``, ``top_p``,                     the same
``parallel_tool_calls``, ``user``,
``safety_identifier``, ``prompt_cache_key``,
``service_tier``
``stream``                                      ``stream`` + ``stream_options.
                                                include_usage`` (``response.completed``
                                                carries the usage)
==============================================  ==========================================

``previous_response_id``, ``conversation`` and ``prompt`` need responses stored at the
gateway, and hosted tools (web search, file search, ...) need OpenAI's servers: they
are ``bad_request`` naming what is not supported.  ``store``, ``truncation`` and
``include`` are ignored (nothing is stored; ``truncation: auto`` becomes a
context-length error instead).

:func:`from_chat` -- the answer: a ``message`` item (``output_text`` part, and a
``refusal`` part when the model refused), one ``function_call`` item per tool call;
usage ``input_tokens`` (cached included, as in Chat) /
``input_tokens_details.cached_tokens`` / ``output_tokens`` /
``output_tokens_details.reasoning_tokens``; ``status`` ``completed``, or
``incomplete`` with ``incomplete_details.reason`` ``max_output_tokens`` (finish
``length``) or ``content_filter``.  :class:`ResponsesStreamEncoder` (in
:mod:`~campusgate.ai.api.responses_stream`) does the same for a stream.
"""

from __future__ import annotations

import time
from typing import Any

from campusgate.ai.api.responses_objects import (
    call_item,
    message_item,
    new_response_id,
    response_object,
    responses_usage,
    status_of,
)
from campusgate.ai.api.responses_stream import ResponsesStreamEncoder
from campusgate.ai.errors import ProviderError
from campusgate.ai.types import ChatRequest, ChatResponse, Json

__all__ = ["ResponsesStreamEncoder", "from_chat", "to_chat"]

_UNSTORED = ("previous_response_id", "conversation", "prompt")
_SAME = ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier",
         "prompt_cache_key", "service_tier", "stream")


def _refuse(what: str) -> ProviderError:
    return ProviderError("bad_request", f"{what} is not supported by campusgate's "
                         "Responses API", status=400)


def to_chat(request: Json) -> ChatRequest:
    """The Chat Completions request of a Responses request (see the module doc)."""
    for key in _UNSTORED:
        if request.get(key):
            raise _refuse(f"{key} (campusgate stores no responses: send the whole "
                          "conversation as input)")
    messages: list[Json] = []
    if request.get("instructions"):
        messages.append({"role": "system", "content": request["instructions"]})
    items = request.get("input") or []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items:
        _item(item, messages)
    chat: ChatRequest = {"model": request.get("model"), "messages": messages}
    for key in _SAME:
        if request.get(key) is not None:
            chat[key] = request[key]
    if request.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    if request.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = request["max_output_tokens"]
    if (request.get("reasoning") or {}).get("effort"):
        chat["reasoning_effort"] = request["reasoning"]["effort"]
    text = request.get("text") or {}
    if text.get("verbosity"):
        chat["verbosity"] = text["verbosity"]
    response_format = _format(text.get("format"))
    if response_format is not None:
        chat["response_format"] = response_format
    tools = [_tool(tool) for tool in request.get("tools") or []]
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            choice = {"type": "function", "function": {"name": choice.get("name")}}
        elif choice.get("type") == "allowed_tools":
            allowed = {t.get("name") for t in choice.get("tools") or []
                       if t.get("type") == "function"}
            tools = [t for t in tools if t["function"]["name"] in allowed]
            choice = choice.get("mode") or "auto"
        else:
            raise _refuse(f"tool_choice {choice.get('type')!r}")
    if tools:
        chat["tools"] = tools
    if choice is not None:
        chat["tool_choice"] = choice
    return chat


def _item(item: Json, messages: list[Json]) -> None:
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        if role == "assistant":
            content = item.get("content")
            message: Json = {"role": "assistant", "content": content}
            if isinstance(content, list):
                message["content"] = "".join(
                    p.get("text") or "" for p in content
                    if p.get("type") in ("output_text", "input_text", "text")) or None
                refusal = "".join(p.get("refusal") or "" for p in content
                                  if p.get("type") == "refusal")
                if refusal:
                    message["refusal"] = refusal
            messages.append(message)
        else:
            content = item.get("content")
            messages.append({"role": role, "content": content if isinstance(content, str)
                             else [_part(p) for p in content or []]})
    elif kind == "function_call":
        call = {"id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if not isinstance(output, str):
            parts = [_part(p) for p in output or []]
            if any(p["type"] != "text" for p in parts):
                raise _refuse("a function_call_output with images or files")
            output = "".join(p["text"] for p in parts)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                         "content": output})
    elif kind != "reasoning":
        raise _refuse(f"an input item of type {kind!r}")


def _part(part: Json) -> Json:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "input_image" and part.get("image_url"):
        image: Json = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and (part.get("file_data") or part.get("file_id")):
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    raise _refuse(f"a content part {kind!r} without inline data or URL")


def _tool(tool: Json) -> Json:
    if tool.get("type") != "function":
        raise _refuse(f"the hosted tool {tool.get('type')!r}")
    function: Json = {"name": tool.get("name"),
                      "parameters": tool.get("parameters") or {"type": "object",
                                                                "properties": {}}}
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _format(text_format: Any) -> Json | None:
    if not isinstance(text_format, dict) or text_format.get("type") in (None, "text"):
        return None
    if text_format["type"] == "json_object":
        return {"type": "json_object"}
    if text_format["type"] == "json_schema":
        schema = {k: text_format[k] for k in ("name", "schema", "description", "strict")
                  if text_format.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise _refuse(f"text.format {text_format['type']!r}")


def from_chat(chat: ChatResponse, request: Json, *, response_id: str | None = None) -> Json:
    """The ``response`` object of a canonical ``chat.completion`` (choice 0)."""
    ident = response_id or new_response_id()
    suffix = ident.removeprefix("resp_")
    choice = chat["choices"][0]
    message = choice["message"]
    status, incomplete = status_of(choice["finish_reason"])
    output: list[Json] = []
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
    if content or message.get("refusal"):
        output.append(message_item(f"msg_{suffix}_0", "incomplete" if status == "incomplete"
                                   else "completed", content or None,
                                   message.get("refusal")))
    for call in message.get("tool_calls") or []:
        output.append(call_item(f"fc_{suffix}_{len(output)}", "completed", call["id"],
                                call["function"]["name"], call["function"]["arguments"]))
    return response_object(request, id=ident, created=int(chat.get("created") or time.time()),
                           model=chat["model"], status=status, output=output,
                           usage=responses_usage(chat.get("usage")),
                           incomplete_details=incomplete)

