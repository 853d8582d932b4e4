"""The refresh token grant (RFC 6749 6) with rotation and reuse detection (RFC 9700
4.14.2).

Authlib's ``RefreshTokenGrant`` checks the client and the scope (narrower or equal,
else ``invalid_scope``); this module supplies the tokens:

- A refresh token (``cgrt_`` + 256 random bits) is stored by its SHA-256 in the
  directory, in the family (grant) of the code that started it, bound to its client:
  another client's token is ``invalid_grant``, like an expired or revoked one.
- **Rotation**: each use returns a new refresh token, with the family's scope (RFC
  6749 6: "identical to that of the refresh token included by the client"), and
  marks the old one used -- atomically (``directory.use_refresh_token``), so of two
  concurrent uses exactly one wins.
- **Reuse** of a used token means two parties hold it: the whole family is revoked
  (``tokens.revoke_grant``: its refresh tokens and every access token issued from
  it) and the request fails with ``invalid_grant``.
- With ``openid`` in the scope a new ID token comes too (OIDC Core 12.2; the
  ``IdTokenExtension``), with the original ``auth_time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749 import TokenMixin, grants  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import InvalidGrantError  # type: ignore[import-untyped]

from campusgate.identity.models import RefreshToken
from campusgate.identity.oauth.grants import (
    AUTH_METHODS,
    ResourceOwner,
    active_user,
    grant_context,
)
from campusgate.identity.tokens import REFRESH_PREFIX, revoke_grant

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext
    from campusgate.identity.oauth.clients import OAuthClient

__all__ = ["RefreshCredential", "RefreshTokenGrant"]


@dataclass(frozen=True)
class RefreshCredential(TokenMixin):  # type: ignore[misc]
    """A presented refresh token and its record, as Authlib's grant sees it."""

    token: str
    record: RefreshToken

    def check_client(self, client: OAuthClient) -> bool:
        return self.record.client_id == client.client_id

    def get_scope(self) -> str:
        return self.record.scope


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    #: Rotation: every refresh returns a new refresh token.
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def ctx(self) -> IdentityContext:
        return grant_context(self)

    def _family_compromised(self, record: RefreshToken) -> None:
        self.ctx.call(revoke_grant(self.ctx, record.grant_id))

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        """The token's record if this client may use it now (read only: the token is
        spent in :meth:`authenticate_user`, after the scope check)."""
        if not refresh_token.startswith(REFRESH_PREFIX):
            return None
        ctx = self.ctx
        record = ctx.call(ctx.directory.find_refresh_token(refresh_token))
        if record is None or record.client_id != self.request.client.client_id:
            return None
        if record.used_at is not None:
            self._family_compromised(record)
            return None
        if record.revoked or record.expires_at <= ctx.now():
            return None
        return RefreshCredential(token=refresh_token, record=record)

    def authenticate_user(self, credential: RefreshCredential) -> ResourceOwner:
        """Spend the refresh token: of concurrent uses only the first proceeds; a
        later one is a replay and revokes the family."""
        ctx = self.ctx
        spent = ctx.call(ctx.directory.use_refresh_token(credential.token, ctx.now()))
        if spent is None:
            raise InvalidGrantError("Invalid refresh token.")
        record, first_use = spent
        if not first_use:
            self._family_compromised(record)
            raise InvalidGrantError("The refresh token has already been used.")
        grant = ctx.call(ctx.directory.get_grant(record.grant_id))
        if grant is None or grant.revoked_at is not None or record.revoked:
            raise InvalidGrantError("The refresh token has been revoked.")
        user = active_user(ctx, record.user_id)
        return ResourceOwner(user=user, grant=grant, auth_time=grant.auth_time)

    def revoke_old_credential(self, credential: RefreshCredential) -> None:
        """Nothing left to do: :meth:`authenticate_user` marked it used."""
