"""The canonical request (OpenAI Chat Completions) as a Cohere Chat API v2 request.

Cohere API reference, "Chat" (``POST /v2/chat``) and the "Tool use" and "Structured
outputs" guides.  V2 is close to OpenAI's shape; what differs:

==========================================  =========================================
OpenAI                                      Cohere v2
==========================================  =========================================
``messages`` system/developer/user/         ``messages`` system/user/assistant/tool
assistant/tool                              (``developer`` sent as ``system``)
content parts text / ``image_url``          ``{"type": "text"}`` / ``{"type":
                                            "image_url", "image_url": {url, detail}}``
assistant ``tool_calls``                    ``tool_calls`` (same shape); the text
                                            beside them is the ``tool_plan``
tool ``tool_call_id`` + content             ``tool_call_id`` + ``content``
``tools[].function``                        ``tools[].function`` (``strict`` on any
                                            tool -> ``strict_tools: true``)
``tool_choice`` ``required`` / ``none``     ``REQUIRED`` / ``NONE``
``tool_choice`` ``auto``                    left out (Cohere's default)
``tool_choice`` a named function            ``REQUIRED`` with only that tool sent:
                                            Cohere cannot name one
``response_format`` json_object             ``{"type": "json_object"}``
``response_format`` json_schema             ``{"type": "json_object", "json_schema"}``
``stop``                                    ``stop_sequences``
``top_p`` / ``top_k`` (an extension)        ``p`` / ``k``
``max_completion_tokens`` / ``max_tokens``  ``max_tokens``
``temperature``, ``seed``, penalties        the same names
==========================================  =========================================

``n > 1`` cannot be had (one generation per call): ``bad_request``.  Dropped:
``user``, ``parallel_tool_calls``, ``logit_bias``, ``logprobs``, ``top_logprobs``,
``stream_options`` (Cohere always reports usage), ``store``, ``metadata``.
"""

from __future__ import annotations

from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.sampling import sampling_parameters
from campusgate.ai.types import ChatRequest, Json

__all__ = ["cohere_body"]


_SAMPLING = {"temperature": "temperature", "top_p": "p", "top_k": "k", "seed": "seed",
             "frequency_penalty": "frequency_penalty",
             "presence_penalty": "presence_penalty"}


def cohere_body(request: ChatRequest, model: str) -> Json:
    """The JSON body of ``POST /v2/chat``."""
    body: Json = {"model": model,
                  "messages": [_message(m) for m in request.get("messages") or []]}
    tools = [_tool(t) for t in request.get("tools") or [] if t.get("type") == "function"]
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice["function"]["name"]
        tools = [t for t in tools if t["function"]["name"] == name]
        if not tools:
            raise _bad(f"tool_choice names {name!r}, which is not among the tools")
        body["tool_choice"] = "REQUIRED"
    elif choice in ("required", "none"):
        body["tool_choice"] = str(choice).upper()
    elif choice not in (None, "auto"):
        raise _bad(f"tool_choice {choice!r} is not one Cohere can follow")
    if tools:
        body["tools"] = tools
        if any(t.get("function", {}).get("strict") for t in request["tools"]):
            body["strict_tools"] = True
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        body["response_format"] = {"type": "json_object"}
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            body["response_format"]["json_schema"] = schema
    body.update(sampling_parameters(request, _SAMPLING, max_tokens="max_tokens",
                                    stop="stop_sequences"))
    if request.get("n") not in (None, 1):
        raise _bad("Cohere gives one answer per call: n must be 1")
    if request.get("stream"):
        body["stream"] = True
    return body


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_request", message, provider="cohere")


def _message(message: Json) -> Json:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": _text(content)}
    if role == "user":
        return {"role": "user", "content": _user_content(content)}
    if role == "assistant":
        out: Json = {"role": "assistant"}
        text = _text(content)
        calls = message.get("tool_calls")
        if text:
            out["tool_plan" if calls else "content"] = text
        if calls:
            out["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["function"]["name"],
                                               "arguments": c["function"]["arguments"]}}
                                 for c in calls]
        return out
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.get("tool_call_id", ""),
                "content": _text(content)}
    raise _bad(f"a message of role {role!r} cannot be sent to Cohere")


def _text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise _bad(f"a {part.get('type')!r} part where Cohere takes only text")
        texts.append(part["text"])
    return "".join(texts)


def _user_content(content: Any) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[Json] = []
    for part in content:
        if part.get("type") == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            image = part["image_url"]
            parts.append({"type": "image_url", "image_url":
                          image if isinstance(image, dict) else {"url": image}})
        else:
            raise _bad(f"a {part.get('type')!r} content part cannot be sent to Cohere")
    return parts


def _tool(tool: Json) -> Json:
    function = tool["function"]
    out: Json = {"name": function["name"]}
    for key in ("description", "parameters"):
        if function.get(key):
            out[key] = function[key]
    return {"type": "function", "function": out}
