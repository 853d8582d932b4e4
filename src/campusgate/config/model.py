"""The typed configuration model: one document describes the whole gateway.

Bootstrap settings (listeners, storage, state, limits) are read from the file given
to ``campusgate serve``; entities (upstreams, services with their routes, global
plugins) live in the store, are revisioned, and are what the admin API and
``campusgate apply`` change.  :class:`Config` holds both; :class:`Entities` is the
revisioned part.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from campusgate.config.ai import AiConfig
from campusgate.config.bootstrap import Limits, Listener, Listeners, TlsListener
from campusgate.config.common import NAME_PATTERN, Name, PluginSpec, Seconds, StrictModel
from campusgate.config.consumers import (
    BasicAuthCredential,
    Consumer,
    ConsumerGroup,
    Credential,
    JwtCredential,
    KeyAuthCredential,
)
from campusgate.config.identity import IdentityConfig
from campusgate.config.observe import ObserveConfig
from campusgate.config.upstreams import (
    ActiveHealthCheck,
    HealthChecks,
    PassiveHealthCheck,
    Target,
    Upstream,
    UpstreamTls,
)

__all__ = [
    "BUILTIN_SERVICES",
    "NAME_PATTERN",
    "ActiveHealthCheck",
    "AiConfig",
    "Config",
    "Consumer",
    "ConsumerGroup",
    "Entities",
    "HealthChecks",
    "IdentityConfig",
    "Limits",
    "Listener",
    "Listeners",
    "PassiveHealthCheck",
    "PluginSpec",
    "PoolSettings",
    "Retries",
    "Route",
    "Service",
    "Target",
    "Timeouts",
    "TlsListener",
    "Upstream",
    "UpstreamTls",
    "credential_identity",
    "state_problem",
]

#: In-process services a service url may name: ``builtin://echo``, ``builtin://identity``,
#: ``builtin://ai``.
BUILTIN_SERVICES = ("echo", "identity", "ai")

HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)




# ---------------------------------------------------------------- services and routes


class Timeouts(StrictModel):
    connect: Seconds = 5.0
    read: Seconds = 60.0
    write: Seconds = 60.0


class Retries(StrictModel):
    """Retries on connection failure, and for idempotent methods on 502/503/504."""

    count: int = Field(default=2, ge=0, le=10)
    on_statuses: list[int] = Field(default_factory=lambda: [502, 503, 504])


class PoolSettings(StrictModel):
    max_idle: int = Field(default=64, ge=0, le=10000)
    idle_timeout: Seconds = 60.0
    max_lifetime: Seconds = 3600.0


class Route(StrictModel):
    """How requests are matched to a service.

    A route matches when every condition it sets holds: one of ``hosts`` (exact or
    ``*.wildcard``), one of ``paths`` (``/exact``, ``/prefix`` matching at segment
    boundaries, ``/users/{id}`` templates, or ``~regex``), one of ``methods``, every
    header in ``headers`` (one of its values) and every query parameter in ``query``.
    """

    name: Name
    hosts: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)
    headers: dict[str, list[str]] = Field(default_factory=dict)
    query: dict[str, list[str]] = Field(default_factory=dict)
    priority: int = 0
    strip_path: bool = True
    rewrite: str | None = None
    preserve_host: bool = False
    plugins: list[PluginSpec] = Field(default_factory=list)

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        out = [m.upper() for m in value]
        bad = [m for m in out if m not in HTTP_METHODS]
        if bad:
            raise ValueError(f"unknown HTTP method(s): {', '.join(bad)}")
        return out

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if path.startswith("~"):
                try:
                    re.compile(path[1:])
                except re.error as exc:
                    raise ValueError(f"invalid regex {path!r}: {exc}") from exc
            elif not path.startswith("/"):
                raise ValueError(f"path {path!r} must start with '/' (or '~' for a regex)")
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        out = []
        for host in value:
            host = host.lower()
            body = host[2:] if host.startswith("*.") else host
            if not body or "*" in body or "/" in body:
                raise ValueError(f"host {host!r} must be a name or '*.suffix'")
            out.append(host)
        return out

    @field_validator("headers", "query", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> Route:
        if not (self.hosts or self.paths or self.methods or self.headers or self.query):
            raise ValueError("a route needs at least one of hosts, paths, methods, headers, query")
        from campusgate.proxy.router import RoutePatternError, Router

        try:  # compile the route's patterns now, so a bad one fails at load, not at reload
            Router([(self, None)])
        except RoutePatternError as exc:
            raise ValueError(str(exc)) from None
        return self


class Service(StrictModel):
    """An upstream API and the routes that lead to it.

    ``url`` is ``http(s)://host[:port][/path]`` where host may name an upstream from
    ``upstreams``; ``builtin://echo`` is the built-in echo service and
    ``builtin://identity`` the identity provider's endpoints.  Instead of a url,
    ``upstream`` may give the targets inline.
    """

    name: Name
    url: str | None = None
    upstream: Upstream | None = None
    protocol: Literal["http", "https"] = "http"
    path: str = ""
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retries: Retries = Field(default_factory=Retries)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    tls: UpstreamTls = Field(default_factory=UpstreamTls)
    routes: list[Route] = Field(default_factory=list)
    plugins: list[PluginSpec] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _inline_upstream_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("upstream"), dict):
            data = dict(data)
            up = dict(data["upstream"])
            up.setdefault("name", f"{data.get('name', 'service')}-upstream")
            data["upstream"] = up
        return data

    @model_validator(mode="after")
    def _url(self) -> Service:
        if (self.url is None) == (self.upstream is None):
            raise ValueError("a service needs exactly one of url or upstream")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme == "builtin":
                if parts.netloc not in BUILTIN_SERVICES:
                    raise ValueError("builtin services are builtin://echo, "
                                     "builtin://identity and builtin://ai")
            elif parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url {self.url!r} must be http(s)://host[:port][/path]")
            else:
                self.protocol = parts.scheme  # type: ignore[assignment]
                self.path = parts.path.rstrip("/")
                try:
                    _ = parts.port
                except ValueError as exc:
                    raise ValueError(f"url {self.url!r}: {exc}") from exc
        return self


class Entities(StrictModel):
    """The revisioned part of the configuration."""

    upstreams: list[Upstream] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    plugins: list[PluginSpec] = Field(default_factory=list)
    consumers: list[Consumer] = Field(default_factory=list)
    consumer_groups: list[ConsumerGroup] = Field(default_factory=list)
    #: The built-in OAuth 2.0 / OpenID Connect provider (off when absent).
    identity: IdentityConfig | None = None
    #: The AI gateway: model providers and the model names clients use (off when absent).
    ai: AiConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Entities:
        _unique("upstreams", [u.name for u in self.upstreams])
        _unique("services", [s.name for s in self.services])
        _unique("routes", [r.name for s in self.services for r in s.routes])
        _unique("consumers", [c.name for c in self.consumers])
        _unique("consumer_groups", [g.name for g in self.consumer_groups])
        _unique("consumer custom_ids", [c.custom_id for c in self.consumers if c.custom_id])
        self._unique_credentials()
        self._anonymous_consumers_exist()
        return self

    def _unique_credentials(self) -> None:
        """A key, username, JWT key or HMAC key id identifies one credential only."""
        seen: dict[tuple[str, str], str] = {}
        for consumer in self.consumers:
            ids: set[str] = set()
            for cred in consumer.credentials:
                if cred.id is not None:
                    if cred.id in ids:
                        raise ValueError(f"consumer {consumer.name!r}: duplicate credential "
                                         f"id {cred.id!r}")
                    ids.add(cred.id)
                ident, shown = credential_identity(cred)
                if ident in seen:
                    raise ValueError(f"{cred.type} credential with {shown} is defined twice "
                                     f"(consumers {seen[ident]!r} and {consumer.name!r})")
                seen[ident] = consumer.name

    def plugin_specs(self) -> list[tuple[str, PluginSpec]]:
        """Every plugin spec with where it is attached (``route r``, ``consumer c``...)."""
        found = [("global", spec) for spec in self.plugins]
        for service in self.services:
            found += [(f"service {service.name}", spec) for spec in service.plugins]
            for route in service.routes:
                found += [(f"route {route.name}", spec) for spec in route.plugins]
        for consumer in self.consumers:
            found += [(f"consumer {consumer.name}", spec) for spec in consumer.plugins]
        for group in self.consumer_groups:
            found += [(f"consumer group {group.name}", spec) for spec in group.plugins]
        if self.identity is not None:
            found += [("identity", spec) for spec in self.identity.plugins]
        if self.ai is not None:
            found += [("ai", spec) for spec in self.ai.plugins]
        return found

    def _anonymous_consumers_exist(self) -> None:
        names = {c.name for c in self.consumers}
        for _, spec in self.plugin_specs():
            anonymous = spec.config.get("anonymous")
            if isinstance(anonymous, str) and anonymous not in names:
                raise ValueError(f"plugin {spec.name!r}: anonymous consumer {anonymous!r} "
                                 "is not defined in consumers")


def credential_identity(cred: Credential) -> tuple[tuple[str, str], str]:
    """What makes a credential unique, and how to name it in an error."""
    if isinstance(cred, KeyAuthCredential):
        return ((cred.type, cred.key_hash or cred.key or ""),
                f"key {cred.key_prefix or (cred.key or '')[:4]}...")
    if isinstance(cred, BasicAuthCredential):
        return (cred.type, cred.username), f"username {cred.username!r}"
    if isinstance(cred, JwtCredential):
        return (cred.type, cred.key), f"key {cred.key!r}"
    return (cred.type, cred.key_id), f"key_id {cred.key_id!r}"


def state_problem(entities: Entities, state: str) -> str | None:
    """Why ``entities`` cannot run with the ``state`` setting, if they cannot: a plugin
    that keeps its state in Redis needs ``state`` to be a Redis URL."""
    if state != "memory":
        return None
    for where, spec in entities.plugin_specs():
        config = spec.config
        if "redis" in (config.get("backend"), config.get("strategy")):
            return (f"plugin {spec.name!r} ({where}) uses redis, but the state setting is "
                    "memory: set state: redis://host:port/db")
    return None


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate name in {kind}: {name!r}")
        seen.add(name)


# ---------------------------------------------------------------- the whole file


class Config(Entities):
    """The whole file: bootstrap settings plus entities."""

    listeners: Listeners = Field(default_factory=Listeners)
    storage: str = "sqlite:///campusgate-data/campusgate.db"
    state: str = "memory"
    #: The installation's secret key (hashes API keys, encrypts stored secrets);
    #: created on first start.  ``CAMPUSGATE_SECRET_KEY`` overrides it.
    secret_key_file: str = "campusgate-data/secret.key"
    limits: Limits = Field(default_factory=Limits)
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Access records, their sinks, metrics, tracing, alerts (read at start).
    observe: ObserveConfig = Field(default_factory=ObserveConfig)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {exc}") from exc
        return value

    @field_validator("state")
    @classmethod
    def _state(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("redis://", "rediss://")):
            raise ValueError("state must be memory or redis://host:port/db")
        return value

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("storage must be sqlite:///PATH or postgresql://...")
        return value

    @model_validator(mode="after")
    def _redis_plugins_need_redis_state(self) -> Config:
        problem = state_problem(self, self.state)
        if problem:
            raise ValueError(problem)
        return self

    def entities(self) -> Entities:
        return Entities.model_validate(
            self.model_dump(include=set(Entities.model_fields)))
