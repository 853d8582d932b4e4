"""The canonical request (OpenAI Chat Completions) as a Gemini ``GenerateContentRequest``.

Gemini API reference, "Generating content" (``models.generateContent``), "Caching >
Content / Part", "Function calling" and "GenerationConfig":

=========================================  ===========================================
OpenAI                                     Gemini
=========================================  ===========================================
``system`` / ``developer`` messages        ``systemInstruction.parts[].text`` (all of
                                           them, in order: Gemini has one)
``user`` / ``assistant``                   ``contents[]`` with role ``user`` / ``model``
text part                                  ``{"text"}``
``image_url`` with a ``data:`` URL         ``{"inlineData": {mimeType, data}}``
``image_url`` with an http(s) URL          ``{"fileData": {fileUri, mimeType}}`` (see
                                           below)
``input_audio`` {data, format}             ``inlineData`` ``audio/<format>``
``file`` {file_data: data: URL}            ``inlineData``
assistant ``tool_calls``                   ``{"functionCall": {name, args}}`` parts
``role: tool`` (``tool_call_id``)          ``{"functionResponse": {name, response}}``
                                           parts, role ``user``; consecutive results
                                           in one content (Gemini wants all answers to
                                           one turn's calls together)
``tools[].function``                       ``tools[{functionDeclarations}]``, the
                                           schema cleaned (:mod:`.gemini_schema`)
``tool_choice`` auto/none/required/named   ``toolConfig.functionCallingConfig.mode``
                                           AUTO/NONE/ANY, ANY + ``allowedFunctionNames``
``response_format`` json_object            ``responseMimeType: application/json``
``response_format`` json_schema            ... and ``responseSchema`` (cleaned)
``stop``                                   ``stopSequences``
``temperature`` / ``top_p`` / ``seed``     ``temperature`` / ``topP`` / ``seed``
``max_completion_tokens`` / ``max_tokens`` ``maxOutputTokens``
``presence_penalty`` / ``frequency_...``   ``presencePenalty`` / ``frequencyPenalty``
``n``                                      ``candidateCount`` (not when streaming)
=========================================  ===========================================

Decisions where the references leave room:

- An http(s) image URL is sent as ``fileData.fileUri`` with a MIME type guessed from
  its extension (``image/jpeg`` when there is none).  The Gemini API reads only
  Files-API URIs, YouTube and (on newer models) some public URLs there; others fail at
  Gemini with its own 400, which the client sees.  Fetching the image ourselves
  would be I/O in the translator.
- A tool result must be a JSON object at Gemini (``FunctionResponse.response`` is a
  ``Struct``): content that parses as an object is sent as is, anything else
  (a list, a number, plain text) as ``{"result": ...}``.  The function's name comes
  from the assistant call with the same ``tool_call_id``.
- Tool call ids are not sent back (Gemini matches answers by name and order); the
  ``thoughtSignature`` Gemini 2.5+/3 want back with a call travels inside the id we
  made for it (:func:`split_call_id`).
- Dropped, having no Gemini equivalent: ``user``, ``parallel_tool_calls``,
  ``logit_bias``, ``logprobs``, ``top_logprobs``, ``stream_options`` (Gemini always
  reports usage), ``store``, ``metadata``, ``service_tier``, ``reasoning_effort``.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.gemini_schema import gemini_schema
from campusgate.ai.providers.sampling import sampling_parameters
from campusgate.ai.types import ChatRequest, Json

__all__ = ["THOUGHT_MARK", "call_id", "gemini_body", "split_call_id"]

#: Between the call id and a thought signature carried in it.
THOUGHT_MARK = "__thought__"


def call_id(index: int, part: Json) -> str:
    """The OpenAI id of a ``functionCall`` part: Gemini's ``id`` when it gave one, else
    ``call_<index>`` (stable: the same in every split of a stream), with the part's
    ``thoughtSignature`` (URL-safe base64, so the id stays ``[A-Za-z0-9_-]``)."""
    base = str(part["functionCall"].get("id") or f"call_{index}")
    signature = part.get("thoughtSignature")
    if not signature:
        return base
    raw = base64.b64decode(signature + "=" * (-len(signature) % 4))
    return base + THOUGHT_MARK + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def split_call_id(value: str) -> tuple[str, str | None]:
    """The id and the thought signature (standard base64) that :func:`call_id` joined."""
    base, mark, signature = value.partition(THOUGHT_MARK)
    if not mark:
        return value, None
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return base, base64.b64encode(raw).decode()


def gemini_body(request: ChatRequest) -> Json:
    """The JSON body of ``generateContent`` / ``streamGenerateContent``."""
    system: list[Json] = []
    contents: list[Json] = []
    names: dict[str, str] = {}  # tool_call_id -> function name
    for message in request.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system += [{"text": text} for text in _texts(message.get("content"))]
        elif role == "user":
            contents.append({"role": "user", "parts": _parts(message.get("content"))})
        elif role == "assistant":
            parts = [{"text": t} for t in _texts(message.get("content")) if t]
            for call in message.get("tool_calls") or []:
                names[call.get("id", "")] = call["function"]["name"]
                parts.append(_function_call(call))
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
        elif role == "tool":
            part = _function_response(message, names)
            last = contents[-1] if contents else None
            if last and last["role"] == "user" and "functionResponse" in last["parts"][-1]:
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise _bad(f"a message of role {role!r} cannot be sent to Gemini")
    body: Json = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = [_declaration(tool) for tool in request.get("tools") or []
             if tool.get("type") == "function"]
    if tools:
        body["tools"] = [{"functionDeclarations": tools}]
    choice = request.get("tool_choice")
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _tool_choice(choice)}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_request", message, provider="gemini")


def _texts(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    out = []
    for part in content:
        if part.get("type") != "text":
            raise _bad(f"a {part.get('type')!r} part where Gemini takes only text")
        out.append(part["text"])
    return out


def _parts(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[Json] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]["url"] if isinstance(part["image_url"], dict) \
                else part["image_url"]
            parts.append(_media(url))
        elif kind == "input_audio":
            audio = part["input_audio"]
            parts.append({"inlineData": {"mimeType": f"audio/{audio['format']}",
                                         "data": audio["data"]}})
        elif kind == "file" and part["file"].get("file_data"):
            parts.append(_media(part["file"]["file_data"]))
        else:
            raise _bad(f"a {kind!r} content part cannot be sent to Gemini")
    return parts or [{"text": ""}]


def _media(url: str) -> Json:
    if url.startswith("data:"):
        head, comma, data = url[5:].partition(",")
        mime, _, encoding = head.partition(";")
        if not comma or encoding != "base64":
            raise _bad("a data: URL must be base64 (data:<type>;base64,<data>)")
        return {"inlineData": {"mimeType": mime or "application/octet-stream",
                               "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
        return {"fileData": {"fileUri": url, "mimeType": mime}}
    raise _bad("an image URL must be a data: URL or an http(s) URL")


def _function_call(call: Json) -> Json:
    function = call["function"]
    try:
        args = json.loads(function.get("arguments") or "{}")
    except ValueError as error:
        raise _bad(f"the arguments of tool call {call.get('id')!r} are not JSON") \
            from error
    part: Json = {"functionCall": {"name": function["name"], "args": args}}
    signature = split_call_id(str(call.get("id", "")))[1]
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(message: Json, names: dict[str, str]) -> Json:
    call = message.get("tool_call_id", "")
    if call not in names:
        raise _bad(f"tool result {call!r} answers no tool call of an assistant message")
    text = "".join(_texts(message.get("content")))
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": names[call], "response": response}}


def _declaration(tool: Json) -> Json:
    function = tool["function"]
    out: Json = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    if parameters and parameters.get("properties"):  # Gemini refuses empty objects
        out["parameters"] = gemini_schema(parameters)
    return out


def _tool_choice(choice: Any) -> Json:
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"mode": modes[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise _bad(f"tool_choice {choice!r} is not one Gemini can follow")


_SAMPLING = {"temperature": "temperature", "top_p": "topP", "seed": "seed",
             "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty"}


def _generation_config(request: ChatRequest) -> Json:
    config = sampling_parameters(request, _SAMPLING, max_tokens="maxOutputTokens",
                                 stop="stopSequences")
    n = request.get("n")
    if n is not None and n != 1:
        if request.get("stream"):
            raise _bad("n > 1 cannot be streamed from Gemini")
        config["candidateCount"] = n
    response_format = request.get("response_format") or {}
    kind = response_format.get("type")
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = gemini_schema(schema)
    return config
