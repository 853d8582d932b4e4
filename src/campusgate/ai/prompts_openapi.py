"""What callers are told about published prompts, sans-IO: the description of a
prompt (``GET {prompts_path}/{name}``) and the OpenAPI 3.1 document of them all
(``GET {prompts_path}/openapi.json``).

The document has a path per prompt (its served version) and one per version
(``.../versions/{n}``), each with the request schema of that version's variables
(required ones in ``required``, defaults as ``default``, descriptions, ``maxLength``),
the Chat Completions answer (whole, or an event stream with ``"stream": true``) and
OpenAI's error object.  A message's template is the operator's and is never shown.
"""

from __future__ import annotations

from typing import Any

from campusgate.config.ai_prompts import AiPrompt, AiPromptVersion, PromptVariable

__all__ = ["KeyAuth", "describe", "openapi_document", "request_schema"]

#: How key-auth takes the key: (key names, in headers, in the query string).
KeyAuth = tuple[tuple[str, ...], bool, bool]
#: The prompts a caller may use, each with the versions it may use.
Visible = list[tuple[AiPrompt, list[AiPromptVersion]]]

_ERROR = "#/components/schemas/Error"
_COMPLETION = "#/components/schemas/ChatCompletion"


def _schemas() -> dict[str, Any]:
    """The answers' schemas (a new copy for each document)."""
    nullable_text = {"type": ["string", "null"]}
    return {
        "ChatCompletion": {
            "type": "object", "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "id": {"type": "string"}, "object": {"const": "chat.completion"},
                "created": {"type": "integer"},
                "model": {"type": "string", "description": "the prompt version's model"},
                "choices": {"type": "array", "items": {"type": "object", "properties": {
                    "index": {"type": "integer"},
                    "message": {"type": "object", "properties": {
                        "role": {"type": "string"}, "content": nullable_text}},
                    "finish_reason": nullable_text}}},
                "usage": {"type": "object", "properties": {
                    name: {"type": "integer"} for name in (
                        "prompt_tokens", "completion_tokens", "total_tokens")}}}},
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["message", "type"],
                                     "properties": {"message": {"type": "string"},
                                                    "type": {"type": "string"},
                                                    "param": nullable_text,
                                                    "code": nullable_text}}}},
    }


def variable_schema(spec: PromptVariable) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": spec.type}
    if spec.description:
        schema["description"] = spec.description
    if spec.default is not None:
        schema["default"] = spec.default
    if spec.max_length is not None:
        schema["maxLength"] = spec.max_length
    return schema


def _variables(version: AiPromptVersion) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {n: variable_schema(s) for n, s in version.variables.items()}}
    required = [n for n, s in version.variables.items() if s.is_required]
    if required:
        schema["required"] = required
    return schema


def request_schema(version: AiPromptVersion, numbers: list[int] | None = None
                   ) -> dict[str, Any]:
    """The JSON Schema of a call of ``version``; with ``numbers``, the body may pin one
    of these versions (the served path)."""
    properties: dict[str, Any] = {
        "variables": _variables(version),
        "stream": {"type": "boolean", "default": False,
                   "description": "answer as a Chat Completions event stream"},
        "stream_options": {"type": "object"},
        "user": {"type": "string", "description": "an id of the end user, for the provider"},
    }
    if numbers:
        properties["version"] = {"type": "integer", "enum": numbers, "description":
                                 "call this version (its variables: .../versions/{n})"}
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                              "properties": properties}
    if any(s.is_required for s in version.variables.values()):
        schema["required"] = ["variables"]
    return schema


def describe(prompt: AiPrompt, versions: list[AiPromptVersion]) -> dict[str, Any]:
    """The prompt as a caller sees it: its versions, models and variables."""
    served = prompt.version()
    return {"object": "prompt", "name": prompt.name, "description": prompt.description,
            "version": None if served is None else served.version,
            "versions": [{"version": v.version, "model": v.model,
                          "variables": {n: {**variable_schema(s), "required": s.is_required}
                                        for n, s in v.variables.items()}}
                         for v in versions]}


def _operation(prompt: AiPrompt, version: AiPromptVersion, schema: dict[str, Any],
               operation_id: str, secured: bool) -> dict[str, Any]:
    summary = prompt.description or f"The prompt {prompt.name}"
    answer = {"description": "the model's answer (OpenAI Chat Completions)", "content": {
        "application/json": {"schema": {"$ref": _COMPLETION}},
        "text/event-stream": {"schema": {"type": "string", "description":
                                         "Chat Completions chunks, with \"stream\": true"}}}}
    failure = {"content": {"application/json": {"schema": {"$ref": _ERROR}}}}
    operation: dict[str, Any] = {
        "operationId": operation_id, "summary": summary,
        "description": f"Version {version.version}, model {version.model}.",
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": schema}}},
        "responses": {"200": answer,
                      "400": {"description": "a missing, unknown or invalid variable",
                              **failure},
                      "404": {"description": "no such prompt or version", **failure},
                      "429": {"description": "a budget is used up", **failure}}}
    if secured:
        operation["responses"]["401"] = {"description": "no valid key", **failure}
    return operation


def security_schemes(auth: KeyAuth | None) -> dict[str, Any]:
    """OpenAPI security schemes for key-auth's ways of taking a key."""
    if auth is None:
        return {}
    names, in_header, in_query = auth
    schemes: dict[str, Any] = {}
    for name in names:
        if in_header and name.lower() == "authorization":
            schemes["bearer"] = {"type": "http", "scheme": "bearer",
                                 "description": "the consumer's key"}
        elif in_header:
            schemes[f"header-{name}"] = {"type": "apiKey", "in": "header", "name": name}
        if in_query and name.lower() != "authorization":
            schemes[f"query-{name}"] = {"type": "apiKey", "in": "query", "name": name}
    return schemes


def openapi_document(prompts: Visible, prompts_path: str, auth: KeyAuth | None,
                     title: str = "campusgate prompts") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``prompts`` served under ``prompts_path``."""
    schemes = security_schemes(auth)
    paths: dict[str, Any] = {}
    for prompt, versions in prompts:
        served = prompt.version()
        numbers = [v.version for v in versions]
        if served is not None:
            paths[f"{prompts_path}/{prompt.name}"] = {"post": _operation(
                prompt, served, request_schema(served, numbers), prompt.name, bool(schemes))}
        for version in versions:
            paths[f"{prompts_path}/{prompt.name}/versions/{version.version}"] = {
                "post": _operation(prompt, version, request_schema(version),
                                   f"{prompt.name}-v{version.version}", bool(schemes))}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1",
                 "description": "Prompts published as APIs by campusgate."},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
    if schemes:
        document["components"]["securitySchemes"] = schemes
        document["security"] = [{name: []} for name in schemes]
    return document
