"""Request-side redaction (``ai.redaction``): personal data replaced before a call
leaves for a provider, and counted by kind -- never kept, never logged.

A :class:`Redactor` is compiled once per config revision (``gateway/runtime.py``).
It walks every text of a canonical request a provider would read
(:meth:`Redactor.redact_chat`): string contents and the text parts of multi-part
contents of every message (system, user, assistant, tool results) -- never image or
file parts --, assistant refusals, the string values inside tool-call arguments (JSON:
parsed, redacted value by value and written back, so the arguments stay valid JSON;
arguments that are not JSON are redacted as text), and the ``user`` and
``metadata`` fields; and an embeddings request's ``input`` strings
(:meth:`Redactor.redact_embeddings`).  Tool definitions, schemas and model names are
the application's, not a person's, and are left alone.

Each kind has its own precompiled regex, run in priority order -- ``email`` first
(an id or phone inside an address is part of the address), then the configured
``patterns`` in their order, ``ssn``, ``phone``, and the directory's names
(``ai/directory_names.py``); a pattern named after a built-in kind runs right after
it, adding formats to it; a later match overlapping an earlier one is dropped.
The built-in patterns are linear-time; a text of more than ``max_chars`` characters
in one call is refused (413) rather than scanned unboundedly or sent unredacted.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from campusgate.ai.directory_names import NameIndex
from campusgate.ai.errors import ProviderError
from campusgate.ai.types import ChatRequest
from campusgate.config.ai_redaction import AiRedaction

__all__ = ["EMAIL", "PHONE", "SSN", "Redactor"]

#: An address: RFC 5322's dot-atom local part as people write it, a domain of
#: labels and a TLD of letters (Unicode letters allowed).  The look-behind keeps a
#: match from starting inside a run of address characters (linear time).
EMAIL = (r"(?<![\w.%+-])[\w.%+-]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}"
         r"(?![\w-])")
#: North American numbers with separators or parentheses (``(415) 555-2671``,
#: ``415.555.2671``, ``+1 415 555 2671``, ``1-800-555-0100``), and international
#: ones written with ``+`` (E.164: 8 to 15 digits, spaces, dots or dashes between).
#: A bare run of digits is not a phone number here: ids, orders and amounts look the
#: same; dates, years and ZIP codes have other shapes.
PHONE = (r"(?=[(+0-9])(?<![\w+-])(?<![0-9][.-])(?:(?:\+?1[ .-]?)?(?:\([0-9]{3}\)[ .-]?"
         r"|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}|\+[0-9](?:[ .-]?[0-9]){7,14})(?!\w)"
         r"(?![.-][0-9])")
#: A US social security number, dashes or spaces between its groups (not 000, 666 or
#: 9xx; no all-zero group).  Both digit patterns begin with what their first
#: character may be, which lets the regex engine skip the rest of a text quickly.
SSN = (r"[0-8](?<![\w-][0-8])(?!(?<=0)00|(?<=6)66)[0-9]{2}([- ])(?!00)[0-9]{2}\1"
       r"(?!0000)[0-9]{4}(?![\w-])")

_BUILTIN = {"email": EMAIL, "ssn": SSN, "phone": PHONE}


@dataclass(frozen=True)
class _Finder:
    kind: str
    pattern: re.Pattern[str]
    #: A character every match holds: a text without it is not scanned.
    needs: str = ""


class _Spans:
    """The non-overlapping spans claimed so far, sorted by start."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.items: list[tuple[int, int, str]] = []

    def claim(self, start: int, end: int, kind: str) -> None:
        i = bisect.bisect_right(self.starts, start)
        if i and self.items[i - 1][1] > start:
            return
        if i < len(self.starts) and self.starts[i] < end:
            return
        self.starts.insert(i, start)
        self.items.insert(i, (start, end, kind))


class Redactor:
    """The compiled ``ai.redaction`` of one revision.  ``names`` gives the current
    directory index (None: not loaded yet, names are not redacted)."""

    def __init__(self, config: AiRedaction,
                 names: Callable[[], NameIndex | None] = lambda: None) -> None:
        self.config = config
        kinds = set(config.kinds)

        def patterns(kind: str | None) -> list[_Finder]:
            """The patterns named ``kind`` (None: those not named after a built-in)."""
            return [_Finder(p.name, re.compile(p.regex)) for p in config.patterns
                    if p.name == kind or (kind is None and p.name not in _BUILTIN)]

        finders = [_Finder("email", re.compile(EMAIL), "@")] if "email" in kinds else []
        finders += patterns("email") + patterns(None)
        for kind in ("ssn", "phone"):
            finders += [_Finder(kind, re.compile(_BUILTIN[kind]))] if kind in kinds else []
            finders += patterns(kind)
        self._finders = tuple(finders)
        self._names = names if "name" in kinds else (lambda: None)
        self._ignore = frozenset(config.names.ignore)
        self._replacements: dict[str, str] = {}

    def applies_to(self, model: str) -> bool:
        """Whether calls to the model name ``model`` are redacted."""
        return self.config.applies_to(model)

    # ------------------------------------------------------------ texts

    def redact_text(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with what it holds of each kind replaced, and the counts."""
        counts: Counter[str] = Counter()
        return self.scan(text, counts), counts

    def _replacement(self, kind: str) -> str:
        found = self._replacements.get(kind)
        if found is None:
            found = self._replacements[kind] = self.config.replacement.replace(
                "{kind}", kind)
        return found

    def scan(self, text: str, counts: Counter[str]) -> str:
        """``text`` redacted; what was found is added to ``counts``."""
        spans = _Spans()
        for finder in self._finders:
            if finder.needs and finder.needs not in text:
                continue
            for found in finder.pattern.finditer(text):
                if found.end() > found.start():
                    spans.claim(found.start(), found.end(), finder.kind)
        names = self._names()
        if names is not None:
            settings = self.config.names
            for start, end in names.spans(text, family_alone=settings.family_alone,
                                          min_length=settings.min_length,
                                          ignore=self._ignore):
                spans.claim(start, end, "name")
        if not spans.items:
            return text
        out: list[str] = []
        at = 0
        for start, end, kind in spans.items:
            out += (text[at:start], self._replacement(kind))
            counts[kind] += 1
            at = end
        out.append(text[at:])
        return "".join(out)

    # ------------------------------------------------------------ requests

    def redact_chat(self, chat: ChatRequest) -> Counter[str]:
        """Redact a canonical chat request in place; the counts by kind."""
        walk = _Walk(self)
        for message in _list(chat.get("messages")):
            if isinstance(message, dict):
                walk.message(message)
        walk.field(chat, "user")
        metadata = chat.get("metadata")
        if isinstance(metadata, dict):
            for key in list(metadata):
                walk.field(metadata, key)
        return walk.counts

    def redact_embeddings(self, request: dict[str, Any]) -> Counter[str]:
        """Redact an embeddings request's ``input`` strings in place (token arrays
        are left as they are); the counts by kind."""
        walk = _Walk(self)
        value = request.get("input")
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    value[i] = walk.text(item)
        else:
            walk.field(request, "input")
        return walk.counts


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _Walk:
    """One request's walk: the counts, and the characters scanned (bounded)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.counts: Counter[str] = Counter()
        self.left = redactor.config.max_chars

    def text(self, text: str) -> str:
        self.left -= len(text)
        if self.left < 0:
            raise ProviderError(
                "bad_request", "the request carries more text than redaction scans "
                f"({self.redactor.config.max_chars} characters, ai.redaction.max_chars)",
                status=413, code="request_too_large")
        return self.redactor.scan(text, self.counts)

    def field(self, holder: dict[str, Any], key: str) -> None:
        value = holder.get(key)
        if isinstance(value, str):
            holder[key] = self.text(value)

    def message(self, message: dict[str, Any]) -> None:
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = self.text(content)
        for part in _list(content):
            if isinstance(part, dict) and part.get("type") in ("text", "refusal"):
                self.field(part, part["type"])
        self.field(message, "refusal")
        for call in _list(message.get("tool_calls")):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                self.arguments(function)
        if isinstance(message.get("function_call"), dict):
            self.arguments(message["function_call"])

    def arguments(self, function: dict[str, Any]) -> None:
        """Tool-call arguments: the strings inside the JSON, keys left alone."""
        raw = function.get("arguments")
        if not isinstance(raw, str):
            return
        before = sum(self.counts.values())
        try:
            value = self.json_value(json.loads(raw))
        except (ValueError, RecursionError):  # not JSON (or absurdly deep): as text
            function["arguments"] = self.text(raw)
            return
        if sum(self.counts.values()) != before:
            function["arguments"] = json.dumps(value, ensure_ascii=False)

    def json_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json_value(v) for k, v in value.items()}
        return value
