"""The plugin interface: a typed config model and up to three phase methods.

``access`` runs before the request goes upstream and may answer early with a
:class:`LocalResponse`; ``response`` sees the upstream's (or local) status and
headers and may change the headers; ``log`` runs after the last byte is sent.
Only the phases a plugin overrides are put in the compiled chain.

The proxy answers most requests on a callback-only path that cannot await.  A plugin
whose access check never waits overrides :meth:`Plugin.access_now` only.  A plugin
that waits only sometimes (a cache miss, a key not fetched yet) overrides both:
``access_now`` answers when it can and returns :data:`WAIT` otherwise -- before it has
changed anything -- and the request moves to the task path, which resumes the chain
at that plugin with ``await plugin.access(ctx)``.  A plugin that always waits
overrides ``access`` only.

Plugins that must see bodies opt in to the body phases (see
:mod:`campusgate.proxy.bodies`): ``request_stream`` counts request body bytes as they
stream upstream; ``request_body`` and ``response_body`` get a whole body, buffered up
to ``body_limit`` bytes.  A route whose chain has none streams its bodies untouched.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict

from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

if TYPE_CHECKING:
    from campusgate.keyring import Keyring
    from campusgate.proxy.consumers import ConsumerIndex
    from campusgate.state.base import StateBackend

__all__ = ["AUTH_PRIORITY", "DEFAULT_BODY_LIMIT", "WAIT", "AccessAnswer", "Plugin",
           "PluginConfig", "PluginEnv", "Wait"]

#: Where authentication runs in the access chain; plugins above it run before the
#: consumer is known.
AUTH_PRIORITY: Final = 1000

#: How many bytes of a body a body-phase plugin buffers unless it says otherwise.
DEFAULT_BODY_LIMIT: Final = 10 * 1024 * 1024


class Wait:
    """The type of :data:`WAIT`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WAIT"


#: ``access_now`` returns this when it cannot answer without awaiting.
WAIT: Final = Wait()

AccessAnswer = LocalResponse | None | Wait


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, eq=False)
class PluginEnv:
    """What a plugin instance may use besides its config.

    ``resources`` live as long as the worker (they survive reloads); ``scope`` and
    ``consumers`` belong to the snapshot the plugin was built for.
    """

    resources: PluginResources
    #: Where the plugin is attached: ``global``, ``service:NAME``, ``route:NAME``,
    #: ``group:NAME`` or ``consumer:NAME``.  Counters and caches are keyed by it.
    scope: str = "global"
    consumers: ConsumerIndex | None = None

    def at(self, scope: str) -> PluginEnv:
        return replace(self, scope=scope)

    @property
    def keyring(self) -> Keyring:
        return self.resources.keyring

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.resources.loop


@dataclass(eq=False)
class PluginResources:
    """Worker-lifetime resources shared by every snapshot's plugins.

    ``memory`` is always this worker's in-process state; ``shared`` is the configured
    ``state`` backend (the same object as ``memory`` unless ``state`` is a Redis URL).
    ``caches`` holds caches that should outlive a reload (JWKS documents, verified
    tokens), by a key of the plugin's choosing.
    """

    keyring: Keyring
    memory: StateBackend
    shared: StateBackend
    loop: asyncio.AbstractEventLoop
    caches: dict[str, Any] = field(default_factory=dict)
    #: The ``trusted_proxies`` setting: peers whose X-Forwarded-For is believed.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def state(self, backend: str) -> StateBackend:
        """``memory``, ``redis`` or ``default`` (whatever the ``state`` setting is)."""
        if backend == "memory":
            return self.memory
        if backend == "redis" and self.shared.kind != "redis":
            raise ValueError("backend redis needs the state setting to be a redis:// URL")
        return self.shared

    def cache(self, key: str, factory: Any) -> Any:
        """The worker-lifetime object under ``key``, made by ``factory()`` on first use."""
        value = self.caches.get(key)
        if value is None:
            value = self.caches[key] = factory()
        return value

    async def close(self) -> None:
        """Close what the caches hold that needs closing (HTTP clients), then state."""
        for value in list(self.caches.values()):
            aclose = getattr(value, "aclose", None)
            if aclose is not None:
                await aclose()
        self.caches.clear()
        await self.shared.close()
        if self.memory is not self.shared:
            await self.memory.close()


class Plugin:
    """Base class; subclasses set ``name``, ``priority`` and ``config_model``."""

    name: ClassVar[str]
    #: Higher runs first in ``access`` (Kong's convention).
    priority: ClassVar[int] = 0
    config_model: ClassVar[type[PluginConfig]] = PluginConfig
    #: May be attached to a consumer or consumer group (it runs after authentication).
    consumer_scoped: ClassVar[bool] = True

    def __init__(self, config: PluginConfig, env: PluginEnv) -> None:
        self.config = config
        self.env = env

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        """The access phase, on the task path (it may await)."""
        answer = self.access_now(ctx)
        if isinstance(answer, Wait):
            raise TypeError(f"plugin {self.name} returned WAIT but does not override access()")
        return answer

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        """The access phase without awaiting: an answer, None to go on, or WAIT."""
        return None

    def access_start(self, ctx: RequestContext) -> asyncio.Future[Any] | None:
        """After ``access_now`` said WAIT: start the wait without a task (a Redis
        command on an open connection), returning a future the callback path resumes
        on -- then :meth:`access_finish` reads it.  None (the default): the request
        goes to the task path and ``access`` is awaited there."""
        return None

    def access_finish(self, ctx: RequestContext, done: asyncio.Future[Any]) -> AccessAnswer:
        """The access answer once the future of :meth:`access_start` is done; WAIT
        hands the request to the task path (``access`` runs there, from scratch)."""
        return WAIT

    @classmethod
    def attaches_to_consumers(cls) -> bool:
        """May be attached to a consumer or consumer group: it runs after
        authentication (and does not opt out with ``consumer_scoped = False``)."""
        return cls.consumer_scoped and cls.priority <= AUTH_PRIORITY

    @classmethod
    def awaits_in_access(cls) -> bool:
        """True when the access phase always waits (the plugin overrides only ``access``)."""
        return cls.overrides("access") and not cls.overrides("access_now")

    @classmethod
    def has_access(cls) -> bool:
        return cls.overrides("access") or cls.overrides("access_now")

    def runs(self, phase: str) -> bool:
        """Does this instance take part in ``phase`` (``access``, ``response``,
        ``log``, or a body phase: ``request_stream``, ``request_tap``, ``request_body``,
        ``response_body``)?  Asked once, when chains are compiled; by default, whether
        the class overrides it.  An instance whose config makes a phase a no-op (a
        request-id with the defaults, a transformer without JSON operations) says
        False, and costs nothing there."""
        return type(self).has_access() if phase == "access" else type(self).overrides(phase)

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        return None

    def log(self, ctx: RequestContext) -> None:
        return None

    @classmethod
    def overrides(cls, phase: str) -> bool:
        return getattr(cls, phase) is not getattr(Plugin, phase)

    # ---------------------------------------------------------------- body phases
    #: Most bytes of a body this instance buffers: a larger request body is refused
    #: with 413, a larger response body passes without this plugin's body phase.
    body_limit: int = DEFAULT_BODY_LIMIT
    #: Log a warning when a response body is too large for :meth:`response_body`.
    warn_unbuffered: ClassVar[bool] = True
    #: :meth:`response_overflow` wants the first ``body_limit`` bytes of a response
    #: whose declared ``Content-Length`` is over the limit too: the head then waits
    #: until they arrived (as for a response without a declared length), instead of
    #: the body streaming on at once.
    taps_overflow: ClassVar[bool] = False

    def request_stream(self, ctx: RequestContext, received: int) -> LocalResponse | None:
        """Streaming: ``received`` bytes of the request body have arrived so far.  An
        answer stops the upload; it is sent if the response has not started (else the
        connection is cut)."""
        return None

    def request_tap(self, ctx: RequestContext, data: bytes) -> None:
        """Streaming: the next chunk of a request body going upstream as it came
        (not held for :meth:`request_body`), for a plugin that only looks."""

    def wants_request_body(self, ctx: RequestContext) -> bool:
        """Should this request's body be buffered for :meth:`request_body`?"""
        return True

    def request_body(self, ctx: RequestContext, body: bytes) -> bytes | LocalResponse:
        """The whole request body (at most ``body_limit`` bytes): the body to send
        upstream, or an answer instead of proxying."""
        return body

    def wants_response_body(self, ctx: RequestContext, status: int,
                            headers: HeaderList) -> bool:
        """Should this response's body be buffered for :meth:`response_body`?  Asked
        before the ``response`` phase, with the upstream's headers."""
        return True

    def response_overflow(self, ctx: RequestContext, status: int, headers: HeaderList,
                          prefix: bytes, size: int | None = None) -> None:
        """A response body this plugin wanted is over its ``body_limit`` (it outgrew
        the buffer while gathered, or another plugin's larger limit held it whole)
        and goes out untouched by it: ``prefix`` is its first ``body_limit`` bytes,
        for a plugin that only looks; ``size`` the body's length when known (declared,
        or held whole)."""

    def response_body(self, ctx: RequestContext, status: int, headers: HeaderList,
                      body: bytes) -> bytes:
        """The whole response body: the body to send.  ``headers`` may be edited (the
        ``response`` phase runs afterwards; Content-Length is set from the result)."""
        return body
