"""Operator authentication: an admin token as ``Authorization: Bearer <token>`` or in
the ``Campusgate-Admin-Token`` header, checked against the store's hashes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from campusgate.admin.context import AdminContext, admin_context
from campusgate.admin.errors import Unauthorized

__all__ = ["TOKEN_HEADER", "require_admin"]

TOKEN_HEADER = "Campusgate-Admin-Token"

_bearer = HTTPBearer(auto_error=False, description="An admin token (cgadm_...)")
_header = APIKeyHeader(name=TOKEN_HEADER, auto_error=False, description="An admin token")


async def require_admin(
    request: Request,
    context: Annotated[AdminContext, Depends(admin_context)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> None:
    """Reject the request with 401 unless it carries an active admin token."""
    token = bearer.credentials if bearer is not None else header
    if not token:
        raise Unauthorized(
            f"an admin token is required: send 'Authorization: Bearer <token>' "
            f"or '{TOKEN_HEADER}: <token>'"
        )
    if not await context.store.verify_admin_token(token.strip()):
        raise Unauthorized("the admin token is not valid (revoked or mistyped?)")
