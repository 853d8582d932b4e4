"""Value templates for the transformer plugins: ``{consumer.name}``, ``{headers.NAME}``...

A template is text with variables in braces, checked when the config loads:

- ``{consumer.id}``, ``{consumer.name}``, ``{consumer.custom_id}``: the authenticated
  consumer;
- ``{headers.NAME}``: a request header (the first, case-insensitive);
- ``{query.NAME}``: a query-string parameter (the first, percent-decoded);
- ``{params.NAME}``: a parameter of the route's path template.

``{{`` and ``}}`` are literal braces.  When a variable has no value for a request (no
consumer, no such header), the template renders None and the caller skips that one
operation, rather than sending an empty or half-filled value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import Literal
from urllib.parse import unquote_plus

from campusgate.proxy.context import RequestContext

__all__ = ["Template", "query_value"]

Kind = Literal["text", "consumer", "header", "query", "param"]
_VARIABLE = re.compile(r"^(consumer|headers|query|params)\.([A-Za-z0-9_.~-]+)$")
_KINDS: dict[str, Kind] = {"consumer": "consumer", "headers": "header", "query": "query",
                           "params": "param"}
_CONSUMER_FIELDS = ("id", "name", "custom_id")


def query_value(query: str, name: str) -> str | None:
    """The first value of parameter ``name`` in a raw query string, decoded."""
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name or unquote_plus(key) == name:
            return unquote_plus(value)
    return None


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and variables, in order."""

    parts: tuple[tuple[Kind, str], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        """ValueError says what is wrong with ``text``."""
        parts: list[tuple[Kind, str]] = []
        try:
            pieces = list(Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"template {text!r}: {exc} (write {{{{ or }}}} for a literal "
                             "brace)") from None
        for literal, field, spec, conversion in pieces:
            if literal:
                parts.append(("text", literal))
            if field is None:
                continue
            match = _VARIABLE.match(field)
            if spec or conversion or match is None:
                raise ValueError(f"template {text!r}: unknown variable {{{field}}}; use "
                                 "{consumer.id|name|custom_id}, {headers.NAME}, "
                                 "{query.NAME} or {params.NAME}")
            kind = _KINDS[match.group(1)]
            name = match.group(2)
            if kind == "consumer" and name not in _CONSUMER_FIELDS:
                raise ValueError(f"template {text!r}: consumer has id, name and custom_id, "
                                 f"not {name!r}")
            parts.append((kind, name.lower() if kind == "header" else name))
        return cls(tuple(parts))

    @property
    def constant(self) -> str | None:
        """The text, when the template has no variables."""
        if all(kind == "text" for kind, _ in self.parts):
            return "".join(value for _, value in self.parts)
        return None

    def render(self, ctx: RequestContext) -> str | None:
        """The value for ``ctx``, or None when a variable has none."""
        out: list[str] = []
        for kind, name in self.parts:
            value: str | None
            if kind == "text":
                value = name
            elif kind == "header":
                raw = ctx.header(name.encode("latin-1"))
                value = None if raw is None else raw.decode("latin-1")
            elif kind == "query":
                value = query_value(ctx.query, name)
            elif kind == "param":
                value = ctx.params.get(name)
            else:
                consumer = ctx.consumer
                value = None if consumer is None else getattr(consumer, name)
            if value is None:
                return None
            out.append(value)
        return "".join(out)
