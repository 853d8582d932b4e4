"""Whether the ClassLink sandbox is on, read per request (the config may change).

The routes always exist (the app is built once per worker); while the sandbox is
off -- no ``identity.classlink_sandbox`` section, or ``enabled: false`` -- each answers
the same 404 as a path that does not exist, so nothing reveals the feature.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.identity.context import IdentityContext

__all__ = ["not_found", "sandbox_of"]


def sandbox_of(ctx: IdentityContext) -> ClassLinkSandbox | None:
    """The sandbox settings when it is enabled, else None."""
    sandbox = ctx.config.classlink_sandbox
    return sandbox if sandbox is not None and sandbox.enabled else None


def not_found() -> Response:
    return JSONResponse({"error": "not_found"}, status_code=404)
