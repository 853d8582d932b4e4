"""How one worker talks to its login sources: one long-lived HTTP client per source,
with what it has learnt of the source.

A :class:`SourceConnection` holds, for one source, an ``httpx.AsyncClient`` (its
connections kept alive between sign-ins), the source's endpoints
(:mod:`campusgate.auth.provider_cache`: read again after :data:`DISCOVERY_MAX_AGE`
seconds, a failed read not tried again within :data:`DISCOVERY_RETRY_AFTER` seconds,
the last good endpoints served meanwhile -- as the ``sso`` plugin keeps its
provider's) and the key set its ID tokens are signed with
(:class:`~campusgate.auth.jwks.JwksCache`, fetched with the same client).

The :class:`SourceDirectory` (one per worker, on the identity context) keeps a
connection per source of the running config.  A source that a new revision removes
or changes (anything but its secret, which is read from the running config at each
use) has its connection retired: closed as soon as no sign-in uses it -- at the end
of the last one, or at the next identity request (:meth:`SourceDirectory.
close_retired`, called by ``identity/runtime.py``); the rest are closed with the
worker (:meth:`SourceDirectory.close`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Final

import httpx

from campusgate.auth import jwks
from campusgate.auth.discovery import DiscoveryError, fetch_document
from campusgate.auth.provider_cache import ProviderCache
from campusgate.auth.retry import Unavailable
from campusgate.config.identity_sources import LoginSource
from campusgate.identity.sources.errors import SourceError, not_answering, untrusted
from campusgate.identity.sources.provider import (
    Endpoints,
    discovery_url,
    endpoints_from_discovery,
)

__all__ = ["DISCOVERY_MAX_AGE", "DISCOVERY_RETRY_AFTER", "SourceConnection",
           "SourceDirectory"]

#: Discovery documents are read again after this many seconds.
DISCOVERY_MAX_AGE: Final = 3600.0
#: Seconds between two reads of a discovery document after a failed one.
DISCOVERY_RETRY_AFTER: Final = 5.0
#: What a connection depends on: a change of anything else keeps it.
_SECRETS: Final = frozenset({"client_secret", "client_secret_encrypted"})


def _settings(source: LoginSource) -> dict[str, Any]:
    return source.model_dump(exclude=set(_SECRETS))


class SourceConnection:
    """One source's HTTP client, endpoints and key sets (see the module docstring)."""

    def __init__(self, source: LoginSource,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.settings = _settings(source)
        self.http = httpx.AsyncClient(timeout=source.timeout, follow_redirects=False)
        self.discovery = ProviderCache(self._discover, SourceError,
                                       max_age=DISCOVERY_MAX_AGE,
                                       retry_after=DISCOVERY_RETRY_AFTER, clock=clock)
        self._keys: dict[str, jwks.JwksCache] = {}
        #: Sign-ins using the connection now.
        self.users = 0

    async def endpoints(self) -> Endpoints:
        """The source's endpoints (SourceError when its discovery document cannot be
        had or used, and none were had before)."""
        return await self.discovery.get()

    async def _discover(self) -> Endpoints:
        source = self.source
        try:
            document = await fetch_document(self.http, discovery_url(source),
                                            time_limit=source.timeout)
            return endpoints_from_discovery(source, document)
        except Unavailable as exc:
            raise not_answering(source.name, source.button, "discovery", str(exc)) from None
        except DiscoveryError as exc:
            raise untrusted(source.name, source.button, "discovery", str(exc)) from None

    def keys(self, jwks_uri: str) -> jwks.JwksCache:
        """The key set at ``jwks_uri``, fetched with this connection's client."""
        cache = self._keys.get(jwks_uri)
        if cache is None:
            cache = self._keys[jwks_uri] = jwks.JwksCache(
                jwks_uri, timeout=self.source.timeout,
                fetch=functools.partial(jwks.fetch_document, client=self.http))
        return cache

    async def aclose(self) -> None:
        await self.http.aclose()


class SourceDirectory:
    """Per worker: a :class:`SourceConnection` per login source, made when first
    needed (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._connections: dict[str, SourceConnection] = {}
        self._retired: list[SourceConnection] = []

    def update(self, sources: Iterable[LoginSource]) -> None:
        """A new config revision: the connections of sources removed or changed are
        retired."""
        current = {source.name: _settings(source) for source in sources}
        for name, held in list(self._connections.items()):
            if current.get(name) != held.settings:
                self._retired.append(self._connections.pop(name))

    @contextlib.asynccontextmanager
    async def use(self, source: LoginSource) -> AsyncIterator[SourceConnection]:
        """The connection to ``source`` (as the running config has it), kept open while
        the ``async with`` block runs."""
        held = self._connections.get(source.name)
        if held is None or held.settings != _settings(source):
            if held is not None:
                self._retired.append(held)
            held = self._connections[source.name] = SourceConnection(source, self.clock)
        held.users += 1
        try:
            yield held
        finally:
            held.users -= 1
            if not held.users and held in self._retired:
                self._retired.remove(held)
                await held.aclose()

    async def close_retired(self) -> None:
        """Close the retired connections no sign-in uses (cheap when there are none)."""
        if not self._retired:
            return
        idle = [held for held in self._retired if not held.users]
        self._retired = [held for held in self._retired if held.users]
        for held in idle:
            await held.aclose()

    async def close(self) -> None:
        """Close every connection (the worker stops)."""
        held = [*self._connections.values(), *self._retired]
        self._connections.clear()
        self._retired.clear()
        for connection in held:
            await connection.aclose()
