"""What the grants share: who tokens are issued for, and the ID token.

A grant (RFC 6749 4.1, 4.4, 6) decides *whether* tokens are issued; minting them is
the server's token generator (``oauth/server.py``) over ``identity/tokens.py``.
Between the two travels a :class:`ResourceOwner`: the user, the grant (refresh-token
family, ``identity/models.py``) the tokens belong to, and how the user signed in.

:class:`IdTokenExtension` is Authlib's ``OpenIDToken`` grant extension (OIDC Core
3.1.3.3: an ID token in the token response whenever ``openid`` is in its scope),
with the token itself made by ``tokens.mint_id_token``, so that every ID token --
after a code or a refresh (OIDC Core 12.2) -- is shaped and signed in one place.

Grants run on the context's threads (Authlib is synchronous); every store call goes
through ``ctx.call``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.errors import InvalidGrantError  # type: ignore[import-untyped]
from authlib.oidc.core.grants import OpenIDToken  # type: ignore[import-untyped]

from campusgate.identity.tokens import mint_id_token

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext
    from campusgate.identity.models import Grant, User

__all__ = [
    "AUTH_METHODS",
    "CONFIDENTIAL_AUTH_METHODS",
    "IdTokenExtension",
    "ResourceOwner",
    "active_user",
    "grant_context",
]

#: Client authentication methods at the token endpoint (RFC 7591 2); each client is
#: held to its registered one (``OAuthClient.check_endpoint_auth_method``).
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]


@dataclass(frozen=True)
class ResourceOwner:
    """The user tokens are issued for, in the grant they belong to."""

    user: User
    grant: Grant
    #: When the user signed in (the ID token's ``auth_time``).
    auth_time: int | None
    #: From the authorization request (a code's first ID token only).
    nonce: str | None = None
    #: The sign-in session (the ID token's ``sid``).
    session_id: str | None = None

    def get_user_id(self) -> str:
        return self.user.id


def grant_context(grant: Any) -> IdentityContext:
    """The identity context of an Authlib grant (through its server)."""
    ctx: IdentityContext = grant.server.ctx
    return ctx


def active_user(ctx: IdentityContext, user_id: str | None) -> User:
    """The user tokens are about to be issued for; ``invalid_grant`` when they were
    deleted or disabled since they signed in."""
    user = ctx.call(ctx.directory.get_user(user_id)) if user_id else None
    if user is None or user.disabled:
        raise InvalidGrantError("The user of this grant can no longer sign in.")
    return user


class IdTokenExtension(OpenIDToken):  # type: ignore[misc]
    """Adds ``id_token`` to a token response whose scope has ``openid``."""

    def process_token(self, grant: Any, response: tuple[int, dict[str, Any], Any]
                      ) -> dict[str, Any]:
        _, token, _ = response
        scopes = str(token.get("scope") or "").split()
        owner = grant.request.user
        if "openid" not in scopes or not isinstance(owner, ResourceOwner):
            return token
        token["id_token"] = mint_id_token(
            grant_context(grant), grant.request.client.config, owner.user,
            nonce=owner.nonce, auth_time=owner.auth_time, session_id=owner.session_id,
            scopes=scopes, access_token=token["access_token"])
        return token
