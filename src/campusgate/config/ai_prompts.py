"""Prompts published as REST APIs (the ``ai.prompts`` list): a named, versioned chat
template with typed variables, a model of ``ai.models`` and its parameters.

Each version's messages are templates in which ``{{name}}`` is a variable
(:mod:`campusgate.ai.prompts` renders them; nothing else is evaluated).  At load time
every variable a message uses must be declared, every declared variable used, the
model must be one of ``ai.models``, the version numbers unique and ``active`` one of
them.  The version served is ``active``, else the highest.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from campusgate.config.common import Name, StrictModel

__all__ = ["AiPrompt", "AiPromptVersion", "PromptMessage", "PromptVariable", "PromptsPath",
           "check_prompts"]

VariableType = Literal["string", "integer", "number", "boolean"]
#: A variable's name, as written between ``{{`` and ``}}``.
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
#: Keys of a version's ``parameters`` the request itself sets.
RESERVED_PARAMETERS = ("model", "messages", "stream", "stream_options")
#: Names under ``prompts_path`` that are not prompts.
RESERVED_NAMES = ("openapi.json",)
#: The AI API's own first path segments under ``ai.path``.
_AI_SEGMENTS = ("chat", "embeddings", "models", "messages", "responses")


def _plain_path(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "{}~?# ") or value == "/":
        raise ValueError(f"ai.prompts_path {value!r} must be a plain path below '/'")
    return value.rstrip("/")


PromptsPath = Annotated[str, AfterValidator(_plain_path)]


class PromptVariable(StrictModel):
    """One variable a caller fills in (JSON ``type``-checked, sent as text)."""

    #: Without a default a variable is required; an optional one without a default
    #: renders as the empty string.
    required: bool | None = None
    default: str | int | float | bool | None = None
    description: str | None = Field(default=None, max_length=2000)
    type: VariableType = "string"
    #: The longest value accepted, in characters (strings only).
    max_length: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> PromptVariable:
        if self.required and self.default is not None:
            raise ValueError("a required variable has no default")
        if self.max_length is not None and self.type != "string":
            raise ValueError("max_length is for string variables")
        if self.default is not None and not matches(self.type, self.default):
            raise ValueError(f"the default {self.default!r} is not of type {self.type}")
        return self

    @property
    def is_required(self) -> bool:
        return self.default is None if self.required is None else self.required


def matches(kind: VariableType, value: object) -> bool:
    """Whether a JSON value is of a variable's type (JSON Schema's meaning)."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not math.isfinite(value):
        return False
    return kind == "number" or float(value).is_integer()


class PromptMessage(StrictModel):
    role: Literal["system", "developer", "user", "assistant"]
    #: A template: ``{{name}}`` is a variable, ``\\{{`` a literal ``{{``.
    content: str = Field(min_length=1, max_length=1_000_000)


class AiPromptVersion(StrictModel):
    version: int = Field(ge=1)
    #: A model name of ``ai.models``.
    model: str = Field(min_length=1, max_length=256)
    messages: list[PromptMessage] = Field(min_length=1)
    #: Further Chat Completions fields (``temperature``, ``max_tokens``...).
    parameters: dict[str, object] = Field(default_factory=dict)
    variables: dict[VariableName, PromptVariable] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _templates(self) -> AiPromptVersion:
        from campusgate.ai.prompts import TemplateError, template_names

        reserved = [k for k in RESERVED_PARAMETERS if k in self.parameters]
        if reserved:
            raise ValueError(f"version {self.version}: parameters may not set {reserved[0]!r}")
        used: list[str] = []
        for number, message in enumerate(self.messages):
            try:
                used += template_names(message.content)
            except TemplateError as exc:
                raise ValueError(f"version {self.version}, messages[{number}]: {exc}") from None
        for name in used:
            if name not in self.variables:
                raise ValueError(f"version {self.version}: variable {name!r} is used but not "
                                 "declared in variables")
        for name in self.variables:
            if name not in used:
                raise ValueError(f"version {self.version}: variable {name!r} is declared but "
                                 "no message uses it")
        return self


class AiPrompt(StrictModel):
    """A prompt served at ``POST {ai.prompts_path}/{name}``."""

    name: Name
    description: str = Field(default="", max_length=2000)
    versions: list[AiPromptVersion] = Field(min_length=1)
    #: The version served when a call names none (default: the highest).
    active: int | None = None

    @model_validator(mode="after")
    def _versions(self) -> AiPrompt:
        if self.name in RESERVED_NAMES:
            raise ValueError(f"prompt name {self.name!r} is reserved")
        numbers = [v.version for v in self.versions]
        if len(set(numbers)) != len(numbers):
            dup = next(n for n in numbers if numbers.count(n) > 1)
            raise ValueError(f"prompt {self.name!r}: version {dup} is given twice")
        if self.active is not None and self.active not in numbers:
            raise ValueError(f"prompt {self.name!r}: active version {self.active} is not "
                             "one of its versions")
        return self

    def version(self, number: int | None = None) -> AiPromptVersion | None:
        """Version ``number``, or the one served by default."""
        number = number or self.active or max(v.version for v in self.versions)
        return next((v for v in self.versions if v.version == number), None)


def check_prompts(prompts: list[AiPrompt], models: list[str], path: str,
                  prompts_path: str) -> None:
    """What ``ai.prompts`` must agree on with the rest of ``ai`` (raises ValueError)."""
    names = [p.name for p in prompts]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"duplicate name in ai.prompts: {dup!r}")
    for prompt in prompts:
        for version in prompt.versions:
            if version.model not in models:
                raise ValueError(f"prompt {prompt.name!r} version {version.version}: unknown "
                                 f"model {version.model!r} (not in ai.models)")
    first = prompts_path[len(path):].split("/")[1] if prompts_path.startswith(
        path + "/") else None
    if prompts_path == path or path.startswith(prompts_path + "/") or first in _AI_SEGMENTS:
        raise ValueError(f"ai.prompts_path {prompts_path!r} overlaps the AI endpoints under "
                         f"ai.path {path or '/'!r}")
