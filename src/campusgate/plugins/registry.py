"""The table of plugins campusgate knows, by name."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from campusgate.plugins.base import Plugin
from campusgate.plugins.request_id import RequestIdPlugin
from campusgate.plugins.request_termination import RequestTerminationPlugin

__all__ = ["PLUGINS", "build_plugin", "validate_plugin_config"]

PLUGINS: dict[str, type[Plugin]] = {
    cls.name: cls for cls in (RequestIdPlugin, RequestTerminationPlugin)
}


def validate_plugin_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check ``config`` against plugin ``name``'s model; return it with defaults filled."""
    cls = PLUGINS.get(name)
    if cls is None:
        raise ValueError(f"unknown plugin {name!r}; known: {', '.join(sorted(PLUGINS))}")
    try:
        return cls.config_model.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"config.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"plugin {name!r}: {problems}") from None


def build_plugin(name: str, config: dict[str, Any]) -> Plugin:
    cls = PLUGINS[name]
    return cls(cls.config_model.model_validate(config))
