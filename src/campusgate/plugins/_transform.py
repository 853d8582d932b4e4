"""The operations of the transformer plugins, as plain functions over plain values.

``request-transformer`` and ``response-transformer`` apply, in this order, ``remove``,
``rename``, ``replace`` (only what is present), ``add`` (only what is absent) and
``append`` (always) to headers, query-string parameters and JSON body fields.  The
config shapes (what users write) and their load-time checks live here too; the two
plugin modules only wire them to phases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote_plus

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from campusgate.plugins._templates import Template
from campusgate.proxy.context import HeaderList, RequestContext, header_value

__all__ = [
    "RESPONSE_FORBIDDEN",
    "UPSTREAM_FORBIDDEN",
    "HeaderOps",
    "JsonOps",
    "QueryOps",
    "is_json",
    "transform_json",
]

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                         "transfer-encoding", "upgrade", "content-length"})
#: Request headers the gateway itself sets or frames: no transformer may touch them.
UPSTREAM_FORBIDDEN: Final = _HOP_BY_HOP | {
    "host", "expect", "proxy-authorization", "x-forwarded-for", "x-forwarded-proto",
    "x-forwarded-host", "x-request-id"}
#: Response headers the gateway itself sets or frames.
RESPONSE_FORBIDDEN: Final = _HOP_BY_HOP | {"x-request-id"}

_FORBID = ConfigDict(extra="forbid")


@with_config(_FORBID)
class Names(TypedDict, total=False):
    """What ``remove`` takes: names per part of the message."""

    headers: list[str]
    querystring: list[str]
    json: list[str]


@with_config(_FORBID)
class Renames(TypedDict, total=False):
    """What ``rename`` takes: old name -> new name."""

    headers: dict[str, str]
    querystring: dict[str, str]
    json: dict[str, str]


@with_config(_FORBID)
class Values(TypedDict, total=False):
    """What ``replace``, ``add`` and ``append`` take: name -> value (a template);
    ``append`` also takes a list of values per header or parameter."""

    headers: dict[str, str | list[str]]
    querystring: dict[str, str | list[str]]
    json: dict[str, Any]


# ---------------------------------------------------------------- load-time checks


def pairs(values: Mapping[str, str | list[str]], many: bool, where: str) -> list[tuple[str, str]]:
    """(name, value) pairs; a list of values only where ``many`` (``append``)."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, list):
            if not many:
                raise ValueError(f"{where}.{name}: one value (a list only in append)")
            out += ((name, v) for v in value)
        else:
            out.append((name, value))
    return out


def header_name(name: str, forbidden: frozenset[str], where: str) -> bytes:
    if not _TOKEN.match(name):
        raise ValueError(f"{where}: {name!r} is not a valid header name")
    if name.lower() in forbidden:
        raise ValueError(f"{where}: the gateway sets {name} itself; it cannot be transformed")
    return name.lower().encode("ascii")


def template(value: str, where: str) -> Template:
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{where}: a value cannot hold CR, LF or NUL")
    try:
        return Template.parse(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def json_path(path: str, where: str) -> tuple[str, ...]:
    keys = tuple(path.split("."))
    if not all(keys):
        raise ValueError(f"{where}: {path!r} is not a field name or dotted path")
    return keys


def _encode(text: str | None) -> bytes | None:
    """A rendered header value as bytes; None when it would break the header block."""
    if text is None or any(c in text for c in "\r\n\0"):
        return None
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


# ---------------------------------------------------------------- headers


@dataclass(frozen=True, slots=True)
class HeaderOps:
    """Header operations; names are lower-case bytes."""

    remove: frozenset[bytes] = frozenset()
    rename: tuple[tuple[bytes, bytes], ...] = ()
    replace: tuple[tuple[bytes, Template], ...] = ()
    add: tuple[tuple[bytes, Template], ...] = ()
    append: tuple[tuple[bytes, Template], ...] = ()

    @classmethod
    def build(cls, remove: Names, rename: Renames, replace: Values, add: Values,
              append: Values, forbidden: frozenset[str]) -> HeaderOps:
        def name(n: str, op: str) -> bytes:
            return header_name(n, forbidden, f"{op}.headers")

        def values(op: str, given: Values) -> tuple[tuple[bytes, Template], ...]:
            return tuple((name(n, op), template(v, f"{op}.headers.{n}"))
                         for n, v in pairs(given.get("headers", {}), op == "append",
                                           f"{op}.headers"))

        return cls(frozenset(name(n, "remove") for n in remove.get("headers", [])),
                   tuple((name(a, "rename"), name(b, "rename"))
                         for a, b in rename.get("headers", {}).items()),
                   values("replace", replace), values("add", add), values("append", append))

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    def apply(self, headers: HeaderList, ctx: RequestContext) -> HeaderList:
        """The headers after the operations (a new list); templates read ``ctx``."""
        out = [h for h in headers if h[0] not in self.remove] if self.remove else list(headers)
        for old, new in self.rename:
            if any(n == old for n, _ in out):
                out = [(new if n == old else n, v) for n, v in out if n != new]
        for name, value_template in self.replace:
            first = next((i for i, (n, _) in enumerate(out) if n == name), None)
            value = _encode(value_template.render(ctx))
            if first is not None and value is not None:
                out = [h for h in out if h[0] != name]
                out.insert(first, (name, value))
        for name, value_template in self.add:
            if not any(n == name for n, _ in out):
                value = _encode(value_template.render(ctx))
                if value is not None:
                    out.append((name, value))
        for name, value_template in self.append:
            value = _encode(value_template.render(ctx))
            if value is not None:
                out.append((name, value))
        return out


# ---------------------------------------------------------------- query string


@dataclass(frozen=True, slots=True)
class QueryOps:
    """Query-string operations on the raw string: untouched parameters keep their
    bytes; new values are percent-encoded (RFC 3986 section 2.1)."""

    remove: frozenset[str] = frozenset()
    rename: tuple[tuple[str, str], ...] = ()
    replace: tuple[tuple[str, Template], ...] = ()
    add: tuple[tuple[str, Template], ...] = ()
    append: tuple[tuple[str, Template], ...] = ()

    @classmethod
    def build(cls, remove: Names, rename: Renames, replace: Values, add: Values,
              append: Values) -> QueryOps:
        def values(op: str, given: Values) -> tuple[tuple[str, Template], ...]:
            found = pairs(given.get("querystring", {}), op == "append", f"{op}.querystring")
            return tuple((n, template(v, f"{op}.querystring.{n}")) for n, v in found)

        for name in [*remove.get("querystring", []), *rename.get("querystring", {}).keys(),
                     *rename.get("querystring", {}).values()]:
            if not name:
                raise ValueError("querystring: a parameter name cannot be empty")
        return cls(frozenset(remove.get("querystring", [])),
                   tuple(rename.get("querystring", {}).items()),
                   values("replace", replace), values("add", add), values("append", append))

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    def apply(self, query: str, ctx: RequestContext) -> str:
        params = [(unquote_plus(p.partition("=")[0]), p) for p in query.split("&") if p]
        if self.remove:
            params = [p for p in params if p[0] not in self.remove]
        for old, new in self.rename:
            if any(n == old for n, _ in params):
                params = [(new, quote(new, safe="") + _rest(raw)) if name == old
                          else (name, raw) for name, raw in params if name != new]
        for name, value_template in self.replace:
            value = value_template.render(ctx)
            if value is not None and any(n == name for n, _ in params):
                first = next(i for i, (n, _) in enumerate(params) if n == name)
                params = [p for p in params if p[0] != name]
                params.insert(first, (name, _pair(name, value)))
        for name, value_template in self.add:
            value = value_template.render(ctx)
            if value is not None and not any(n == name for n, _ in params):
                params.append((name, _pair(name, value)))
        for name, value_template in self.append:
            value = value_template.render(ctx)
            if value is not None:
                params.append((name, _pair(name, value)))
        return "&".join(raw for _, raw in params)


def _rest(raw: str) -> str:
    """``=value`` of a raw ``name=value`` pair (empty for a bare name)."""
    _, eq, value = raw.partition("=")
    return eq + value


def _pair(name: str, value: str) -> str:
    return quote(name, safe="") + "=" + quote(value, safe="")


# ---------------------------------------------------------------- JSON bodies

Path = tuple[str, ...]
_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class JsonOps:
    """Operations on the fields of a JSON object body: a top-level key, or a dotted
    path into nested objects (``user.address.city``).  String values are templates."""

    remove: tuple[Path, ...] = ()
    rename: tuple[tuple[Path, Path], ...] = ()
    replace: tuple[tuple[Path, Any], ...] = ()
    add: tuple[tuple[Path, Any], ...] = ()
    append: tuple[tuple[Path, Any], ...] = ()

    @classmethod
    def build(cls, remove: Names, rename: Renames, replace: Values, add: Values,
              append: Values) -> JsonOps:
        def values(op: str, given: Values) -> tuple[tuple[Path, Any], ...]:
            return tuple((json_path(p, f"{op}.json"),
                          template(v, f"{op}.json.{p}") if isinstance(v, str) else v)
                         for p, v in given.get("json", {}).items())

        return cls(tuple(json_path(p, "remove.json") for p in remove.get("json", [])),
                   tuple((json_path(a, "rename.json"), json_path(b, "rename.json"))
                         for a, b in rename.get("json", {}).items()),
                   values("replace", replace), values("add", add), values("append", append))

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)

    @property
    def templated(self) -> bool:
        return any(isinstance(v, Template)
                   for op in (self.replace, self.add, self.append) for _, v in op)

    def render(self, ctx: RequestContext) -> JsonOps:
        """These operations with their templates filled in for ``ctx`` (an operation
        whose template has no value for ``ctx`` is dropped)."""
        def fill(op: Iterable[tuple[Path, Any]]) -> tuple[tuple[Path, Any], ...]:
            out = []
            for path, value in op:
                if isinstance(value, Template):
                    value = value.render(ctx)
                    if value is None:
                        continue
                out.append((path, value))
            return tuple(out)

        return JsonOps(self.remove, self.rename, fill(self.replace), fill(self.add),
                       fill(self.append))

    def apply(self, doc: dict[str, Any]) -> None:
        """Apply rendered operations to ``doc`` in place."""
        for path in self.remove:
            parent = _parent(doc, path, create=False)
            if parent is not None:
                parent.pop(path[-1], None)
        for old, new in self.rename:
            parent = _parent(doc, old, create=False)
            if parent is None or old[-1] not in parent:
                continue
            target = _parent(doc, new, create=True)
            if target is not None:
                target[new[-1]] = parent.pop(old[-1])
        for path, value in self.replace:
            parent = _parent(doc, path, create=False)
            if parent is not None and path[-1] in parent:
                parent[path[-1]] = value
        for path, value in self.add:
            parent = _parent(doc, path, create=True)
            if parent is not None and path[-1] not in parent:
                parent[path[-1]] = value
        for path, value in self.append:
            parent = _parent(doc, path, create=True)
            if parent is None:
                continue
            old = parent.get(path[-1], _MISSING)
            if old is _MISSING:
                parent[path[-1]] = [value]
            elif isinstance(old, list):
                old.append(value)
            else:
                parent[path[-1]] = [old, value]


def _parent(doc: dict[str, Any], path: Path, create: bool) -> dict[str, Any] | None:
    """The object holding ``path``'s last key; None when a step is missing (and not
    ``create``) or is not an object."""
    node = doc
    for key in path[:-1]:
        child = node.get(key, _MISSING)
        if child is _MISSING and create:
            child = node[key] = {}
        if not isinstance(child, dict):
            return None
        node = child
    return node


def is_json(headers: HeaderList) -> bool:
    """A JSON media type (``application/json`` or ``*/*+json``, RFC 6839 section 3.1),
    not content-coded (RFC 9110 section 8.4)."""
    content_type = header_value(headers, b"content-type")
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    if media != b"application/json" and not media.endswith(b"+json"):
        return False
    coding = header_value(headers, b"content-encoding")
    return coding is None or coding.strip().lower() in (b"", b"identity")


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def transform_json(body: bytes, ops: JsonOps) -> bytes | None:
    """``body`` with ``ops`` applied, or None when it is not a JSON object (the caller
    leaves it as it is)."""
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    ops.apply(doc)
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()
    except ValueError:  # a float too large for JSON (1e400 parsed as inf)
        return None
