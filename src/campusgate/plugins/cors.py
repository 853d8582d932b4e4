"""``cors``: Cross-Origin Resource Sharing, answered at the edge.

Implements the server side of the Fetch standard's CORS protocol
(https://fetch.spec.whatwg.org/#http-cors-protocol):

- a *CORS-preflight request* (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``, Fetch "CORS-preflight request") is answered here
  with ``204`` and the ``Access-Control-Allow-*`` headers, unless
  ``preflight_continue`` passes it to the upstream; a preflight from an origin that is
  not allowed gets ``403`` with the gateway's JSON error;
- every other response (the upstream's, and the gateway's own answers such as a 401
  from authentication, so that browsers can read them) gets
  ``Access-Control-Allow-Origin``, ``-Allow-Credentials`` and ``-Expose-Headers``
  (Fetch "HTTP responses").

``Access-Control-Allow-Origin: *`` is only sent without credentials (Fetch "CORS
protocol and credentials"); with ``credentials: true`` an allowed origin is echoed
instead.  Whenever the answer depends on ``Origin``, ``Vary: Origin`` is sent on every
response, with or without ``Origin``, so shared caches keep the variants apart (Fetch
"CORS protocol and HTTP caches").
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

__all__ = ["CorsConfig", "CorsPlugin"]

#: RFC 9110 section 5.6.2: ``token``, the syntax of method and field names.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: A serialized origin: ``scheme://host[:port]``, nothing after (RFC 6454 section 6.1).
_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+$")

ALLOW_ORIGIN = b"access-control-allow-origin"
ALLOW_CREDENTIALS = b"access-control-allow-credentials"
ALLOW_METHODS = b"access-control-allow-methods"
ALLOW_HEADERS = b"access-control-allow-headers"
EXPOSE_HEADERS = b"access-control-expose-headers"
MAX_AGE = b"access-control-max-age"
VARY_ORIGIN = (b"vary", b"Origin")
#: Set in ``ctx.vars`` when this plugin answered the request itself (a preflight).
ANSWERED = "cors.answered"


def _tokens(values: list[str], what: str) -> list[str]:
    bad = [v for v in values if not _TOKEN.match(v)]
    if bad:
        raise ValueError(f"{what} must be HTTP tokens, not {', '.join(map(repr, bad))}")
    return values


class CorsConfig(PluginConfig):
    #: Allowed origins: exact ``scheme://host[:port]`` values (compared without case),
    #: ``*`` for any, or ``~regex`` (matched against the whole origin, without case).
    origins: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    #: Methods a preflight answer allows (``Access-Control-Allow-Methods``).
    methods: list[str] = Field(
        default_factory=lambda: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"], min_length=1)
    #: Request headers a preflight answer allows; null echoes the browser's
    #: ``Access-Control-Request-Headers``.
    headers: list[str] | None = None
    #: Response headers scripts may read (``Access-Control-Expose-Headers``).
    exposed_headers: list[str] = Field(default_factory=list)
    #: Allow cookies and HTTP authentication; the request's origin is then echoed
    #: instead of ``*``.
    credentials: bool = False
    #: How long (seconds) a browser may cache a preflight answer; null sends no
    #: ``Access-Control-Max-Age``.
    max_age: int | None = Field(default=None, ge=0)
    #: Pass preflight requests to the upstream instead of answering them here.
    preflight_continue: bool = False

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin.startswith("~"):
                try:
                    re.compile(origin[1:])
                except re.error as exc:
                    raise ValueError(f"invalid origin regex {origin!r}: {exc}") from None
            elif origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"origin {origin!r} must be scheme://host[:port] with no path "
                                 "(or * or ~regex)")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        return _tokens([m.upper() for m in value], "methods")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _tokens(value, "headers")

    @field_validator("exposed_headers")
    @classmethod
    def _exposed(cls, value: list[str]) -> list[str]:
        return _tokens(value, "exposed_headers")

    @model_validator(mode="after")
    def _wildcards(self) -> CorsConfig:
        # With credentials, browsers read "*" in these lists as a literal name
        # (Fetch "CORS protocol and credentials"): almost certainly not what was meant.
        if self.credentials:
            for field in ("methods", "headers", "exposed_headers"):
                if "*" in (getattr(self, field) or []):
                    raise ValueError(f"{field} cannot contain '*' when credentials is true")
        return self


class CorsPlugin(Plugin):
    name = "cors"
    priority = 2000
    config_model = CorsConfig
    consumer_scoped = False

    def __init__(self, config: CorsConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.any_origin = "*" in config.origins
        self.exact = frozenset(o.lower().encode() for o in config.origins
                               if o != "*" and not o.startswith("~"))
        self.patterns = tuple(re.compile(o[1:].encode(), re.IGNORECASE)
                              for o in config.origins if o.startswith("~"))
        self.continue_preflight = config.preflight_continue
        #: ``*`` goes out as is: the same answer for everyone, no Vary needed.
        self.star = self.any_origin and not config.credentials
        self.credentials = [(ALLOW_CREDENTIALS, b"true")] if config.credentials else []
        self.expose = ([(EXPOSE_HEADERS, ", ".join(config.exposed_headers).encode())]
                       if config.exposed_headers else [])
        self.owned = {ALLOW_ORIGIN, ALLOW_CREDENTIALS} | ({EXPOSE_HEADERS} if self.expose
                                                          else set())
        self.methods = (ALLOW_METHODS, ", ".join(config.methods).encode())
        self.allow_headers = (None if config.headers is None
                              else (ALLOW_HEADERS, ", ".join(config.headers).encode()))
        self.max_age = [] if config.max_age is None else [(MAX_AGE, b"%d" % config.max_age)]

    def allows(self, origin: bytes) -> bool:
        """Whether ``origin`` (the request's ``Origin`` value) may read responses."""
        if self.any_origin:
            return True
        if origin.lower() in self.exact:
            return True
        return any(p.fullmatch(origin) for p in self.patterns)

    def origin_headers(self, origin: bytes | None) -> HeaderList | None:
        """``Allow-Origin`` (+ ``Vary``, ``Allow-Credentials``) for ``origin``, or
        None when it is not allowed (then only ``Vary`` applies)."""
        if self.star:
            return [(ALLOW_ORIGIN, b"*")]
        if origin is None or not self.allows(origin):
            return None
        return [(ALLOW_ORIGIN, origin), VARY_ORIGIN, *self.credentials]

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        if ctx.method != "OPTIONS" or self.continue_preflight:
            return None
        origin = ctx.header(b"origin")
        if origin is None or ctx.header(b"access-control-request-method") is None:
            return None  # not a preflight: an ordinary OPTIONS request
        ctx.vars[ANSWERED] = True
        headers = self.origin_headers(origin)
        if headers is None:
            message = f"origin {origin.decode('latin-1')} is not allowed"
            return LocalResponse.error(403, "origin_not_allowed", message, ctx.request_id,
                                       [VARY_ORIGIN])
        headers.append(self.methods)
        if self.allow_headers is not None:
            headers.append(self.allow_headers)
        else:
            requested = ctx.header(b"access-control-request-headers")
            if requested is not None:
                headers.append((ALLOW_HEADERS, requested))
        headers += self.max_age
        return LocalResponse(204, b"", headers)

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        if ctx.vars.get(ANSWERED):
            return
        owned = self.owned
        if any(name in owned for name, _ in headers):
            headers[:] = [h for h in headers if h[0] not in owned]  # our policy wins
        ours = self.origin_headers(ctx.header(b"origin"))
        if ours is None:
            ours = [VARY_ORIGIN]
        else:
            ours += self.expose
        if VARY_ORIGIN in ours and _varies_on_origin(headers):
            ours.remove(VARY_ORIGIN)
        headers += ours


def _varies_on_origin(headers: HeaderList) -> bool:
    """Whether a ``Vary`` header already names ``Origin`` (RFC 9110 section 12.5.5)."""
    for name, value in headers:
        if name == b"vary" and any(t.strip().lower() in (b"origin", b"*")
                                   for t in value.split(b",")):
            return True
    return False


PLUGIN = CorsPlugin
