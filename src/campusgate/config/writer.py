"""Write configuration back as readable YAML (``campusgate export``).

Defaults and derived values are omitted, the model's key order is kept, and ``${``
is escaped as ``$${`` so that loading the text gives back exactly the model.
"""

from __future__ import annotations

from typing import Any

import yaml

from campusgate.config.model import Config, Entities
from campusgate.plugins.registry import plugin_classes

__all__ = ["dump_yaml"]

BOOTSTRAP_KEYS = frozenset(Config.model_fields) - frozenset(Entities.model_fields)


class _Dumper(yaml.SafeDumper):
    """Block style, indented lists, short lists of scalars inline, no anchors."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    scalars = all(isinstance(x, str | int | float | bool) or x is None for x in data)
    flow = bool(data) and scalars and sum(len(str(x)) + 2 for x in data) <= 60
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(model: Config | Entities) -> str:
    """Readable YAML for ``model``: defaults omitted, model key order kept.

    For a :class:`Config`, the bootstrap settings come first (as in the docs), then
    the entities. Values containing ``${`` are written as ``$${`` so that loading
    the text gives back exactly ``model``.
    """
    data = model.model_dump(mode="json", exclude_defaults=True)
    for service in data.get("services", []):
        _tidy_service(service)
        for route in service.get("routes", []):
            _tidy_plugins(route)
    _tidy_plugins(data)
    for kind in ("consumers", "consumer_groups"):
        for owner, full in zip(data.get(kind, []), getattr(model, kind), strict=True):
            _tidy_plugins(owner)
            for cred, cred_model in zip(owner.get("credentials", []), full.credentials,
                                        strict=True):
                cred["type"] = cred_model.type  # the discriminator, even when default
    if isinstance(model, Config):
        first = {k: data[k] for k in Config.model_fields if k in BOOTSTRAP_KEYS and k in data}
        data = first | {k: v for k, v in data.items() if k not in first}
    if not data:
        return "{}\n"
    text: str = yaml.dump(
        _escape(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return text


def _tidy_service(service: dict[str, Any]) -> None:
    """Drop what the model derives: protocol and path come from an http(s) url, and an
    inline upstream is named after its service."""
    url = service.get("url")
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        service.pop("protocol", None)
        service.pop("path", None)
    upstream = service.get("upstream")
    if isinstance(upstream, dict) and upstream.get("name") == f"{service['name']}-upstream":
        del upstream["name"]
    _tidy_plugins(service)


def _tidy_plugins(owner: dict[str, Any]) -> None:
    """Plugin configs are stored with every default filled in; show only the choices."""
    for spec in owner.get("plugins", []):
        cls = plugin_classes().get(spec.get("name"))
        if cls is None or "config" not in spec:
            continue
        config = cls.config_model.model_validate(spec["config"])
        spec["config"] = config.model_dump(mode="json", exclude_defaults=True)
        if not spec["config"]:
            del spec["config"]


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value
