"""The plugin interface: a typed config model and up to three phase methods.

``access`` runs before the request goes upstream and may answer early with a
:class:`LocalResponse`; ``response`` sees the upstream's (or local) status and
headers and may change the headers; ``log`` runs after the last byte is sent.
Only the phases a plugin overrides are put in the compiled chain.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

__all__ = ["Plugin", "PluginConfig"]


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin:
    """Base class; subclasses set ``name``, ``priority`` and ``config_model``."""

    name: ClassVar[str]
    #: Higher runs first in ``access`` (Kong's convention).
    priority: ClassVar[int] = 0
    config_model: ClassVar[type[PluginConfig]] = PluginConfig

    def __init__(self, config: PluginConfig) -> None:
        self.config = config

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        """The access phase.  A plugin whose check never waits overrides
        :meth:`access_now` instead, which lets the proxy's callback path run it."""
        return self.access_now(ctx)

    def access_now(self, ctx: RequestContext) -> LocalResponse | None:
        return None

    @classmethod
    def awaits_in_access(cls) -> bool:
        """True when the access phase may wait (the plugin overrides ``access``)."""
        return cls.overrides("access")

    @classmethod
    def has_access(cls) -> bool:
        return cls.overrides("access") or cls.overrides("access_now")

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        return None

    def log(self, ctx: RequestContext) -> None:
        return None

    @classmethod
    def overrides(cls, phase: str) -> bool:
        return getattr(cls, phase) is not getattr(Plugin, phase)
