"""``request-termination``: answer at the gateway with a fixed response.

For maintenance windows, retired APIs and placeholders: the request never reaches
the upstream.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = ["RequestTerminationConfig", "RequestTerminationPlugin"]


class RequestTerminationConfig(PluginConfig):
    #: Status of the answer (100-599).
    status_code: int = Field(default=503, ge=100, le=599)
    #: Message of the JSON error (null: "the service is not available").
    message: str | None = None
    #: A body to send as is instead of the JSON error.
    body: str | None = None
    #: Content-Type of `body`.
    content_type: str = "application/json"
    #: Extra response headers.
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_body(self) -> RequestTerminationConfig:
        if self.message is not None and self.body is not None:
            raise ValueError("set message or body, not both")
        return self


class RequestTerminationPlugin(Plugin):
    name = "request-termination"
    priority = 2
    config_model = RequestTerminationConfig

    def __init__(self, config: RequestTerminationConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.cfg = config
        self.extra = [(k.lower().encode(), v.encode()) for k, v in config.headers.items()]

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        cfg = self.cfg
        if cfg.body is not None:
            return LocalResponse(cfg.status_code, cfg.body.encode(), list(self.extra),
                                 cfg.content_type.encode())
        message = cfg.message or "the service is not available"
        return LocalResponse.error(cfg.status_code, "request_terminated", message,
                                   ctx.request_id, list(self.extra))


PLUGIN = RequestTerminationPlugin
