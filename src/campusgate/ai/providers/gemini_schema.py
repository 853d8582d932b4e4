"""JSON Schema (as OpenAI tools and ``response_format`` carry it) -> Gemini's ``Schema``.

Gemini's function declarations (``FunctionDeclaration.parameters``) and
``generationConfig.responseSchema`` take a subset of OpenAPI 3.0's schema object
(Gemini API reference, "Caching > Schema": ``type``, ``format``, ``title``,
``description``, ``nullable``, ``enum``, ``items``, ``minItems``, ``maxItems``,
``properties``, ``required``, ``minProperties``, ``maxProperties``, ``minLength``,
``maxLength``, ``pattern``, ``example``, ``anyOf``, ``propertyOrdering``,
``default``, ``minimum``, ``maximum``) and answers 400 ``INVALID_ARGUMENT`` ("Unknown
name ...") to anything else.  So, as LiteLLM and Vercel's AI SDK do:

- keys outside that list are dropped (``additionalProperties``, ``$schema``,
  ``$id``, ``strict``, ``exclusiveMinimum``, ``examples``, ``const`` -- after
  ``const`` became a one-value ``enum``, ...): a constraint the model no longer sees,
  never a request refused;
- local references (``$ref: "#/$defs/X"`` or ``#/definitions/X``, as pydantic writes
  them) are inlined; a recursive one cannot be, and is a ``bad_request``;
- ``type: [T, "null"]`` becomes ``type: T`` with ``nullable: true``; ``anyOf`` with a
  ``{"type": "null"}`` branch likewise;
- ``allOf`` of one schema is that schema (pydantic's way of adding a description to a
  reference).
"""

from __future__ import annotations

from typing import Any, Final

from campusgate.ai.errors import ProviderError
from campusgate.ai.types import Json

__all__ = ["gemini_schema"]

_KEPT: Final = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "items", "minItems",
    "maxItems", "properties", "required", "minProperties", "maxProperties", "minLength",
    "maxLength", "pattern", "example", "anyOf", "propertyOrdering", "default", "minimum",
    "maximum"})
#: Deepest nesting followed (a guard against recursive references).
_MAX_DEPTH: Final = 32


def gemini_schema(schema: Json) -> Json:
    """``schema`` (JSON Schema) as Gemini's Schema object."""
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    cleaned: Json = _clean(schema, definitions, 0)
    return cleaned


def _clean(node: Any, definitions: Json, depth: int) -> Any:
    if not isinstance(node, dict):
        return node
    if depth > _MAX_DEPTH:
        raise ProviderError("bad_request", "a JSON schema nests too deeply or refers to "
                            "itself, which Gemini's schemas cannot express",
                            provider="gemini")
    if "$ref" in node:
        name = str(node["$ref"]).rpartition("/")[2]
        if name not in definitions:
            raise ProviderError("bad_request", f"the JSON schema reference {node['$ref']!r}"
                                " is not a local definition", provider="gemini")
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _clean({**definitions[name], **extra}, definitions, depth + 1)
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return _clean({**all_of[0], **rest}, definitions, depth + 1)
    out: Json = {}
    if "const" in node and "enum" not in node:
        out["enum"] = [node["const"]]
    for key, value in node.items():
        if key not in _KEPT:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _clean(sub, definitions, depth + 1)
                        for name, sub in value.items()}
        elif key == "items":
            out[key] = _clean(value, definitions, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            branches = [b for b in value if not (isinstance(b, dict)
                                                 and b.get("type") == "null")]
            if len(branches) < len(value):
                out["nullable"] = True
            cleaned = [_clean(b, definitions, depth + 1) for b in branches]
            if len(cleaned) == 1:
                out.update(cleaned[0])
            else:
                out[key] = cleaned
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) < len(value):
                out["nullable"] = True
            if len(types) == 1:
                out["type"] = types[0]
            elif types:
                out["anyOf"] = [{"type": t} for t in types]
        else:
            out[key] = value
    return out
