"""Compile one config revision into an immutable snapshot the data plane reads.

A snapshot holds the route table, each route's plugin chain (global, service and
route plugins merged; the most specific one of a name wins; sorted by priority),
each service's backend, the balancers and the connection pools.  Pools and
health state carry over from the previous snapshot where nothing changed, so a
reload keeps warm connections and ejected targets stay ejected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from campusgate.config.model import (
    Entities,
    HealthChecks,
    PassiveHealthCheck,
    Route,
    Service,
    Upstream,
)
from campusgate.config.model import Target as TargetSpec
from campusgate.plugins.base import Plugin, PluginResources
from campusgate.plugins.registry import default_resources
from campusgate.proxy.asgi import ASGIApp, Receive, Scope, Send
from campusgate.proxy.backends import AsgiBackend, Backend, Forwarding, HttpBackend
from campusgate.proxy.balancer import Balancer
from campusgate.proxy.chains import ChainBuilder, Level, Plan, finish_headers
from campusgate.proxy.consumers import ConsumerIndex
from campusgate.proxy.context import HeaderList, RequestContext, RouteOptions
from campusgate.proxy.echo import echo_app
from campusgate.proxy.health import ActiveHealthChecker
from campusgate.proxy.router import Router
from campusgate.proxy.upstream import TargetPool

__all__ = ["AI_SERVICE", "IDENTITY_SERVICE", "CompiledRoute", "CompiledService", "Plan", "Snapshot",
           "compile_snapshot", "finish_headers", "with_ai_service",
           "with_identity_service"]


IDENTITY_SERVICE = "campusgate-identity"
AI_SERVICE = "campusgate-ai"
#: The AI gateway's endpoints under ``ai.path``.
AI_ENDPOINTS = ("/chat/completions", "/embeddings", "/models", "/messages", "/responses")


def with_identity_service(entities: Entities) -> list[Service]:
    """The services to serve: with an identity provider configured and no service of
    ``builtin://identity`` declared, one is added on the issuer's paths, carrying
    ``identity.plugins``."""
    services = list(entities.services)
    identity = entities.identity
    if identity is None or any(s.url == "builtin://identity" for s in services):
        return services
    from campusgate.identity.paths import route_paths

    sandbox = identity.classlink_sandbox is not None and identity.classlink_sandbox.enabled
    route = Route(name=IDENTITY_SERVICE,
                  paths=route_paths(identity.issuer_path, classlink_sandbox=sandbox),
                  strip_path=False)
    services.append(Service(name=IDENTITY_SERVICE, url="builtin://identity",
                            routes=[route], plugins=identity.plugins))
    return services


def with_ai_service(entities: Entities, services: list[Service]) -> list[Service]:
    """``services`` plus, with an AI gateway configured and no service of
    ``builtin://ai`` declared, one on ``ai.path``'s endpoints (and ``ai.prompts_path``
    when prompts are published) carrying ``ai.plugins``."""
    ai = entities.ai
    if ai is None or any(s.url == "builtin://ai" for s in services):
        return services
    prompts = [ai.prompts_path] if ai.prompts else []
    route = Route(name=AI_SERVICE, paths=[ai.path + end for end in AI_ENDPOINTS] + prompts,
                  strip_path=False)
    return [*services, Service(name=AI_SERVICE, url="builtin://ai", routes=[route],
                               plugins=ai.plugins)]


async def _unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """A builtin service this gateway does not serve here (no app was given)."""
    body = b'{"error":{"code":"unavailable","message":"this built-in service is not served here"}}'
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True, eq=False)
class CompiledService:
    name: str
    config: Service
    backend: Backend


@dataclass(frozen=True, eq=False)
class CompiledRoute:
    name: str
    config: RouteOptions
    service: CompiledService
    access: tuple[Plugin, ...]
    response: tuple[Plugin, ...]
    log: tuple[Plugin, ...]
    #: Some access plugin always awaits: the callback path cannot run this route.
    access_waits: bool = False

    def on_response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        """The response phase: plugins edit the headers; then the request id and any
        headers plugins queued for the client are added."""
        for plugin in self.response:
            plugin.response(ctx, status, headers)
        finish_headers(ctx, headers)


@dataclass(eq=False)
class Snapshot:
    revision: int
    router: Router[CompiledRoute]
    balancers: dict[str, Balancer]
    pools: dict[str, TargetPool]
    checkers: list[ActiveHealthChecker] = field(default_factory=list)
    #: Plugins of the global chain, for answers given before a route is known.
    global_response: tuple[Plugin, ...] = ()
    consumers: ConsumerIndex = field(default_factory=ConsumerIndex)

    def start(self) -> None:
        for checker in self.checkers:
            checker.start()

    async def retire(self, successor: Snapshot | None) -> None:
        """Stop health checks; close pools the successor does not use."""
        for checker in self.checkers:
            await checker.close()
        keep = set(map(id, successor.pools.values())) if successor else set()
        for pool in self.pools.values():
            if id(pool) not in keep:
                pool.retired = True
                pool.close_all()

    def upstream_health(self, now: float) -> dict[str, dict[str, dict[str, object]]]:
        return {name: b.health(now) for name, b in self.balancers.items()}


def _ssl_context(service: Service) -> ssl.SSLContext | None:
    if service.protocol != "https":
        return None
    tls = service.tls
    if not tls.verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=tls.ca_file)


def _pool_key(address: str, service: Service) -> str:
    tls = service.tls
    return (f"{service.protocol}://{address}|{tls.verify}|{tls.ca_file}|{tls.sni}|"
            f"{service.pool.model_dump_json()}")


def compile_snapshot(
    revision: int,
    entities: Entities,
    trusted_proxies: list[str],
    previous: Snapshot | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    resources: PluginResources | None = None,
    apps: Mapping[str, ASGIApp] | None = None,
    backends: Mapping[str, Backend] | None = None,
) -> Snapshot:
    """``apps`` serves the ``builtin://NAME`` services (default: only the echo app);
    ``backends`` those served by an in-process :class:`Backend` (``builtin://ai``)."""
    loop = loop or asyncio.get_event_loop()
    builtins: Mapping[str, ASGIApp] = apps if apps is not None else {"echo": echo_app}
    if resources is None:
        resources = default_resources(loop)
    consumers = ConsumerIndex.build(entities.consumers, resources.keyring)
    chains = ChainBuilder(entities, resources, consumers)
    forwarding = Forwarding(tuple(ipaddress.ip_network(c, strict=False) for c in trusted_proxies))
    named = {u.name: u for u in entities.upstreams}
    balancers: dict[str, Balancer] = {}
    pools: dict[str, TargetPool] = {}
    old_pools = previous.pools if previous else {}
    old_balancers = previous.balancers if previous else {}
    upstream_specs: dict[str, Upstream] = {}

    def balancer_for(upstream: Upstream) -> Balancer:
        if upstream.name not in balancers:
            balancer = Balancer(upstream)
            old = old_balancers.get(upstream.name)
            if old is not None:
                balancer.carry_over(old)
            balancers[upstream.name] = balancer
            upstream_specs[upstream.name] = upstream
        return balancers[upstream.name]

    def backend_for(service: Service) -> Backend:
        if service.url is not None and service.url.startswith("builtin://"):
            name = urlsplit(service.url).netloc
            if backends is not None and name in backends:
                return backends[name]
            return AsgiBackend(builtins.get(name, _unavailable))
        host_header: bytes | None = None
        url_host: str | None = None  # the url's host name, for SNI
        if service.upstream is not None:
            upstream = service.upstream
        else:
            parts = urlsplit(service.url or "")
            host = parts.hostname or ""
            if host in named:
                upstream = named[host]
            else:
                port = parts.port or (443 if service.protocol == "https" else 80)
                address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                url_host = host
                default_port = port == (443 if service.protocol == "https" else 80)
                host_header = (host if default_port else parts.netloc.rpartition("@")[2]).encode()
                upstream = Upstream(
                    name=f"{service.name}.url", targets=[TargetSpec(target=address)],
                    healthchecks=HealthChecks(passive=PassiveHealthCheck(enabled=False)),
                )
        balancer = balancer_for(upstream)
        ssl_ctx = _ssl_context(service)
        sni = service.tls.sni or url_host
        service_pools: dict[str, TargetPool] = {}
        for target in balancer.targets.values():
            key = _pool_key(target.address, service)
            pool = pools.get(key) or old_pools.get(key)
            if pool is None:
                pool = TargetPool(loop, target.host, target.port, service.pool, ssl_ctx,
                                  sni or target.host)
            pools[key] = pool
            service_pools[target.address] = pool
        return HttpBackend(service, balancer, service_pools, forwarding, host_header,
                           hashing=upstream.algorithm == "consistent-hashing")

    routes: list[tuple[Route, CompiledRoute]] = []
    global_level: Level = ("global", entities.plugins)
    for full_service in with_ai_service(entities, with_identity_service(entities)):
        # Keep the service without its routes: the routes' models are freed after this.
        service = full_service.model_copy(update={"routes": []})
        compiled = CompiledService(service.name, service, backend_for(service))
        service_level: Level = (f"service:{service.name}", full_service.plugins)
        service_chain = chains.chain([global_level, service_level])
        for route in full_service.routes:
            levels = [global_level, service_level, (f"route:{route.name}", route.plugins)]
            chain = (chains.chain(levels, route.name)
                     if route.plugins or chains.scoped else service_chain)
            options = RouteOptions(route.name, route.strip_path, route.rewrite,
                                   route.preserve_host)
            waits = any(type(p).awaits_in_access() for p in chain.access)
            compiled_route = CompiledRoute(route.name, options, compiled, chain.access,
                                           chain.response, chain.log, waits)
            routes.append((route, compiled_route))
    for upstream in entities.upstreams:
        balancer_for(upstream)
    checkers = [
        ActiveHealthChecker(spec, balancers[name])
        for name, spec in upstream_specs.items()
        if spec.healthchecks.active is not None and spec.healthchecks.active.enabled
    ]
    global_response = chains.chain([global_level]).response
    return Snapshot(revision, Router(routes), balancers, pools, checkers,
                    global_response, consumers)
