"""Pieces of the config model shared by its modules: names and plugin specs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["NAME_PATTERN", "Name", "PluginSpec", "StrictModel"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, frozen=False)


class PluginSpec(StrictModel):
    """A plugin attached globally, to a service, a route, a consumer or a group."""

    name: str
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_plugin(self) -> PluginSpec:
        from campusgate.plugins.registry import validate_plugin_config

        self.config = validate_plugin_config(self.name, self.config)
        return self
