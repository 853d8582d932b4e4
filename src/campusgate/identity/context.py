"""What every identity endpoint works with: settings, clients, stores, keys, clock.

One :class:`IdentityContext` per worker.  The settings and clients come from the
running config revision and are swapped on reload (:meth:`IdentityContext.update`);
the directory (users, consents, refresh tokens, signing keys: SQL), the ephemeral
store (codes, sessions, login transactions, revocation marks: the state backend), the
key manager and the login sources' connections (``sources/connections.py``) live as
long as the worker.

Authlib's grants are synchronous; they run on :attr:`executor` threads and reach the
async stores through :meth:`IdentityContext.call` (see ``identity/oauth/server.py``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from campusgate.config.identity import IdentityClient, IdentityConfig
from campusgate.identity.roster.store import RosterStore
from campusgate.keyring import Keyring

if TYPE_CHECKING:
    from campusgate.identity.directory import IdentityDirectory
    from campusgate.identity.ephemeral import Ephemeral
    from campusgate.identity.keys import KeyManager
    from campusgate.identity.sources.connections import SourceDirectory

__all__ = ["IdentityContext"]

T = TypeVar("T")

#: Seconds a grant thread waits for an async store call before giving up.
CALL_TIMEOUT = 30.0


def _source_directory() -> SourceDirectory:
    # Imported here: the sources' modules import this one.
    from campusgate.identity.sources.connections import SourceDirectory

    return SourceDirectory()


@dataclass(eq=False)
class IdentityContext:
    config: IdentityConfig
    keyring: Keyring
    directory: IdentityDirectory
    ephemeral: Ephemeral
    keys: KeyManager
    loop: asyncio.AbstractEventLoop
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="identity"))
    #: Seconds since the epoch (tests move it).
    clock: Callable[[], float] = time.time
    #: Whether the gateway serves several workers sharing only the state backend.
    shared_state: bool = False
    #: The Authlib server built for the current config (``oauth/server.py``).
    oauth_server: object | None = field(default=None, repr=False)
    #: One HTTP client per login source, with its endpoints and keys.
    sources: SourceDirectory = field(default_factory=_source_directory, repr=False)

    @functools.cached_property
    def roster(self) -> RosterStore:
        """The OneRoster directory (tenants, orgs, classes, people), on the identity
        directory's engine (made once per context)."""
        return RosterStore(self.directory.engine, self.keyring)

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def url(self, path: str) -> str:
        """The absolute URL of an endpoint path from ``identity/paths.py``."""
        return self.config.issuer + path

    def client(self, client_id: str | None) -> IdentityClient | None:
        return self.config.client(client_id) if client_id else None

    def update(self, config: IdentityConfig) -> None:
        """A new config revision: new settings and clients, same stores and keys (the
        connections of login sources it removes or changes are retired)."""
        self.config = config
        self.sources.update(config.sources)

    def now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------ threads
    async def run_sync(self, func: Callable[..., T], *args: object) -> T:
        """Run synchronous (Authlib) code on a grant thread."""
        return await self.loop.run_in_executor(self.executor, func, *args)

    def call(self, coro: Awaitable[T]) -> T:
        """From a grant thread: run ``coro`` on the event loop and wait for it."""
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop)
        return future.result(CALL_TIMEOUT)

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        await self.sources.close()
        await self.directory.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
