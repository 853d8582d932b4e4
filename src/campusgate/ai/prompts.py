"""Prompts as APIs, sans-IO: the template language, a call's body, and the rendering
of a prompt version into a canonical chat request (``ai.prompts``).

Templates know one thing: ``{{name}}`` (spaces inside allowed) is replaced by the
variable's value.  ``\\{{`` is a literal ``{{``; any other ``{{`` is an error at load
time, so a Jinja habit (``{{ user.name }}``, ``{% if %}`` is plain text) never reaches a
model unnoticed.  Values are inserted in one pass and never read again as templates:
a caller's text cannot name another variable.

A call's body is ``{"variables": {...}, "version": n, "stream": bool,
"stream_options": {...}, "user": "..."}`` (all optional).  Every missing, unknown or
ill-typed variable is named in one 400.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.types import ChatRequest
from campusgate.config.ai_prompts import AiPromptVersion, PromptVariable, matches

__all__ = ["PromptCall", "TemplateError", "fill", "parse_call", "render", "template_names",
           "variable_values"]

_PIECE = re.compile(r"\\\{\{|\{\{([^{}]*)\}\}|\{\{")
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
#: The fields of a call's body.
CALL_FIELDS = ("variables", "version", "stream", "stream_options", "user")


class TemplateError(ValueError):
    """A template that is not one (said at load time)."""


@dataclass(frozen=True)
class _Slot:
    name: str


def _pieces(text: str) -> list[str | _Slot]:
    out: list[str | _Slot] = []
    pos = 0
    for found in _PIECE.finditer(text):
        out.append(text[pos:found.start()])
        inner = found.group(1)
        name = None if inner is None else _NAME.fullmatch(inner)
        if found.group(0) == "\\{{":
            out.append("{{")
        elif name is None:
            shown = found.group(0) if inner is not None else text[found.start():][:20]
            raise TemplateError(f"{shown!r} at character {found.start()} is not a variable: "
                                "write {{name}} (a letter or _, then letters, digits or _), "
                                "or \\{{ for literal braces")
        else:
            out.append(_Slot(name.group(1)))
        pos = found.end()
    out.append(text[pos:])
    return out


def template_names(text: str) -> list[str]:
    """The variables ``text`` uses, each once, in order (TemplateError if malformed)."""
    names = [p.name for p in _pieces(text) if isinstance(p, _Slot)]
    return list(dict.fromkeys(names))


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{{name}}`` replaced by ``values[name]``."""
    return "".join(p if isinstance(p, str) else values[p.name] for p in _pieces(text))


def _bad(message: str, code: str | None = None) -> ProviderError:
    return ProviderError("bad_request", message, status=400, code=code)


def _text(spec: PromptVariable, value: object) -> str:
    if isinstance(value, str):
        return value
    if spec.type == "integer" and isinstance(value, float):
        return str(int(value))  # 4.0 is the integer 4
    return json.dumps(value)  # true/false, 5, 0.25: as JSON writes them


def _value(name: str, spec: PromptVariable, value: object) -> str | ProviderError:
    if not matches(spec.type, value):
        return _bad(f"variable {name!r} must be {'an' if spec.type == 'integer' else 'a'} "
                    f"{spec.type}, not {json.dumps(value)[:40]}")
    text = _text(spec, value)
    if spec.max_length is not None and len(text) > spec.max_length:
        return _bad(f"variable {name!r} is longer than {spec.max_length} characters")
    return text


def variable_values(version: AiPromptVersion, supplied: object) -> dict[str, str]:
    """Every declared variable's text: given, or its default.  A ``bad_request`` (400)
    names every variable missing, unknown or of the wrong type at once."""
    if supplied is None:
        supplied = {}
    if not isinstance(supplied, dict):
        raise _bad("'variables' must be a JSON object of name: value")
    declared = version.variables
    missing = [n for n, spec in declared.items() if spec.is_required and n not in supplied]
    problems = [f"missing variable {n!r}" for n in missing]
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name not in supplied:
            values[name] = "" if spec.default is None else _text(spec, spec.default)
            continue
        made = _value(name, spec, supplied[name])
        if isinstance(made, ProviderError):
            problems.append(made.message)
        else:
            values[name] = made
    unknown = [n for n in supplied if n not in declared]
    if unknown:
        takes = ", ".join(declared) or "none"
        problems += [f"unknown variable {n!r}" for n in unknown]
        problems[-1] += f" (this prompt's variables: {takes})"
    if problems:
        raise _bad("; ".join(problems),
                   "missing_variable" if missing else "invalid_variable")
    return values


def render(version: AiPromptVersion, variables: object) -> ChatRequest:
    """The canonical (Chat Completions) request of ``version`` with ``variables``."""
    values = variable_values(version, variables)
    return {**version.parameters, "model": version.model,
            "messages": [{"role": m.role, "content": fill(m.content, values)}
                         for m in version.messages]}


@dataclass(frozen=True)
class PromptCall:
    """A call's body, checked."""

    variables: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    #: ``stream``, ``stream_options``, ``user``: passed on to the chat request.
    passed: dict[str, Any] = field(default_factory=dict)

    def request(self, version: AiPromptVersion) -> ChatRequest:
        return {**render(version, self.variables), **self.passed}


def parse_call(body: dict[str, Any]) -> PromptCall:
    """A call's body (a JSON object) as a :class:`PromptCall`, or a 400 naming what is
    wrong with it."""
    unknown = [k for k in body if k not in CALL_FIELDS]
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r} in the body: a prompt call takes "
                   f"{', '.join(CALL_FIELDS)} (put the prompt's variables in 'variables')")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _bad("'variables' must be a JSON object of name: value")
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 1):
        raise _bad("'version' must be a positive integer")
    checks = {"stream": bool, "stream_options": dict, "user": str}
    passed: dict[str, Any] = {}
    for name, kind in checks.items():
        if body.get(name) is not None:
            if not isinstance(body[name], kind):
                raise _bad(f"{name!r} must be a JSON {_JSON_NAMES[kind]}")
            passed[name] = body[name]
    return PromptCall(variables or {}, version, passed)


_JSON_NAMES: dict[type, str] = {bool: "boolean", dict: "object", str: "string"}
