"""The objects of the OpenAI Responses API that both the answer (:func:`~campusgate.ai.
api.responses.from_chat`) and the stream (:mod:`~campusgate.ai.api.responses_stream`)
build: the ``response`` object, its output items, its usage.

OpenAI API reference, "Responses" -> "The response object"; the openai SDK's
``types/responses/response.py``, ``response_output_message.py``,
``response_function_tool_call.py``, ``response_usage.py``.
"""

from __future__ import annotations

import uuid

from campusgate.ai.types import Json

__all__ = ["call_item", "message_item", "new_response_id", "response_object",
           "responses_usage", "status_of"]


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def responses_usage(chat_usage: Json | None) -> Json | None:
    """Chat usage as Responses usage (``input_tokens`` counts cached ones too)."""
    if chat_usage is None:
        return None
    prompt, completion = chat_usage["prompt_tokens"], chat_usage["completion_tokens"]
    details = chat_usage.get("completion_tokens_details") or {}
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": (chat_usage.get(
                "prompt_tokens_details") or {}).get("cached_tokens", 0)},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": details.get("reasoning_tokens", 0)},
            "total_tokens": prompt + completion}


def status_of(finish_reason: str | None) -> tuple[str, Json | None]:
    """The response's ``status`` and ``incomplete_details`` for a finish reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(request: Json, *, id: str, created: int, model: str, status: str,
                    output: list[Json], usage: Json | None = None,
                    incomplete_details: Json | None = None,
                    error: Json | None = None) -> Json:
    """The ``response`` object, echoing the request's settings as OpenAI does."""
    text = request.get("text") or {}
    return {
        "id": id, "object": "response", "created_at": created, "status": status,
        "background": False, "error": error, "incomplete_details": incomplete_details,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"), "max_tool_calls": None,
        "model": model, "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"),
                      "summary": None},
        "service_tier": request.get("service_tier"), "store": False,
        "temperature": request.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [], "top_p": request.get("top_p", 1.0),
        "truncation": "disabled", "usage": usage, "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def message_item(item_id: str, status: str, text: str | None, refusal: str | None) -> Json:
    content: list[Json] = []
    if text is not None:
        content.append({"type": "output_text", "text": text, "annotations": [],
                        "logprobs": []})
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content}


def call_item(item_id: str, status: str, call_id: str, name: str, arguments: str) -> Json:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}
