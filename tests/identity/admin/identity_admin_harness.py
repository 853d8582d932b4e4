"""Helpers of the identity admin tests (``from identity_admin_harness import ...``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from campusgate.admin import StaticRuntime, create_admin_app
from campusgate.config.model import Limits
from campusgate.proxy.app_dispatcher import AppDispatcher
from campusgate.proxy.http1 import ClientConnection, ListenerState
from campusgate.store import ConfigStore

__all__ = ["ISSUER", "identity_admin_app", "serving"]

ISSUER = "https://id.example.edu"


def identity_admin_app(store: ConfigStore, runtime: StaticRuntime) -> FastAPI:
    """The admin app as the gateway builds it (its identity routers included)."""
    return create_admin_app(store, runtime)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a real 127.0.0.1 listener, served like the gateway's admin listener."""
    loop = asyncio.get_running_loop()
    state = ListenerState(AppDispatcher(app), Limits())
    server = await loop.create_server(lambda: ClientConnection(state, loop), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for conn in list(state.connections):
            conn.close()
