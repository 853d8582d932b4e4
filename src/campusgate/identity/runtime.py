"""The identity plane of one worker, served as the ``builtin://identity`` backend.

The worker makes one :class:`IdentityRuntime` and tells it each config revision's
``identity`` section.  Nothing is opened until the first request reaches an identity
endpoint: then the directory (the store's database), the signing keys and the app
are made, so a gateway without an identity provider carries none of it (Authlib,
Jinja2, SQLAlchemy stay unimported).  A change of issuer rebuilds the app (its routes
live under the issuer's path); other changes only swap the settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from campusgate.config.identity import IdentityConfig
from campusgate.keyring import Keyring
from campusgate.proxy.addresses import AddressSet, client_address
from campusgate.proxy.asgi import ASGIApp, Receive, Scope, Send
from campusgate.state.base import StateBackend

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext

__all__ = ["IdentityRuntime"]

log = logging.getLogger("campusgate.identity")


class IdentityRuntime:
    """An ASGI app that builds the identity provider on first use."""

    def __init__(self, storage: str, keyring: Keyring, state: Callable[[], StateBackend],
                 trusted_proxies: AddressSet, shared_state: bool) -> None:
        self.storage = storage
        self.keyring = keyring
        self._state = state
        self.trusted = trusted_proxies
        self.shared_state = shared_state
        self.config: IdentityConfig | None = None
        self.context: IdentityContext | None = None
        self._app: ASGIApp | None = None
        self._issuer = ""
        self._lock = asyncio.Lock()

    def update(self, config: IdentityConfig | None) -> None:
        """The identity settings of the revision about to be served."""
        self.config = config
        if config is not None and self.context is not None:
            self.context.update(config)

    async def _build(self, config: IdentityConfig) -> ASGIApp:
        async with self._lock:
            if self.context is None:
                from campusgate.identity.context import IdentityContext
                from campusgate.identity.directory import IdentityDirectory
                from campusgate.identity.ephemeral import Ephemeral
                from campusgate.identity.keys import KeyManager

                directory = await IdentityDirectory.open(self.storage, self.keyring)
                keys = KeyManager(directory)
                await keys.ensure()
                self.context = IdentityContext(
                    config=config, keyring=self.keyring, directory=directory,
                    ephemeral=Ephemeral(self._state()), keys=keys,
                    loop=asyncio.get_running_loop(), shared_state=self.shared_state)
            self.context.update(config)
            if self._app is None or self._issuer != config.issuer:
                from campusgate.identity.app import create_identity_app

                self._app = create_identity_app(self.context)
                self._issuer = config.issuer
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        if config is None:  # the revision has no identity section (any more)
            await _not_found(send)
            return
        app = self._app
        context = self.context
        if app is None or self._issuer != config.issuer or context is None:
            app = await self._build(config)
            context = self.context
            assert context is not None
        await context.keys.refresh()  # at most every few seconds: picks up rotations
        await context.sources.close_retired()  # a revision's removed or changed sources
        client = scope.get("client")
        if client and self.trusted:
            real = client_address(client[0], scope["headers"], self.trusted)
            if real is not None:
                scope["client"] = (str(real), client[1])
        await app(scope, receive, send)

    async def signing_keys_changed(self) -> None:
        """Keys were rotated (by this worker's admin API): reload them now."""
        if self.context is not None:
            await self.context.keys.refresh(max_age=0)

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()
            self.context = None


async def _not_found(send: Send) -> None:
    body = b'{"error":"not_found","error_description":"no identity provider is configured"}'
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
