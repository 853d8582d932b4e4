"""The table of plugins campusgate knows, by name.

Every module in ``campusgate.plugins`` that defines ``PLUGIN`` (a :class:`Plugin`
subclass) is a plugin; adding one is adding a file.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from functools import cache
from typing import Any

from pydantic import ValidationError

import campusgate.plugins
from campusgate.plugins.base import Plugin, PluginEnv, PluginResources

__all__ = ["build_plugin", "default_resources", "plugin_classes", "validate_plugin_config"]


@cache
def plugin_classes() -> dict[str, type[Plugin]]:
    """Every plugin class by name, found once."""
    found: dict[str, type[Plugin]] = {}
    for module in sorted(pkgutil.iter_modules(campusgate.plugins.__path__), key=lambda m: m.name):
        cls = getattr(importlib.import_module(f"campusgate.plugins.{module.name}"), "PLUGIN", None)
        if isinstance(cls, type) and issubclass(cls, Plugin):
            if cls.name in found:
                raise RuntimeError(f"two plugins are named {cls.name!r}")
            found[cls.name] = cls
    return found


def validate_plugin_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check ``config`` against plugin ``name``'s model; return it with defaults filled."""
    plugins = plugin_classes()
    cls = plugins.get(name)
    if cls is None:
        raise ValueError(f"unknown plugin {name!r}; known: {', '.join(sorted(plugins))}")
    try:
        return cls.config_model.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"config.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"plugin {name!r}: {problems}") from None


def build_plugin(name: str, config: dict[str, Any], env: PluginEnv | None = None) -> Plugin:
    """An instance of plugin ``name``; without ``env``, one with fresh in-memory
    resources (for tests and tools)."""
    cls = plugin_classes()[name]
    if env is None:
        env = PluginEnv(default_resources())
    return cls(cls.config_model.model_validate(config), env)


def default_resources(loop: asyncio.AbstractEventLoop | None = None) -> PluginResources:
    """In-process resources: memory state, a throwaway keyring."""
    from campusgate.keyring import Keyring
    from campusgate.state.memory import MemoryState

    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
    memory = MemoryState()
    return PluginResources(Keyring.generate(), memory, memory, loop)
