"""``response-transformer``: change the response before it reaches the client.

Headers and JSON body fields are removed, renamed, replaced, added and appended, in
that order (as Kong's plugin of the same name).  Values are templates read from the
*request* (``{consumer.name}``, ``{headers.NAME}`` is a request header,
``{query.NAME}``, ``{params.NAME}``; see ``plugins/_templates.py``).

Header operations run in the response phase, for every response the route gives
(the gateway's own answers too), on the callback path as well.  Only JSON operations
need the body: a response whose Content-Type is JSON (and not content-coded) is
buffered up to ``max_body_bytes`` and sent with a new Content-Length; a larger one,
or one that is not a JSON object, passes through unchanged.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from campusgate.plugins._transform import (
    RESPONSE_FORBIDDEN,
    HeaderOps,
    JsonOps,
    Names,
    Renames,
    Values,
    is_json,
    transform_json,
)
from campusgate.plugins.base import DEFAULT_BODY_LIMIT, Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, RequestContext

__all__ = ["ResponseTransformerConfig", "ResponseTransformerPlugin"]


class ResponseTransformerConfig(PluginConfig):
    #: Names to drop: ``headers`` and ``json`` (fields; dotted paths reach into nested
    #: objects).
    remove: Names = Field(default_factory=lambda: Names())
    #: Old name -> new name, per part; the value is kept.
    rename: Renames = Field(default_factory=lambda: Renames())
    #: Name -> value, per part, only where the name is present.
    replace: Values = Field(default_factory=lambda: Values())
    #: Name -> value, per part, only where the name is absent.
    add: Values = Field(default_factory=lambda: Values())
    #: Name -> value (or a list of values for a header), per part, always: another
    #: header line, or another element of a JSON array.
    append: Values = Field(default_factory=lambda: Values())
    #: The largest JSON body transformed; a larger one passes through unchanged.
    max_body_bytes: int = Field(default=DEFAULT_BODY_LIMIT, ge=1)

    @model_validator(mode="after")
    def _operations(self) -> ResponseTransformerConfig:
        for op in ("remove", "rename", "replace", "add", "append"):
            if getattr(self, op).get("querystring"):
                raise ValueError(f"{op}.querystring: a response has no query string")
        HeaderOps.build(self.remove, self.rename, self.replace, self.add, self.append,
                        RESPONSE_FORBIDDEN)
        JsonOps.build(self.remove, self.rename, self.replace, self.add, self.append)
        return self


class ResponseTransformerPlugin(Plugin):
    name = "response-transformer"
    priority = 800
    config_model = ResponseTransformerConfig

    def __init__(self, config: ResponseTransformerConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        ops = (config.remove, config.rename, config.replace, config.add, config.append)
        self.headers = HeaderOps.build(*ops, RESPONSE_FORBIDDEN)
        self.json = JsonOps.build(*ops)
        self.body_limit = config.max_body_bytes

    def runs(self, phase: str) -> bool:
        if phase == "response_body":  # only JSON operations need the body
            return bool(self.json)
        return super().runs(phase)

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        if self.headers:
            headers[:] = self.headers.apply(headers, ctx)

    def wants_response_body(self, ctx: RequestContext, status: int,
                            headers: HeaderList) -> bool:
        return is_json(headers)

    def response_body(self, ctx: RequestContext, status: int, headers: HeaderList,
                      body: bytes) -> bytes:
        ops = self.json.render(ctx) if self.json.templated else self.json
        return transform_json(body, ops) or body


PLUGIN = ResponseTransformerPlugin
