"""``redirect``: answer with a redirect (RFC 9110 section 15.4) instead of proxying.

Two modes.  ``location`` is a template for the ``Location`` header: ``{path}`` (the
request path), ``{query}`` (the raw query string) and ``{params.NAME}`` (a parameter
of the route's path template) are filled in; ``{{`` and ``}}`` are literal braces.
``https: true`` sends plain-HTTP requests to the same host, path and query over
HTTPS (RFC 9110 section 4.2.2) and lets HTTPS requests through.

Templates are checked when the config loads.  So that no request can choose where
it is sent (an "open redirect"), a variable may not stand in the scheme or host of an
absolute ``location``, and a relative result that would begin with ``//`` (a
network-path reference, RFC 3986 section 4.2) has its leading slashes collapsed.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import Literal

from pydantic import field_validator, model_validator

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.addresses import AddressSet, parse_address
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = ["RedirectConfig", "RedirectPlugin", "Template", "parse_template"]

#: A literal piece of the template, or a variable: ``path``, ``query``, ``params.NAME``.
Part = tuple[Literal["text", "path", "query", "param"], str]
Template = tuple[Part, ...]

_PARAM = re.compile(r"^params\.([A-Za-z_][A-Za-z0-9_]*)$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Printable ASCII without space (RFC 3986 characters; others must be %-encoded).
_URI_CHARS = re.compile(r"^[\x21-\x7e]*$")


def parse_template(location: str) -> Template:
    """The parts of a ``location`` template; ValueError says what is wrong with it."""
    if not _URI_CHARS.match(location):
        raise ValueError("location may hold only printable ASCII without spaces "
                         "(percent-encode other characters)")
    parts: list[Part] = []
    try:
        pieces = list(Formatter().parse(location))
    except ValueError as exc:
        raise ValueError(f"location: {exc} (write {{{{ or }}}} for a literal brace)") from None
    for text, field, spec, conversion in pieces:
        if text:
            parts.append(("text", text))
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"location: {{{field}}} takes no format spec or conversion")
        match = _PARAM.match(field)
        if field in ("path", "query"):
            parts.append(("path" if field == "path" else "query", ""))
        elif match:
            parts.append(("param", match.group(1)))
        else:
            raise ValueError(f"location: unknown variable {{{field}}}; use {{path}}, "
                             "{query} or {params.NAME}")
    _check_prefix(parts)
    return tuple(parts)


def _check_prefix(parts: list[Part]) -> None:
    """Variables must not decide the scheme or host the client is sent to."""
    prefix = parts[0][1] if parts and parts[0][0] == "text" else ""
    rest = parts[1:] if prefix else parts
    first_var = rest[0][0] if rest else None
    scheme = _SCHEME.match(prefix)
    if scheme:
        after = prefix[scheme.end():]
        if first_var is not None and first_var != "path" and not re.search(r"[/?#]", after):
            raise ValueError("location: a variable cannot stand in the host of the URL "
                             "(put it after the first '/' of the path)")
        if not re.split(r"[/?#]", after, maxsplit=1)[0]:
            raise ValueError("location: the URL has no host")
    elif not prefix.startswith("/") and not (not prefix and first_var == "path"):
        raise ValueError("location must be an absolute URL (scheme://host/...) or start "
                         "with '/'")


def render(template: Template, path: str, query: str, params: dict[str, str]) -> str:
    """Fill in a template; KeyError names a route parameter that is missing."""
    out: list[str] = []
    for kind, value in template:
        if kind == "text":
            out.append(value)
        elif kind == "path":
            out.append(path if path.startswith("/") else "/" + path)
        elif kind == "query":
            out.append(query)
        else:
            out.append(params[value])
    location = "".join(out)
    if location.startswith(("//", "/\\")):
        location = "/" + location.lstrip("/\\")
    return location


def _host_without_port(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else ""
    return host.partition(":")[0]


class RedirectConfig(PluginConfig):
    #: Where to send the client: an absolute URL or a path, with ``{path}``,
    #: ``{query}`` and ``{params.NAME}`` filled in.
    location: str | None = None
    #: 301 and 308 are permanent, 302, 303 and 307 temporary; 307 and 308 keep the
    #: method and body, 303 turns them into a GET.
    status: Literal[301, 302, 303, 307, 308] = 301
    #: Append the request's query string to ``location``.
    keep_query: bool = False
    #: Send plain-HTTP requests to HTTPS on the same host (default port), path and
    #: query; HTTPS requests pass.  Instead of ``location``.
    https: bool = False

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value is not None:
            parse_template(value)
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> RedirectConfig:
        if (self.location is None) == (not self.https):
            raise ValueError("set location or https: true (exactly one)")
        if self.keep_query and self.location is not None and "{query}" in self.location:
            raise ValueError("location uses {query} and keep_query is true: the query "
                             "would be added twice")
        return self


class RedirectPlugin(Plugin):
    name = "redirect"
    priority = 1800
    config_model = RedirectConfig
    consumer_scoped = False

    def __init__(self, config: RedirectConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.template = None if config.location is None else parse_template(config.location)
        self.status = config.status
        self.keep_query = config.keep_query
        self.trusted = AddressSet(env.resources.trusted_proxies)

    def _is_https(self, ctx: RequestContext) -> bool:
        if ctx.scheme == "https":
            return True
        proto = ctx.header(b"x-forwarded-proto")
        if proto is None or proto.strip().lower() != b"https" or not self.trusted:
            return False
        peer = parse_address(ctx.client_ip)
        return peer is not None and peer in self.trusted

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        if self.template is None:
            if self._is_https(ctx):
                return None
            host = _host_without_port(ctx.host)
            if not host:
                return LocalResponse.error(400, "bad_request", "no Host to redirect to",
                                           ctx.request_id)
            location = f"https://{host}{ctx.path}"
            query = ctx.query
        else:
            try:
                location = render(self.template, ctx.path, ctx.query, ctx.params)
            except KeyError as exc:
                route = ctx.route.name if ctx.route is not None else "?"
                message = f"redirect: route {route} has no path parameter {exc.args[0]!r}"
                return LocalResponse.error(500, "plugin_misconfigured", message,
                                           ctx.request_id)
            query = ctx.query if self.keep_query else ""
        if query:
            location += ("&" if "?" in location else "?") + query
        return LocalResponse(self.status, b"", [(b"location", location.encode("latin-1"))],
                             b"text/plain")


PLUGIN = RedirectPlugin
