"""The authorization code grant (RFC 6749 4.1) with PKCE (RFC 7636), as RFC 9700
wants it.

Authlib's ``AuthorizationCodeGrant`` runs both halves; this module supplies what it
leaves to the server, and the policy:

- **Authorization request** (validated by Authlib, ``oauth/authorization.py`` turns
  the result into an ``AuthorizationRequest``): :class:`PKCE` requires a
  ``code_challenge`` from public clients and accepts ``plain`` only from a
  confidential client that opted in (``allow_pkce_plain``; RFC 9700 2.1.1);
  :class:`AuthorizationParameters` checks the OpenID Connect parameters
  (``response_mode``, ``prompt``, ``max_age``, ``request``) and refuses repeated ones.
- **The code** is ``secrets.token_urlsafe(32)``, kept in the ephemeral store (kind
  ``code``, under its SHA-256) for ``code_lifetime`` seconds as a :class:`CodeRecord`,
  bound to the client and the redirect URI (RFC 6749 4.1.3).
- **Redemption**: single use.  The first redemption claims ``code-used`` (SET NX,
  600 s) with the id of the grant it creates; any other redemption of the same code
  -- concurrent or later -- fails with ``invalid_grant`` and revokes that grant and
  so every token issued from it (RFC 6749 4.1.2, RFC 9700 4.2.4).  A
  ``code_verifier`` for a code issued without a ``code_challenge`` is refused
  (``invalid_grant``, RFC 9700 4.8.2: PKCE downgrade).
- **Refresh tokens** are issued when the client has the ``refresh_token`` grant *and*
  ``offline_access`` was granted -- one rule for OAuth and OpenID Connect requests
  alike (OIDC Core 11), so a refresh token always follows from the user's consent.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped]
    InvalidGrantError,
    InvalidRequestError,
)
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oidc.core.errors import (  # type: ignore[import-untyped]
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from authlib.oidc.core.models import AuthorizationCodeMixin  # type: ignore[import-untyped]

from campusgate.identity.oauth.grants import (
    AUTH_METHODS,
    ResourceOwner,
    active_user,
    grant_context,
)
from campusgate.identity.tokens import revoke_grant, token_digest

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext
    from campusgate.identity.oauth.clients import OAuthClient

__all__ = [
    "CODE_KIND",
    "PKCE",
    "PROMPTS",
    "USED_KIND",
    "USED_TTL",
    "AuthorizationCodeGrant",
    "AuthorizationParameters",
    "CodeRecord",
    "new_code",
    "save_code",
]

CODE_KIND = "code"
USED_KIND = "code-used"
#: How long a redeemed code is remembered (longer than any code lives).
USED_TTL = 600
#: ``prompt`` values understood (OIDC Core 3.1.2.1); others are ignored.
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
#: Authorization request parameters that may appear once (RFC 6749 3.1; Authlib
#: itself checks response_type, client_id, redirect_uri, scope and state).
_SINGLE = ("nonce", "prompt", "max_age", "login_hint", "ui_locales", "response_mode",
           "code_challenge", "code_challenge_method", "display", "id_token_hint",
           "acr_values", "claims_locales", "request", "request_uri")


@dataclass(frozen=True)
class CodeRecord(AuthorizationCodeMixin):  # type: ignore[misc]
    """What an authorization code stands for, as stored under its hash."""

    code_hash: str
    client_id: str
    #: The redirect URI the code was sent to...
    redirect_uri: str
    #: ...and whether the request named it (then the token request must, RFC 6749 4.1.3).
    redirect_uri_given: bool
    scope: str
    user_id: str
    nonce: str | None
    auth_time: int
    code_challenge: str | None
    code_challenge_method: str | None
    sid: str | None
    amr: tuple[str, ...]
    expires_at: int = field(default=0)

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        del record["code_hash"]
        record["amr"] = list(self.amr)
        return record

    @classmethod
    def from_record(cls, code_hash: str, record: dict[str, Any]) -> CodeRecord:
        return cls(**{**record, "code_hash": code_hash, "amr": tuple(record["amr"])})

    # Authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri if self.redirect_uri_given else None

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_amr(self) -> list[str]:
        return list(self.amr)


def new_code() -> tuple[str, str]:
    """A fresh code and its storage key."""
    code = secrets.token_urlsafe(32)
    return code, token_digest(code)


async def save_code(ctx: IdentityContext, record: CodeRecord) -> None:
    await ctx.ephemeral.put(CODE_KIND, record.code_hash, record.as_record(),
                            max(1, record.expires_at - ctx.now()))


def _revoke_replayed(ctx: IdentityContext, code_hash: str) -> None:
    """A used code came back: revoke what its first use produced."""
    used = ctx.call(ctx.ephemeral.get(USED_KIND, code_hash))
    grant_id = used.get("grant_id") if used else None
    if isinstance(grant_id, str):
        ctx.call(revoke_grant(ctx, grant_id))


class PKCE(CodeChallenge):  # type: ignore[misc]
    """RFC 7636 with RFC 9700's policy (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        client: OAuthClient = grant.request.client
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        method = data.get("code_challenge_method") or self.DEFAULT_CODE_CHALLENGE_METHOD
        if not challenge:
            if client.public:
                raise InvalidRequestError(
                    "A public client must send a code_challenge (PKCE with S256).")
            return
        if method != "S256" and (client.public or not client.config.allow_pkce_plain):
            raise InvalidRequestError("code_challenge_method must be S256.")

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        request = grant.request
        record: CodeRecord = request.authorization_code
        if request.form.get("code_verifier") and not record.code_challenge:
            raise InvalidGrantError(
                "A code_verifier was sent, but the authorization request had no "
                "code_challenge.")
        super().validate_code_verifier(grant, result)


class AuthorizationParameters:
    """Grant extension: the OpenID Connect parameters of an authorization request."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    @staticmethod
    def validate(grant: Any, redirect_uri: str) -> None:
        payload = grant.request.payload
        repeated = [name for name in _SINGLE if len(payload.datalist.get(name, [])) > 1]
        if repeated:
            raise InvalidRequestError(f"Repeated parameter: {', '.join(repeated)}.")
        data = payload.data
        if data.get("request"):
            raise RequestNotSupportedError("Request objects are not supported.")
        if data.get("request_uri"):
            raise RequestURINotSupportedError("request_uri is not supported.")
        if data.get("response_mode", "query") != "query":
            raise InvalidRequestError("Only response_mode=query is supported.")
        prompts = set((data.get("prompt") or "").split())
        if "none" in prompts and len(prompts) > 1:
            raise InvalidRequestError("prompt=none cannot be combined with other values.")
        max_age = data.get("max_age")
        if max_age is not None and not (max_age.isascii() and max_age.isdigit()):
            raise InvalidRequestError("max_age must be a number of seconds.")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """RFC 6749 4.1 over the ephemeral store (codes) and the directory (grants)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    @property
    def ctx(self) -> IdentityContext:
        return grant_context(self)

    def query_authorization_code(self, code: str, client: OAuthClient) -> CodeRecord | None:
        ctx = self.ctx
        code_hash = token_digest(code)
        data = ctx.call(ctx.ephemeral.get(CODE_KIND, code_hash))
        if data is None:
            _revoke_replayed(ctx, code_hash)
            return None
        record = CodeRecord.from_record(code_hash, data)
        if record.client_id != client.client_id or record.expires_at <= ctx.now():
            return None
        return record

    def validate_token_request(self) -> None:
        super().validate_token_request()
        record: CodeRecord = self.request.authorization_code
        given = self.request.payload.redirect_uri
        if given is not None and given != record.redirect_uri:
            raise InvalidGrantError("Invalid 'redirect_uri' in request.")

    def authenticate_user(self, record: CodeRecord) -> ResourceOwner:
        """Spend the code, once validation has passed and before tokens are minted:
        the one redemption that claims it creates the grant; any other is a replay."""
        ctx = self.ctx
        user = active_user(ctx, record.user_id)
        grant = ctx.call(ctx.directory.create_grant(record.client_id, user.id, record.scope,
                                                    record.auth_time))
        first = ctx.call(ctx.ephemeral.claim(USED_KIND, record.code_hash, USED_TTL,
                                             {"grant_id": grant.id}))
        if not first:
            ctx.call(revoke_grant(ctx, grant.id))
            _revoke_replayed(ctx, record.code_hash)
            raise InvalidGrantError("The code has already been used.")
        return ResourceOwner(user=user, grant=grant, auth_time=record.auth_time,
                             nonce=record.nonce, session_id=record.sid)

    def delete_authorization_code(self, record: CodeRecord) -> None:
        self.ctx.call(self.ctx.ephemeral.delete(CODE_KIND, record.code_hash))

    def generate_token(self, user: ResourceOwner | None = None, scope: str | None = None,
                       grant_type: str | None = None, expires_in: int | None = None,
                       include_refresh_token: bool = True) -> dict[str, Any]:
        offline = "offline_access" in (scope or "").split()
        token: dict[str, Any] = super().generate_token(
            user=user, scope=scope, grant_type=grant_type, expires_in=expires_in,
            include_refresh_token=include_refresh_token and offline)
        return token
