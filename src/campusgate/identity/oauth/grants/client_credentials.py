"""The client credentials grant (RFC 6749 4.4): a service calling APIs as itself.

Only confidential clients registered for ``client_credentials`` (anything else is
``unauthorized_client``).  The token's scope is the requested scope ∩ the client's
scopes -- all of them when none is requested -- without the OpenID Connect scopes,
which describe a user and there is none (``invalid_scope`` when nothing is left).
The access token's subject is the client id; no refresh token (RFC 6749 4.4.3), no
grant (nothing to revoke as a family).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import InvalidScopeError  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.hooks import hooked  # type: ignore[import-untyped]

from campusgate.config.identity import STANDARD_SCOPES
from campusgate.identity.oauth.clients import OAuthClient
from campusgate.identity.oauth.grants import CONFIDENTIAL_AUTH_METHODS

__all__ = ["ClientCredentialsGrant"]


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        client: OAuthClient = self.request.client
        scopes = [s for s in client.scopes_within(self.request.payload.scope)
                  if s not in STANDARD_SCOPES]
        if not scopes:
            raise InvalidScopeError("None of the requested scopes is allowed for this client.")
        self.request.scope = " ".join(scopes)

    @hooked  # type: ignore[untyped-decorator]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Authlib's, with the scope narrowed by :meth:`validate_requested_scope`."""
        token: dict[str, Any] = self.generate_token(scope=self.request.scope,
                                                    include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
