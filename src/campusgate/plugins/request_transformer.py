"""``request-transformer``: change the request before it goes upstream.

Headers, query-string parameters and JSON body fields are removed, renamed, replaced,
added and appended, in that order (as Kong's plugin of the same name); the method
and the whole upstream path can be set too.  Values are templates
(``{consumer.name}``, ``{headers.NAME}``, ``{query.NAME}``, ``{params.NAME}``; see
``plugins/_templates.py``), all read from the request as it reached this plugin.

Header, query, method and path changes run in the access phase, on the callback
path too.  Only JSON operations need the body: then a request whose Content-Type is
JSON (and not content-coded) has its body buffered, up to ``max_body_bytes`` (larger:
413), and rewritten with a new Content-Length.  A body that is not a JSON object is
sent as it came.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from campusgate.plugins._templates import Template
from campusgate.plugins._transform import (
    UPSTREAM_FORBIDDEN,
    HeaderOps,
    JsonOps,
    Names,
    QueryOps,
    Renames,
    Values,
    is_json,
    transform_json,
)
from campusgate.plugins.base import DEFAULT_BODY_LIMIT, Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import LocalResponse, RequestContext
from campusgate.proxy.rewrites import set_upstream_method, set_upstream_path

__all__ = ["RequestTransformerConfig", "RequestTransformerPlugin"]

_METHOD = re.compile(r"^[A-Za-z]{1,20}$")
_PATH_CHARS = re.compile(r"^/[\x21-\x7e]*$")
#: What a rendered path keeps as it is; the rest is percent-encoded (RFC 3986 3.3).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
#: ``ctx.vars`` key: the JSON operations with templates filled in at access time.
_RENDERED: Final = "request-transformer.json"


class RequestTransformerConfig(PluginConfig):
    #: Names to drop: ``headers``, ``querystring`` and ``json`` (fields; dotted paths
    #: reach into nested objects).
    remove: Names = Field(default_factory=lambda: Names())
    #: Old name -> new name, per part; the value is kept.
    rename: Renames = Field(default_factory=lambda: Renames())
    #: Name -> value, per part, only where the name is present.
    replace: Values = Field(default_factory=lambda: Values())
    #: Name -> value, per part, only where the name is absent.
    add: Values = Field(default_factory=lambda: Values())
    #: Name -> value (or a list of values), per part, always: another header line,
    #: another parameter, or another element of a JSON array.
    append: Values = Field(default_factory=lambda: Values())
    #: The method sent upstream (``POST``, ...); null keeps the client's.
    method: str | None = None
    #: The whole path sent upstream (the service path is not added), a template such
    #: as ``/v2/users/{params.id}``; null keeps the routed path.
    uri: str | None = None
    #: The largest body the JSON operations buffer; a larger JSON body gets 413.
    max_body_bytes: int = Field(default=DEFAULT_BODY_LIMIT, ge=1)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str | None) -> str | None:
        if value is not None and not _METHOD.match(value):
            raise ValueError(f"{value!r} is not an HTTP method")
        return None if value is None else value.upper()

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _PATH_CHARS.match(value) or "?" in value or "#" in value:
            raise ValueError("uri must be a path starting with '/', in printable ASCII, "
                             "without '?' or '#' (change the query with querystring)")
        Template.parse(value)
        return value

    @model_validator(mode="after")
    def _operations(self) -> RequestTransformerConfig:
        HeaderOps.build(self.remove, self.rename, self.replace, self.add, self.append,
                        UPSTREAM_FORBIDDEN)
        QueryOps.build(self.remove, self.rename, self.replace, self.add, self.append)
        JsonOps.build(self.remove, self.rename, self.replace, self.add, self.append)
        return self


class RequestTransformerPlugin(Plugin):
    name = "request-transformer"
    priority = 801
    config_model = RequestTransformerConfig

    def __init__(self, config: RequestTransformerConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        ops = (config.remove, config.rename, config.replace, config.add, config.append)
        self.headers = HeaderOps.build(*ops, UPSTREAM_FORBIDDEN)
        self.query = QueryOps.build(*ops)
        self.json = JsonOps.build(*ops)
        self.method = config.method
        self.uri = None if config.uri is None else Template.parse(config.uri)
        self.body_limit = config.max_body_bytes

    def runs(self, phase: str) -> bool:
        if phase == "request_body":  # only JSON operations need the body
            return bool(self.json)
        return super().runs(phase)

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        # Every template reads the request as it came: render first, change after.
        if self.json.templated:
            ctx.vars[_RENDERED] = self.json.render(ctx)
        path = self.uri.render(ctx) if self.uri is not None else None
        headers = self.headers.apply(ctx.headers, ctx) if self.headers else None
        query = self.query.apply(ctx.query, ctx) if self.query else None
        if headers is not None:
            ctx.headers[:] = headers  # in place: it is the list sent upstream
        if query is not None:
            ctx.query = query
        if path is not None:
            set_upstream_path(ctx, quote(path, safe=_PATH_SAFE))
        if self.method is not None:
            set_upstream_method(ctx, self.method)
        return None

    def wants_request_body(self, ctx: RequestContext) -> bool:
        return is_json(ctx.headers)

    def request_body(self, ctx: RequestContext, body: bytes) -> bytes:
        ops: JsonOps = ctx.vars.get(_RENDERED, self.json)
        return transform_json(body, ops) or body


PLUGIN = RequestTransformerPlugin
