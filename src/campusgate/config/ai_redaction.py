"""``ai.redaction``: personal data taken out of a request before it leaves for a
provider (``ai/redaction.py`` does the work; docs/ai.md, "Student data protection").

Built-in kinds (:data:`BUILTIN_KINDS`): ``email``, ``phone`` (North American with
separators, and international ``+`` numbers), ``ssn`` (US, ``123-45-6789``) and
``name`` (people of the directory: the roster and the identity provider's users).
``patterns`` adds named regular expressions (a district's student ids, ...): each is
compiled here, so a bad one is a config error naming it, and the usual catastrophic
shape -- a repeated group that itself holds an unbounded repetition, ``(\\w+\\s?)+``
-- is refused (write the inner one possessive, ``\\w++``, or use an atomic group).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from campusgate.config.common import Seconds, StrictModel

__all__ = ["BUILTIN_KINDS", "AiRedaction", "RedactionNames", "RedactionPattern",
           "nested_repetition"]

#: The kinds campusgate knows how to find by itself.
BUILTIN_KINDS = ("email", "phone", "ssn", "name")

_KIND = r"^[a-z][a-z0-9_]{0,39}$"


def _unbounded_at(text: str, i: int) -> tuple[bool, int]:
    """``(unbounded, end)`` for a quantifier starting at ``text[i]`` (``*``, ``+``,
    ``{n,}`` are unbounded unless possessive); ``end`` is past it."""
    if i >= len(text):
        return False, i
    char = text[i]
    if char in "*+":
        end = i + 1
        unbounded = True
    elif char == "{":
        close = text.find("}", i)
        body = text[i + 1:close] if close > 0 else ""
        if not re.fullmatch(r"\d*,?\d*", body) or not body:
            return False, i
        end = close + 1
        low, comma, high = body.partition(",")
        unbounded = bool(comma) and (not high or int(high) - int(low or 0) > 8)
    else:
        return False, i
    if end < len(text) and text[end] == "+":  # possessive: never backtracks
        return False, end + 1
    if end < len(text) and text[end] == "?":
        end += 1
    return unbounded, end


def nested_repetition(regex: str) -> bool:
    """Whether ``regex`` repeats a group holding an unbounded repetition (a cheap,
    conservative check, not a proof of linear time)."""
    stack: list[list[bool]] = []  # per open group: [holds a repetition, atomic]
    i, in_class = 0, False
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            holds, i = _unbounded_at(regex, i)
            if holds and stack:
                stack[-1][0] = True
            continue
        if in_class:
            in_class = char != "]" or regex[i - 1] == "["
            i += 1
            if not in_class:
                holds, i = _unbounded_at(regex, i)
                if holds and stack:
                    stack[-1][0] = True
            continue
        if char == "[":
            in_class = True
            i += 1
            if i < len(regex) and regex[i] == "^":
                i += 1
            continue
        if char == "(":
            stack.append([False, regex.startswith("(?>", i)])
            i += 1
            continue
        if char == ")" and stack:
            holds, atomic = stack.pop()
            repeated, i = _unbounded_at(regex, i + 1)
            if holds and repeated and not atomic:
                return True
            if (holds or repeated) and stack:
                stack[-1][0] = True
            continue
        holds, end = _unbounded_at(regex, i + 1)
        if holds and stack:
            stack[-1][0] = True
        i = max(end, i + 1)
    return False


class RedactionPattern(StrictModel):
    """A named regular expression: what it matches is replaced and counted under
    ``name`` (which may be a built-in kind's, to add a format to it)."""

    name: str = Field(pattern=_KIND)
    regex: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _compiles(self) -> RedactionPattern:
        try:
            compiled = re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"redaction pattern {self.name!r}: {exc}") from None
        if compiled.search("") is not None:
            raise ValueError(f"redaction pattern {self.name!r} matches empty text")
        if nested_repetition(self.regex):
            raise ValueError(f"redaction pattern {self.name!r} repeats a group that holds "
                             "a repetition, which can take exponential time: make the "
                             "inner one possessive (\\w++) or the group atomic (?>...)")
        return self


class RedactionNames(StrictModel):
    """Names of the people in the directory (``kinds`` including ``name``)."""

    source: Literal["directory"] = "directory"
    #: A family name shorter than this is never redacted alone.
    min_length: int = Field(default=3, ge=1, le=50)
    #: Redact a directory family name standing alone, not only full names.
    family_alone: bool = False
    #: Words never redacted alone (family names that are common words: May, Young).
    ignore: list[str] = Field(default_factory=list, max_length=10000)
    #: Seconds between two loads of the directory's names.
    refresh: Seconds = 600.0


class AiRedaction(StrictModel):
    """The ``ai.redaction`` section (off by default)."""

    enabled: bool = False
    #: The built-in kinds applied (a kind named by a pattern may be listed too).
    kinds: list[str] = Field(default_factory=lambda: list(BUILTIN_KINDS))
    patterns: list[RedactionPattern] = Field(default_factory=list, max_length=100)
    names: RedactionNames = Field(default_factory=RedactionNames)
    #: What replaces a match; ``{kind}`` is the kind's name.
    replacement: str = Field(default="[{kind}]", max_length=200)
    #: Only calls to these model names (the names clients send); empty: every call.
    models: list[str] = Field(default_factory=list)
    #: Characters of text one call may carry; a call with more is refused (413).
    max_chars: int = Field(default=1_000_000, ge=1000, le=100_000_000)

    @field_validator("replacement")
    @classmethod
    def _replacement(cls, value: str) -> str:
        if re.search(r"\{(?!kind\})", value):
            raise ValueError("ai.redaction.replacement may use {kind} and no other field")
        return value

    @model_validator(mode="after")
    def _kinds(self) -> AiRedaction:
        named = {p.name for p in self.patterns}
        for kind in self.kinds:
            if kind not in BUILTIN_KINDS and kind not in named:
                raise ValueError(f"ai.redaction.kinds: {kind!r} is not built in "
                                 f"({', '.join(BUILTIN_KINDS)}): give its regex under "
                                 "patterns")
        return self

    @property
    def names_enabled(self) -> bool:
        return self.enabled and "name" in self.kinds

    def applies_to(self, model: str) -> bool:
        return self.enabled and (not self.models or model in self.models)
