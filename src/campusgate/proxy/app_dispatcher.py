"""A listener served by one ASGI app: the admin listener's dispatcher.

The app is built at the first request that needs it (the admin plane -- FastAPI,
SQLAlchemy -- is some 40 MB), and a few fixed answers (``/healthz``) never need it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from campusgate.proxy.asgi import ASGIApp, run_asgi
from campusgate.proxy.context import LocalResponse, RequestContext
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request
from campusgate.proxy.request_ids import new_request_id

__all__ = ["HEALTHY", "AppDispatcher"]

#: ``GET /healthz`` on the admin listener, as the admin API documents it
#: (``admin/endpoints/status.py``), answered without loading the admin plane.
HEALTHY = LocalResponse.json(200, {"status": "ok"})


class AppDispatcher:
    """Serves every request of a listener with one ASGI app (the admin API).

    ``app`` may be an app or an async factory of one, called at the first request:
    the admin plane (FastAPI, SQLAlchemy: some 40 MB) loads only when it is used.
    ``fixed`` answers (by path, to GET and HEAD) are sent without the app: a liveness
    probe polling ``/healthz`` must not load the admin plane into every worker.
    """

    def __init__(self, app: ASGIApp | None = None, scheme: str = "http", *,
                 factory: Callable[[], Awaitable[ASGIApp]] | None = None,
                 fixed: dict[str, LocalResponse] | None = None) -> None:
        self.app = app
        self._factory = factory
        self._lock = asyncio.Lock()
        self.scheme = scheme
        self.fixed = fixed or {}

    async def _app(self) -> ASGIApp:
        async with self._lock:
            if self.app is None:
                assert self._factory is not None
                self.app = await self._factory()
            return self.app

    async def handle(self, conn: ClientConnection, req: Request) -> None:
        fixed = self.fixed.get(req.path) if req.method in (b"GET", b"HEAD") else None
        request_id = new_request_id()
        if fixed is not None:
            conn.send_local(req, LocalResponse(
                fixed.status, fixed.body,
                [*fixed.headers, (b"x-request-id", request_id.encode())]))
            return
        app = self.app if self.app is not None else await self._app()
        ctx = RequestContext(req.method.decode("latin-1"), req.path, req.query, req.headers,
                             conn.client_ip, self.scheme, req.host.decode("latin-1"),
                             request_id)
        await run_asgi(app, conn, req, ctx)
