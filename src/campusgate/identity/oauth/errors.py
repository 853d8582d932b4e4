"""OAuth errors as data: each knows its wire code, HTTP status and headers.

Authlib's error classes (``authlib.oauth2.rfc6749.errors``, ``authlib.oidc.core.
errors``) are used as they are; each renders itself as ``(status, body, headers)``
(RFC 6749 5.2).  This module adds the two the token endpoint needs beyond them --
``invalid_client`` as a 401 challenge, ``temporarily_unavailable`` as a 503 -- and
:func:`oauth_error_response`, which turns any of them into the JSON answer with
``Cache-Control: no-store``.

:data:`STORE_ERRORS` names what a store outage looks like from a grant thread: the
state backend (:class:`StateUnavailable`), the database (SQLAlchemy, or the socket
under it), or a store call that did not come back in time (``IdentityContext.call``
raises ``TimeoutError``, an ``OSError``).  Endpoints catch exactly these and answer
503; nothing else is swallowed.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped]
    InvalidClientError,
    OAuth2Error,
)
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from campusgate.state.base import StateUnavailable

__all__ = [
    "REALM",
    "STORE_ERRORS",
    "InvalidClient",
    "OAuth2Error",
    "TemporarilyUnavailableError",
    "oauth_error_response",
]

#: The ``realm`` of the ``WWW-Authenticate`` challenge (RFC 7617 2).
REALM = "campusgate"
#: What a store outage raises into an endpoint (see the module docstring).
STORE_ERRORS: tuple[type[Exception], ...] = (StateUnavailable, SQLAlchemyError, OSError)


class InvalidClient(InvalidClientError):  # type: ignore[misc]
    """Client authentication failed: 401 with a ``Basic`` challenge (RFC 6749 5.2,
    "the authorization server MUST respond with an HTTP 401 ... and include the
    WWW-Authenticate response header field matching the authentication scheme")."""

    status_code = 401

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = list(OAuth2Error.get_headers(self))
        headers.append(("WWW-Authenticate", f'Basic realm="{REALM}", error="{self.error}"'))
        return headers


class TemporarilyUnavailableError(OAuth2Error):  # type: ignore[misc]
    """A store the request needs is down; the client may retry shortly."""

    error = "temporarily_unavailable"
    status_code = 503
    description = "The identity service's storage is unavailable; try again shortly."

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = list(super().get_headers())
        headers.append(("Retry-After", "5"))
        return headers


def oauth_error_response(error: OAuth2Error) -> JSONResponse:
    """The JSON error response of ``error`` (RFC 6749 5.2), never cached."""
    status: int
    body: dict[str, Any]
    status, body, headers = error()
    return JSONResponse(body, status_code=status, headers=dict(headers))
