"""What a plugin may change of the upstream request besides headers and query.

Headers go through ``ctx.upstream_headers_add`` / ``upstream_headers_remove`` (or an
in-place edit of ``ctx.headers``) and the query string through ``ctx.query``; the
path and method sent upstream are set here.  They live in ``ctx.vars`` so that a
request no plugin rewrote costs nothing: the backends look only when ``vars`` is
not empty.
"""

from __future__ import annotations

from typing import Final

from campusgate.proxy.context import RequestContext

__all__ = ["UPSTREAM_METHOD", "UPSTREAM_PATH", "set_upstream_method", "set_upstream_path"]

#: The whole path sent upstream (str; the service path is not added).
UPSTREAM_PATH: Final = "upstream.path"
#: The method sent upstream (bytes).
UPSTREAM_METHOD: Final = "upstream.method"


def set_upstream_path(ctx: RequestContext, path: str) -> None:
    """Send ``path`` upstream instead of the routed one; later plugins see it as
    ``ctx.path``."""
    ctx.path = path if path.startswith("/") else "/" + path
    ctx.vars[UPSTREAM_PATH] = ctx.path


def set_upstream_method(ctx: RequestContext, method: str) -> None:
    """Send ``method`` upstream; later plugins see it as ``ctx.method``."""
    ctx.method = method
    ctx.vars[UPSTREAM_METHOD] = method.encode("ascii")
