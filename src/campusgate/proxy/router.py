"""Compiled route matching: a revision's routes become an index that ``match`` looks up.

Sans-IO: plain values in, a :class:`RouteMatch` (or ``None``) out.  The proxy builds
one :class:`Router` per config revision and calls :meth:`Router.match` per request.

The index never scans all routes.  Hosts are dictionaries (exact hosts, and wildcard
suffixes looked up once per label of the request host); plain and template paths
live in a segment trie walked along the request path; only regex paths are tried one
by one.  The precedence rules are in ``docs/routing.md``; in short, for each host
tier from the most specific down, the first candidate in this order whose method,
header and query conditions hold wins:

1. regex paths of routes with ``priority > 0``;
2. plain and template paths, deepest first (a literal segment beats a
   ``{param}`` at the same position, from the left);
3. the other regex paths;
4. routes with no path condition;

and among candidates equal on all of that: more header+query conditions, then a
method condition, then higher ``priority``, then earlier in the config.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeAlias, TypeVar
from urllib.parse import parse_qs

from campusgate.config.model import HTTP_METHODS, Route

__all__ = ["RouteMatch", "RoutePatternError", "Router"]

T = TypeVar("T")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PARAM_SEGMENT = re.compile(r"\{(" + _NAME + r")\}")
_REST_SEGMENT = re.compile(r"\{(" + _NAME + r")\*\}")
_PIECE = re.compile(r"\{(" + _NAME + r")\}|([^{}]+)")

# Kinds of template segments, for ranking: higher is more specific.
_LITERAL, _MIXED, _PARAM = 2, 1, 0
# How a plain/template pattern ends, for ranking at equal depth.
_TAIL_SLASH, _TAIL_PREFIX, _TAIL_REST = 2, 1, 0


class RoutePatternError(ValueError):
    """A route path the router cannot compile (bad ``{template}`` syntax)."""

    def __init__(self, route: str, pattern: str, reason: str) -> None:
        super().__init__(f"route {route!r}: path {pattern!r}: {reason}")
        self.route = route
        self.pattern = pattern
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RouteMatch(Generic[T]):
    """The route that won, with what its path pattern captured."""

    payload: T
    params: dict[str, str]
    matched_path: str
    pattern: str


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    """One path pattern of one route (a route with no paths has one entry)."""

    payload: T
    pattern: str
    regex: re.Pattern[str] | None
    param_names: tuple[str, ...]
    methods: frozenset[str]
    headers: tuple[tuple[bytes, frozenset[bytes]], ...]
    query: tuple[tuple[str, frozenset[str]], ...]
    # Ascending sort puts the best first: (-conditions, -has_method, -priority, order).
    rank: tuple[int, int, int, int]


class _Request:
    """The request as the matcher sees it; headers and query are indexed on demand."""

    __slots__ = ("_header_map", "_query_map", "headers", "path", "query")

    def __init__(self, path: str, headers: Sequence[tuple[bytes, bytes]], query: str) -> None:
        self.path = path
        self.headers = headers
        self.query = query
        self._header_map: dict[bytes, list[bytes]] | None = None
        self._query_map: dict[str, list[str]] | None = None

    def conditions_hold(self, entry: _Entry[T]) -> bool:
        """Whether the entry's header and query conditions hold (not its methods)."""
        if entry.headers:
            if self._header_map is None:
                self._header_map = {}
                for name, value in self.headers:
                    self._header_map.setdefault(name, []).append(value)
            for name, accepted in entry.headers:
                if not any(v in accepted for v in self._header_map.get(name, ())):
                    return False
        if entry.query:
            if self._query_map is None:
                self._query_map = parse_qs(self.query, keep_blank_values=True)
            for key, wanted in entry.query:
                if not any(v in wanted for v in self._query_map.get(key, ())):
                    return False
        return True


# A path candidate: (entry, captures, end of matched_path) for trie entries, or
# (entry, regex match, -1) for regex entries.
_Hit: TypeAlias = "tuple[_Entry[T], tuple[str, ...] | re.Match[str], int]"


class _Node(Generic[T]):
    """A trie node: the patterns whose segments end here, and the ways onward."""

    __slots__ = ("literal", "mixed", "param", "prefix", "rank", "rest", "slash")

    def __init__(self, rank: tuple[int, ...]) -> None:
        self.rank = rank  # (depth, kind of segment 1, kind of segment 2, ...)
        self.literal: dict[str, _Node[T]] = {}
        self.mixed: tuple[tuple[str, re.Pattern[str], _Node[T]], ...] = ()
        self.param: _Node[T] | None = None
        # Entries (tuples: the empty one is shared, which keeps big tables compact):
        self.prefix: tuple[_Entry[T], ...] = ()  # "/a/b": the path is /a/b or below it
        self.slash: tuple[_Entry[T], ...] = ()  # "/a/b/": there is a segment after /a/b
        self.rest: tuple[_Entry[T], ...] = ()  # "/a/b/{rest*}": anything from here

    def child(self, segment: str) -> _Node[T]:
        """The node one template segment further (created if new)."""
        depth = self.rank[0] + 1
        if "{" not in segment and "}" not in segment:
            node = self.literal.get(segment)
            if node is None:
                node = self.literal[segment] = _Node((depth, *self.rank[1:], _LITERAL))
            return node
        if _PARAM_SEGMENT.fullmatch(segment):
            if self.param is None:
                self.param = _Node((depth, *self.rank[1:], _PARAM))
            return self.param
        source = _mixed_regex(segment)[0]
        for known, _, node in self.mixed:
            if known == source:
                return node
        node = _Node((depth, *self.rank[1:], _MIXED))
        self.mixed = (*self.mixed, (source, re.compile(source), node))
        return node

    def add(self, tail: int, entry: _Entry[T]) -> None:
        if tail == _TAIL_PREFIX:
            self.prefix = (*self.prefix, entry)
        elif tail == _TAIL_SLASH:
            self.slash = (*self.slash, entry)
        else:
            self.rest = (*self.rest, entry)

    def finish(self) -> None:
        self.prefix, self.slash, self.rest = map(_by_rank, (self.prefix, self.slash, self.rest))
        for node in self.literal.values():
            node.finish()
        for _, _, node in self.mixed:
            node.finish()
        if self.param is not None:
            self.param.finish()


def _by_rank(entries: tuple[_Entry[T], ...]) -> tuple[_Entry[T], ...]:
    return tuple(sorted(entries, key=lambda e: e.rank)) if len(entries) > 1 else entries


def _mixed_regex(segment: str) -> tuple[str, list[str]]:
    """``{id}.json`` -> (``(.+?)\\.json``, [``id``]); raises ValueError on bad braces."""
    source, names, pos = "", [], 0
    for piece in _PIECE.finditer(segment):
        if piece.start() != pos:
            break
        pos = piece.end()
        if piece.group(1):
            names.append(piece.group(1))
            source += "(.+?)"
        else:
            source += re.escape(piece.group(2))
    if pos != len(segment) or not names:
        raise ValueError(f"bad template segment {segment!r}")
    return source, names


class _PathIndex(Generic[T]):
    """All routes of one host tier, indexed by path."""

    __slots__ = ("pathless", "promoted", "regexes", "root")

    def __init__(self) -> None:
        self.root = _Node[T]((0,))
        self.promoted: tuple[_Entry[T], ...] = ()  # regex paths with priority > 0
        self.regexes: tuple[_Entry[T], ...] = ()
        self.pathless: tuple[_Entry[T], ...] = ()

    def add(self, entry: _Entry[T], segments: list[str], tail: int, priority: int) -> None:
        if entry.regex is not None:
            if priority > 0:
                self.promoted = (*self.promoted, entry)
            else:
                self.regexes = (*self.regexes, entry)
        elif not entry.pattern:
            self.pathless = (*self.pathless, entry)
        else:
            node = self.root
            for segment in segments:
                node = node.child(segment)
            node.add(tail, entry)

    def finish(self) -> None:
        self.root.finish()
        self.promoted, self.regexes, self.pathless = map(
            _by_rank, (self.promoted, self.regexes, self.pathless)
        )

    def hits(self, req: _Request) -> Iterator[_Hit[T]]:
        """Every entry whose path condition holds, best first (see module docstring)."""
        path = req.path
        for entry in self.promoted:
            assert entry.regex is not None
            found = entry.regex.match(path)
            if found:
                yield entry, found, -1
        if path.startswith("/"):
            yield from self._trie_hits(path)
        for entry in self.regexes:
            assert entry.regex is not None
            found = entry.regex.match(path)
            if found:
                yield entry, found, -1
        for entry in self.pathless:
            yield entry, (), 0

    def _trie_hits(self, path: str) -> list[_Hit[T]]:
        segments = path[1:].split("/")
        count = len(segments)
        found: list[tuple[tuple[int, ...], tuple[_Entry[T], ...], tuple[str, ...], int]] = []
        stack: list[tuple[_Node[T], int, int, tuple[str, ...]]] = [(self.root, 0, 0, ())]
        while stack:
            node, depth, end, caps = stack.pop()
            if node.prefix:
                found.append(((*node.rank, _TAIL_PREFIX), node.prefix, caps, end))
            if node.rest:
                rest = "/".join(segments[depth:])
                found.append(((*node.rank, _TAIL_REST), node.rest, (*caps, rest), len(path)))
            if depth == count:
                continue
            if node.slash:
                found.append(((*node.rank, _TAIL_SLASH), node.slash, caps, end + 1))
            segment = segments[depth]
            next_end = end + 1 + len(segment)
            literal = node.literal.get(segment)
            if literal is not None:
                stack.append((literal, depth + 1, next_end, caps))
            for _, regex, mixed in node.mixed:
                groups = regex.fullmatch(segment)
                if groups:
                    stack.append((mixed, depth + 1, next_end, caps + groups.groups()))
            if node.param is not None and segment:
                stack.append((node.param, depth + 1, next_end, (*caps, segment)))
        if len(found) == 1:
            _, entries, caps, end = found[0]
            return [(entry, caps, end) for entry in entries]
        flat = [(key, e, caps, end) for key, entries, caps, end in found for e in entries]
        flat.sort(key=lambda item: item[1].rank)
        flat.sort(key=lambda item: item[0], reverse=True)  # stable: keeps rank order
        return [(entry, caps, end) for _, entry, caps, end in flat]


def _split_host(raw: str) -> tuple[str, str]:
    """``Example.COM:8080`` -> (``example.com``, ``example.com:8080``); no port -> ''."""
    host = raw.strip().lower()
    if host.startswith("["):
        close = host.find("]")
        name, after = (host[: close + 1], host[close + 1 :]) if close != -1 else (host, "")
        port = after[1:] if after.startswith(":") else ""
    else:
        name, sep, port = host.rpartition(":")
        if not sep or not (port == "" or port.isdigit()):
            name, port = host, ""
    name = name.rstrip(".")
    return name, f"{name}:{port}" if port else ""


def _entries(route: Route, payload: T, order: int) -> list[_Entry[T]]:
    methods = frozenset(route.methods)
    headers = tuple(
        (name.lower().encode("latin-1"), frozenset(v.encode() for v in values))
        for name, values in route.headers.items()
    )
    query = tuple((name, frozenset(values)) for name, values in route.query.items())
    rank = (-(len(headers) + len(query)), -bool(methods), -route.priority, order)
    out: list[_Entry[T]] = []
    for pattern in route.paths or [""]:
        regex = re.compile(pattern[1:]) if pattern.startswith("~") else None
        out.append(_Entry(payload, pattern, regex, (), methods, headers, query, rank))
    return out


def _template(entry: _Entry[T]) -> tuple[_Entry[T], list[str], int]:
    """Split a plain/template path: (entry with its param names, trie segments, tail)."""
    if not entry.pattern or entry.regex is not None:
        return entry, [], _TAIL_PREFIX
    segments = entry.pattern[1:].split("/")
    tail, names = _TAIL_PREFIX, []
    rest = _REST_SEGMENT.fullmatch(segments[-1])
    if (len(segments) > 1 and segments[-1] == "") or entry.pattern == "/":
        tail, segments = _TAIL_SLASH, segments[:-1]
    elif rest:
        tail, segments = _TAIL_REST, segments[:-1]
    for segment in segments:
        if _PARAM_SEGMENT.fullmatch(segment):
            names.append(segment[1:-1])
        elif "{" in segment or "}" in segment:
            names.extend(_mixed_regex(segment)[1])
    if rest:
        names.append(rest.group(1))
    if len(set(names)) != len(names):
        raise ValueError("a parameter name is used twice")
    return replace(entry, param_names=tuple(names)), segments, tail


class Router(Generic[T]):
    """A compiled, immutable route table over ``(Route, payload)`` pairs."""

    __slots__ = ("_anyhost", "_cache", "_exact", "_wildcard")

    #: Answers remembered per (method, host, path); cleared when it grows past this.
    CACHE_SIZE = 65536

    def __init__(self, routes: Sequence[tuple[Route, T]]) -> None:
        self._exact: dict[str, _PathIndex[T]] = {}
        self._wildcard: dict[str, _PathIndex[T]] = {}
        self._anyhost = _PathIndex[T]()
        # When no route looks at headers or the query, the answer depends on method,
        # host and path alone, and a lookup can be remembered.
        conditional = any(route.headers or route.query for route, _ in routes)
        self._cache: dict[tuple[str, str, str], RouteMatch[T] | None] | None = (
            None if conditional else {})
        for order, (route, payload) in enumerate(routes):
            indexes = []
            for host in route.hosts:
                if host.startswith("*."):
                    name, port = _split_host(host[2:])
                    if port:
                        raise RoutePatternError(route.name, host, "a wildcard host has no port")
                    indexes.append(self._wildcard.setdefault(name, _PathIndex()))
                else:
                    name, port = _split_host(host)
                    indexes.append(self._exact.setdefault(port or name, _PathIndex()))
            indexes = list({id(index): index for index in indexes}.values())  # dedupe
            for entry in _entries(route, payload, order):
                try:
                    entry, segments, tail = _template(entry)
                except ValueError as exc:
                    raise RoutePatternError(route.name, entry.pattern, str(exc)) from exc
                for index in indexes or [self._anyhost]:
                    index.add(entry, segments, tail, route.priority)
        for index in (self._anyhost, *self._exact.values(), *self._wildcard.values()):
            index.finish()

    def _indexes(self, host: str) -> Iterator[_PathIndex[T]]:
        """The host tiers that apply to ``host``, most specific first."""
        if self._exact or self._wildcard:
            name, with_port = _split_host(host)
            if with_port and (index := self._exact.get(with_port)) is not None:
                yield index
            if (index := self._exact.get(name)) is not None:
                yield index
            if self._wildcard:
                dot = name.find(".")
                while dot != -1:
                    if (index := self._wildcard.get(name[dot + 1 :])) is not None:
                        yield index
                    dot = name.find(".", dot + 1)
        yield self._anyhost

    def match(
        self,
        method: str,
        host: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]],
        query: str,
    ) -> RouteMatch[T] | None:
        """The best route for this request, or None (see docs/routing.md for "best").

        The returned match may be shared between requests: do not change its params.
        """
        cache = self._cache
        if cache is not None:
            key = (method, host, path)
            try:
                return cache[key]
            except KeyError:
                pass
            found = self._match(method, host, path, headers, query)
            if len(cache) >= self.CACHE_SIZE:
                cache.clear()
            cache[key] = found
            return found
        return self._match(method, host, path, headers, query)

    def _match(
        self,
        method: str,
        host: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]],
        query: str,
    ) -> RouteMatch[T] | None:
        req = _Request(path, headers, query)
        for index in self._indexes(host):
            for entry, captured, end in index.hits(req):
                if entry.methods and method not in entry.methods:
                    continue
                if (entry.headers or entry.query) and not req.conditions_hold(entry):
                    continue
                return _route_match(entry, captured, end, path)
        return None

    def allowed_methods(
        self,
        host: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]],
        query: str,
    ) -> frozenset[str]:
        """Methods that would match if the method were different: for a 405 with Allow.

        Empty set -> the answer is 404.
        """
        req = _Request(path, headers, query)
        allowed: set[str] = set()
        for index in self._indexes(host):
            for entry, _, _ in index.hits(req):
                if req.conditions_hold(entry):
                    if not entry.methods:
                        return HTTP_METHODS
                    allowed |= entry.methods
        return frozenset(allowed)


def _route_match(
    entry: _Entry[T], captured: tuple[str, ...] | re.Match[str], end: int, path: str
) -> RouteMatch[T]:
    if isinstance(captured, re.Match):
        params = {k: v for k, v in captured.groupdict().items() if v is not None}
        return RouteMatch(entry.payload, params, captured.group(0), entry.pattern)
    params = dict(zip(entry.param_names, captured, strict=True)) if captured else {}
    return RouteMatch(entry.payload, params, path[:end], entry.pattern)
