"""Pieces of the config model shared by its modules: names and plugin specs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["DURATION_TEXT", "NAME_PATTERN", "Name", "PluginSpec", "Seconds", "StrictModel",
           "check_host_port", "readable_file"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Seconds = Annotated[float, Field(gt=0, le=86400)]


def _in_seconds(value: object) -> object:
    if isinstance(value, str):
        from campusgate.state.ratelimit import parse_window

        return parse_window(value)
    return value


#: Lets a duration be written as a count and a unit (``90s``, ``15m``, ``7d``, ``1mo``
#: = 30 days) as well as seconds: ``Annotated[float, DURATION_TEXT, Field(...)]``.
DURATION_TEXT = BeforeValidator(_in_seconds)


def check_host_port(value: str) -> str:
    """``HOST:PORT`` with a port from 1 to 65535, else a ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


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


def readable_file(value: str | None, what: str = "file") -> str | None:
    """A validator: ``value`` (when set) names a file this process can read."""
    if value is not None:
        try:
            with open(value, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise ValueError(f"cannot read {what} {value!r}: {exc.strerror}") from None
    return value
