"""Chat Completions request -> Bedrock ``Converse`` request body, sans-IO.

Field names are those of the Bedrock Runtime API reference (``Converse``,
``ContentBlock``, ``ToolConfiguration``, ``InferenceConfiguration``,
``OutputConfig``; botocore ``data/bedrock-runtime/2023-09-30/service-2.json``):

====================================  ==================================================
canonical                             Converse
====================================  ==================================================
``system`` / ``developer`` messages   ``system: [{text}]`` (all of them, in order)
user text / ``image_url`` parts       ``{text}`` / ``{image: {format, source: {bytes}}}``
                                      (``data:`` URLs only: Converse reads no URL; the
                                      bytes go base64 in JSON, as the REST-JSON
                                      protocol encodes blobs)
assistant ``tool_calls``              ``{toolUse: {toolUseId, name, input}}``
``role: tool`` messages               ``{toolResult: {toolUseId, content: [{text}]}}``
                                      in a user turn
consecutive turns of one role         merged: Converse wants user/assistant alternation
``max_completion_tokens`` /           ``inferenceConfig.maxTokens``
``max_tokens``
``temperature``, ``top_p``, ``stop``  ``temperature``, ``topP``, ``stopSequences``
``tools[].function``                  ``toolConfig.tools[].toolSpec {name, description,
                                      inputSchema: {json}, strict}``
``tool_choice`` auto / required /     ``toolChoice {auto: {}}`` / ``{any: {}}`` /
named                                 ``{tool: {name}}``
``tool_choice: none``                 no ``toolConfig`` at all (Converse has no "none";
                                      a conversation that already holds tool blocks
                                      may then be refused by Bedrock, which wants
                                      ``toolConfig`` whenever they appear)
``response_format`` json_schema       ``outputConfig.textFormat {type: json_schema,
                                      structure: {jsonSchema: {schema (a JSON string),
                                      name, description}}}``
``response_format`` json_object       the same with the schema ``{"type": "object"}``
====================================  ==================================================

Dropped (no Converse equivalent; model-specific ``additionalModelRequestFields`` are
not guessed): ``seed``, ``presence_penalty``, ``frequency_penalty``, ``logit_bias``,
``user``, ``parallel_tool_calls``, ``service_tier``, ``reasoning_effort``.  Refused
(``bad_request``), because the client would notice: ``n`` > 1, ``logprobs``, image
URLs that are not ``data:`` URLs, content parts other than text and images.
"""

from __future__ import annotations

import json
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.types import ChatRequest, Json

__all__ = ["converse_body", "image_block"]

#: ``ImageFormat`` by the media type of a ``data:`` URL.
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}


def _refuse(message: str) -> ProviderError:
    return ProviderError("bad_request", message, provider="bedrock")


def converse_body(request: ChatRequest) -> Json:
    """The JSON body of ``POST /model/{modelId}/converse[-stream]``."""
    if (request.get("n") or 1) > 1:
        raise _refuse("Bedrock Converse returns one choice: n must be 1")
    if request.get("logprobs") or request.get("top_logprobs"):
        raise _refuse("Bedrock Converse does not return logprobs")
    system: list[Json] = []
    turns: list[Json] = []
    for message in request.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system += [{"text": text} for text in _texts(message.get("content"), role)]
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content")))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message)])
        else:
            raise _refuse(f"message role {role!r} is not supported")
    body: Json = {"messages": turns}
    if system:
        body["system"] = system
    inference = _inference(request)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(request)
    if tool_config:
        body["toolConfig"] = tool_config
    output = _output_config(request.get("response_format"))
    if output:
        body["outputConfig"] = output
    return body


def _append(turns: list[Json], role: str, blocks: list[Json]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any, role: str) -> list[str]:
    """The non-blank texts of a string or a list of text parts (Converse refuses
    blank text blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content.strip() else []
    texts: list[str] = []
    for part in content:
        if part.get("type") not in ("text", "refusal"):
            raise _refuse(f"a {role} message may hold only text, not {part.get('type')!r}")
        text = part.get("text") or part.get("refusal") or ""
        if text.strip():
            texts.append(text)
    return texts


def _user_blocks(content: Any) -> list[Json]:
    if content is None or isinstance(content, str):
        return [{"text": text} for text in _texts(content, "user")]
    blocks: list[Json] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if (part.get("text") or "").strip():
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            blocks.append(image_block(image.get("url", "") if isinstance(image, dict)
                                      else str(image)))
        else:
            raise _refuse(f"content part {kind!r} is not supported by Bedrock here")
    return blocks


def image_block(url: str) -> Json:
    """``{image: {format, source: {bytes}}}`` from a ``data:<type>;base64,`` URL."""
    head, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not head.endswith(";base64"):
        raise _refuse("Bedrock reads images only from base64 data: URLs "
                      "(fetch the image and send it as data:image/...;base64,...)")
    media = head[len("data:"):-len(";base64")].lower()
    if media not in _IMAGE_FORMATS:
        raise _refuse(f"image type {media!r} is not one of png, jpeg, gif, webp")
    return {"image": {"format": _IMAGE_FORMATS[media],
                      "source": {"bytes": "".join(data.split())}}}


def _assistant_blocks(message: Json) -> list[Json]:
    blocks: list[Json] = [{"text": text}
                          for text in _texts(message.get("content"), "assistant")]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments)
        except ValueError as exc:
            raise _refuse(f"tool call {call.get('id')!r} has arguments that are not "
                          f"JSON: {exc}") from exc
        blocks.append({"toolUse": {"toolUseId": call.get("id"),
                                   "name": function.get("name"), "input": parsed}})
    return blocks


def _tool_result(message: Json) -> Json:
    content = message.get("content")
    texts = ([content] if isinstance(content, str)
             else [part.get("text", "") for part in content or []])
    return {"toolResult": {"toolUseId": message.get("tool_call_id"),
                           "content": [{"text": text} for text in texts]}}


def _inference(request: ChatRequest) -> Json:
    config: Json = {}
    max_tokens = request.get("max_completion_tokens") or request.get("max_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if request.get(ours) is not None:
            config[theirs] = request[ours]
    stop = request.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _tool_config(request: ChatRequest) -> Json | None:
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    if not tools or choice == "none":
        return None
    specs: list[Json] = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            raise _refuse(f"tool type {tool.get('type')!r} is not supported by Bedrock")
        function = tool["function"]
        spec: Json = {"name": function["name"],
                      "inputSchema": {"json": function.get("parameters")
                                      or {"type": "object", "properties": {}}}}
        if function.get("description"):
            spec["description"] = function["description"]
        if function.get("strict") is not None:
            spec["strict"] = function["strict"]
        specs.append({"toolSpec": spec})
    config: Json = {"tools": specs}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    return config


def _output_config(response_format: Json | None) -> Json | None:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        schema: Json = {"name": "json_object", "schema": '{"type": "object"}'}
    elif kind == "json_schema":
        given = (response_format or {}).get("json_schema") or {}
        schema = {"name": given.get("name", "response"),
                  "schema": json.dumps(given.get("schema") or {"type": "object"})}
        if given.get("description"):
            schema["description"] = given["description"]
    else:
        return None
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
