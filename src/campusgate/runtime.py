"""One worker: its listeners, its current snapshot, and how it follows the store.

The worker compiles the store's latest revision into a snapshot, serves the proxy
and admin listeners, and polls the store's revision number twice a second (a single
indexed integer read; nothing on the request path touches the database).  Any
change, from this worker's admin API, another worker, another node or the watched
config file, is compiled and swapped in atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import ipaddress
import logging
import os
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campusgate import __version__
from campusgate.ai.gateway.backend import AiBackend
from campusgate.ai.gateway.runtime import AiRuntime
from campusgate.config.model import Config, Entities, Listener, state_problem
from campusgate.identity.runtime import IdentityRuntime
from campusgate.keyring import load_keyring
from campusgate.observe.alerts import AlertService, AlertSources, Quota, rate_limit_quotas
from campusgate.observe.metrics import node_metrics, read_worker
from campusgate.observe.retention import prune_forever
from campusgate.observe.runtime import ObserveRuntime, worker_id
from campusgate.observe.sinks.base import SinkEnv
from campusgate.plugins.base import PluginResources
from campusgate.proxy.addresses import AddressSet
from campusgate.proxy.app_dispatcher import HEALTHY, AppDispatcher
from campusgate.proxy.asgi import ASGIApp
from campusgate.proxy.backends import sweep_pools_forever
from campusgate.proxy.echo import echo_app
from campusgate.proxy.gateway import Gateway
from campusgate.proxy.http1 import ClientConnection, ListenerState
from campusgate.proxy.snapshot import Snapshot, compile_snapshot
from campusgate.state.base import StateBackend
from campusgate.state.memory import MemoryState
from campusgate.store.revision_probe import revision_reader

if TYPE_CHECKING:
    from campusgate.store import ConfigStore

__all__ = ["Worker"]

log = logging.getLogger("campusgate")

POLL_INTERVAL = 0.5
FILE_POLL_INTERVAL = 1.0


def server_ssl_context(listener: Listener) -> ssl.SSLContext | None:
    if listener.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(listener.tls.cert_file, listener.tls.key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Worker:
    def __init__(self, config: Config, *, reuse_port: bool = False,
                 config_path: Path | None = None, watch_file: bool = False,
                 log_writer: bool = False) -> None:
        """``log_writer``: records go to the node's log-writer process when
        ``observe.access_log.writer`` says so (``campusgate serve``); else the batch
        writer runs in this process (a worker embedded in tests)."""
        self.config = config
        self.keyring = load_keyring(config.secret_key_file)
        self.resources: PluginResources | None = None
        self.reader = revision_reader(config.storage)
        self._store: ConfigStore | None = None
        self._store_lock = asyncio.Lock()
        self.reuse_port = reuse_port
        self.config_path = config_path
        self.watch_file = watch_file
        self.snapshot: Snapshot | None = None
        #: The served revision's rate-limit quotas (the alerts' quota forecasts).
        self.quotas: list[Quota] = []
        self.started = time.time()
        self.servers: list[asyncio.Server] = []
        self.listeners: list[ListenerState] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._reload_lock = asyncio.Lock()
        self.stopped = asyncio.Event()
        trusted = AddressSet(ipaddress.ip_network(c, strict=False)
                             for c in config.trusted_proxies)
        self.identity = IdentityRuntime(config.storage, self.keyring,
                                        lambda: self.plugin_resources().shared, trusted,
                                        shared_state=config.state != "memory")
        self.apps: dict[str, ASGIApp] = {"echo": echo_app, "identity": self.identity}
        self.ai = AiRuntime(self.keyring, lambda: self.plugin_resources().shared,
                            storage=config.storage)
        self.backends = {"ai": AiBackend(self.ai)}
        #: Access records: the queue, the batch writer and the sinks.
        self.observe = ObserveRuntime.serving(
            config.observe, SinkEnv(config.storage, worker_id()), separate=log_writer,
            drain_timeout=config.limits.shutdown_timeout + 10.0)
        #: Alert rules over the trends (None when observe.alerts.enabled is false).
        self.alerts = AlertService(
            config.observe.alerts, config.storage,
            AlertSources(balancers=lambda: self.snapshot.balancers if self.snapshot else {},
                         budgets=lambda: self.ai.state.config.budgets if self.ai.state else (),
                         state=lambda: self.plugin_resources().shared,
                         quotas=lambda: self.quotas),
            holder=self.observe.env.worker_id) if config.observe.alerts.enabled else None
        #: Prometheus /metrics (None when observe.metrics.enabled is false).
        self.metrics = node_metrics(config.observe.metrics, self.observe.sinks,
                                    lambda: read_worker(self.snapshot, self.observe))

    # ---------------------------------------------------------------- RuntimeInfo
    def status(self) -> dict[str, Any]:
        snap = self.snapshot
        loop = asyncio.get_running_loop()
        return {
            "revision": snap.revision if snap else 0,
            "connections": sum(len(state.connections) for state in self.listeners),
            "upstreams": snap.upstream_health(loop.time()) if snap else {},
            "uptime_seconds": round(time.time() - self.started, 3),
            "pid": os.getpid(),
            "version": __version__,
        }

    async def store(self) -> ConfigStore:
        """The full store, opened on first need (admin API writes, file reloads)."""
        async with self._store_lock:
            if self._store is None:
                from campusgate.store import ConfigStore

                self._store = await ConfigStore.open(self.config.storage, migrate=False,
                                                     keyring=self.keyring)
        return self._store

    async def reload(self) -> None:
        async with self._reload_lock:
            revision, document = await self.reader.latest()
            old = self.snapshot
            if old is not None and old.revision == revision:
                return
            try:
                entities = (Entities.model_validate_json(document) if document is not None
                            else Entities())
                new = compile_snapshot(revision, entities, self.config.trusted_proxies, old,
                                       resources=self.plugin_resources(), apps=self.apps,
                                       backends=self.backends)
                identity = entities.identity
                ai = self.ai.build(entities.ai)
                quotas = rate_limit_quotas(entities)
                del entities
            except Exception:
                log.exception("revision %d could not be compiled; keeping revision %d",
                              revision, old.revision if old else 0)
                return
            if identity is not None and self.reuse_port and self.config.state == "memory":
                log.warning("the identity provider keeps codes and sessions in the state "
                            "backend: with several workers set state: redis://..., or "
                            "sign-ins will fail when requests land on another worker")
            self.identity.update(identity)
            self.ai.state = ai
            self.quotas = quotas
            new.start()
            self.snapshot = new
            log.info("now serving config revision %d", revision)
            if old is not None:
                await old.retire(new)
            settle_memory()

    def check(self, entities: Entities) -> str | None:
        return state_problem(entities, self.config.state)

    async def signing_keys_changed(self) -> None:
        await self.identity.signing_keys_changed()

    def plugin_resources(self) -> PluginResources:
        """The worker's state backends and caches, made on first use."""
        if self.resources is None:
            memory = MemoryState()
            shared: StateBackend = memory
            if self.config.state != "memory":
                from campusgate.state import open_state

                shared = open_state(self.config.state)
            trusted = tuple(ipaddress.ip_network(c, strict=False)
                            for c in self.config.trusted_proxies)
            self.resources = PluginResources(self.keyring, memory, shared,
                                             asyncio.get_running_loop(), {}, trusted)
        return self.resources

    def current(self) -> Snapshot:
        assert self.snapshot is not None
        return self.snapshot

    # ---------------------------------------------------------------- lifecycle
    async def _admin_app(self) -> ASGIApp:
        from campusgate.admin.app import create_admin_app

        app: ASGIApp = create_admin_app(await self.store(), self)
        return app

    async def start(self) -> None:
        await self.reload()
        loop = asyncio.get_running_loop()
        proxy = self.config.listeners.proxy
        self.observe.start()
        if self.alerts is not None:
            self.alerts.start()
        if self.metrics is not None:
            self.tasks.append(loop.create_task(self.metrics.publish_forever()))
        # Old access records and roll-ups are pruned in the background (cancelled with
        # the other tasks at shutdown).
        self.tasks.append(loop.create_task(
            prune_forever(self.config.storage, self.config.observe.retention),
            name="observe retention"))
        await self._listen(proxy, Gateway(self.current, "https" if proxy.tls else "http",
                                          record=self.observe.put,
                                          propagate=self.observe.propagate))
        admin = self.config.listeners.admin
        if admin is not None:
            scheme = "https" if admin.tls else "http"
            await self._listen(admin, AppDispatcher(scheme=scheme, factory=self._admin_app,
                                                    fixed={"/healthz": HEALTHY}))
        self.tasks.append(loop.create_task(self._follow_store()))
        self.tasks.append(loop.create_task(sweep_pools_forever(
            lambda: list(self.snapshot.pools.values()) if self.snapshot else [])))
        if self.watch_file and self.config_path is not None:
            self.tasks.append(loop.create_task(self._watch_file(self.config_path)))

    async def _listen(self, listener: Listener, dispatcher: Any) -> None:
        loop = asyncio.get_running_loop()
        state = ListenerState(dispatcher, self.config.limits,
                              "https" if listener.tls else "http")
        server = await loop.create_server(
            lambda: ClientConnection(state, loop), listener.host, listener.port,
            ssl=server_ssl_context(listener), reuse_port=self.reuse_port or None,
            backlog=4096,
        )
        self.servers.append(server)
        self.listeners.append(state)
        log.info("listening on %s://%s", state.scheme, listener.address)

    async def _follow_store(self) -> None:
        probe = self.reader
        failing = False
        try:
            while True:
                await asyncio.sleep(POLL_INTERVAL)
                try:
                    revision = await probe.read()
                    if self.snapshot is None or revision != self.snapshot.revision:
                        await self.reload()
                    failing = False
                except Exception as exc:
                    if not failing:  # once per outage, not twice a second
                        log.error("cannot read the config store (%s); still serving "
                                  "revision %d", exc,
                                  self.snapshot.revision if self.snapshot else 0)
                    failing = True
        finally:
            await probe.close()

    async def _watch_file(self, path: Path) -> None:
        from campusgate.config.loader import ConfigError, load_config_file

        last = _mtime(path)
        while True:
            await asyncio.sleep(FILE_POLL_INTERVAL)
            now = _mtime(path)
            if now == last:
                continue
            last = now
            try:
                config = load_config_file(path)
            except ConfigError as exc:
                log.error("%s changed but is not valid; keeping the running config:\n%s",
                          path, exc)
                continue
            except OSError as exc:
                log.error("cannot read %s: %s", path, exc)
                continue
            store = await self.store()
            revision, changed = await store.save(config.entities(), f"file:{path}")
            if changed:
                log.info("%s changed: config revision %d", path, revision)
                await self.reload()

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace`` s), close."""
        for server in self.servers:
            server.close()
        for state in self.listeners:
            state.idle_close_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # Connections close by themselves once their response is out: poll, briefly.
        while any(s.connections for s in self.listeners) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for state in self.listeners:
            for conn in list(state.connections):
                if conn.transport is not None:
                    conn.transport.abort()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.alerts is not None:
            await self.alerts.close()
        await self.observe.close()  # requests are done: write every record left
        if self.metrics is not None:
            await self.metrics.close()  # after the last records
        if self.snapshot is not None:
            await self.snapshot.retire(None)
        await self.reader.close()
        await self.identity.close()
        self.ai.close()
        if self.resources is not None:
            await self.resources.close()
        if self._store is not None:
            await self._store.close()
        self.stopped.set()


def settle_memory() -> None:
    """After loading a revision: collect, then freeze what survives.

    Imports and the compiled snapshot are hundreds of thousands of long-lived objects;
    frozen, the cyclic collector stops walking them (a full pass over them took tens
    of milliseconds, an outage for every request waiting behind it).  Unfreezing first
    lets the collector free the retired snapshot's cycles: one pass per reload.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _return_free_memory()


def _return_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc's malloc_trim), so parsing a large
    config file does not leave the worker's RSS at its high-water mark."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
