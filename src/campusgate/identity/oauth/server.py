"""campusgate's Authlib authorization server: the framework integration.

Authlib's ``AuthorizationServer`` (RFC 6749) is framework-neutral; a framework
supplies how requests come in and responses go out, where clients are found and
how tokens are made and kept.  Here:

- **Requests**: an :class:`HttpRequest` of plain values (method, URL, headers,
  parameters in order -- repeated names kept, so they can be refused), read from
  Starlette by :func:`read_form`, becomes Authlib's ``OAuth2Request``.
- **Responses**: ``(status, body, headers)`` becomes a Starlette response; Authlib's
  token and error answers already carry ``Cache-Control: no-store`` and
  ``Pragma: no-cache``.
- **Clients** come from the config revision the server was built for.
- **Tokens**: the default token generator mints access tokens with
  ``identity/tokens.py`` (JWT or opaque, per client; opaque ones are stored at once)
  and draws refresh tokens; ``save_token`` keeps a refresh token in its family.
- **Grants**: authorization_code (with PKCE, the OpenID Connect parameters and ID
  tokens), refresh_token (rotation; ID tokens), client_credentials.  No implicit and
  no password grant: ``response_type=token`` is ``unsupported_response_type``,
  ``grant_type=password`` ``unsupported_grant_type``.
- **Client authentication**: ``oauth/client_auth.py``.

Authlib is synchronous.  Endpoints read the request on the event loop, then run the
server on the context's threads (``ctx.run_sync``); grants reach the async stores
with ``ctx.call``.  One server per context and config revision: :func:`oauth_server`.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AuthorizationServer,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped]
    InvalidRequestError,
    UnsupportedResponseTypeError,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from campusgate.config.identity import STANDARD_SCOPES, IdentityClient, IdentityConfig
from campusgate.identity.oauth.client_auth import ClientAuthenticator, JwksCache, PrivateKeyJWT
from campusgate.identity.oauth.clients import OAuthClient
from campusgate.identity.oauth.grants import IdTokenExtension, ResourceOwner
from campusgate.identity.oauth.grants.authorization_code import (
    PKCE,
    AuthorizationCodeGrant,
    AuthorizationParameters,
)
from campusgate.identity.oauth.grants.client_credentials import ClientCredentialsGrant
from campusgate.identity.oauth.grants.refresh_token import RefreshTokenGrant
from campusgate.identity.tokens import REFRESH_PREFIX, mint_access_token, store_opaque

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext

__all__ = [
    "FORM_TYPE",
    "MAX_FORM_BYTES",
    "HttpRequest",
    "IdentityServer",
    "TokenRequest",
    "authenticate_client",
    "oauth_server",
    "read_form",
    "read_token_request",
]

log = logging.getLogger("campusgate.identity")

FORM_TYPE = "application/x-www-form-urlencoded"
#: A token or introspection request is a few hundred bytes; refuse anything huge.
MAX_FORM_BYTES = 64 * 1024
#: Where a context keeps its server (see :func:`oauth_server`).


@dataclass(frozen=True)
class HttpRequest:
    """What Authlib needs of an HTTP request, as plain values."""

    method: str
    #: The endpoint's URL (from the issuer, not from the Host header).
    uri: str
    headers: Mapping[str, str]
    #: Query or form parameters in order, repeated names kept.
    params: tuple[tuple[str, str], ...]


async def read_form(request: Request, uri: str) -> HttpRequest:
    """A form-encoded POST body as an :class:`HttpRequest` (RFC 6749 3.2: parameters
    form-encoded, none repeated).  ``invalid_request`` for anything else."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise InvalidRequestError(f"The request body must be {FORM_TYPE}.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequestError("The request body is too large.")
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                           strict_parsing=bool(body), max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequestError("The request body is not valid form data.") from exc
    repeated = sorted(name for name, n in Counter(n for n, _ in params).items() if n > 1)
    if repeated:
        raise InvalidRequestError(f"Repeated parameter: {', '.join(repeated)}.")
    return HttpRequest(request.method, uri, request.headers, tuple(params))


class ParamsPayload(OAuth2Payload):  # type: ignore[misc]
    """Request parameters: the first value of each name, and all of them."""

    def __init__(self, params: tuple[tuple[str, str], ...]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in params:
            self._data.setdefault(name, value)
            self._datalist[name].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class CampusgateRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(http.method, http.uri, headers=http.headers)
        self.payload = ParamsPayload(http.params)

    @property
    def args(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


class _JsonPayload(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, Any]:
        return self._data


class IdentityServer(AuthorizationServer):  # type: ignore[misc]
    """The authorization server of one identity context and config revision."""

    def __init__(self, ctx: IdentityContext, config: IdentityConfig) -> None:
        super().__init__(scopes_supported=[*STANDARD_SCOPES, *(s.name for s in config.scopes)])
        self.ctx = ctx
        self.config = config
        self._clients = {c.client_id: OAuthClient(c, ctx.keyring) for c in config.clients}
        self._client_auth = ClientAuthenticator(self.query_client)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(ctx, JwksCache()))
        self.register_token_generator("default", self._bearer_token)
        id_tokens = IdTokenExtension()
        self.register_grant(AuthorizationCodeGrant,
                            [PKCE(), AuthorizationParameters(), id_tokens])
        self.register_grant(RefreshTokenGrant, [id_tokens])
        self.register_grant(ClientCredentialsGrant)

    # ------------------------------------------------------------ framework integration
    def query_client(self, client_id: str | None) -> OAuthClient | None:
        return self._clients.get(client_id) if client_id else None

    def create_oauth2_request(self, request: HttpRequest | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return CampusgateRequest(request)

    def create_json_request(self, request: HttpRequest) -> JsonRequest:
        json_request = JsonRequest(request.method, request.uri, request.headers)
        json_request.payload = _JsonPayload(dict(request.params))
        return json_request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]
                        ) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body or b"", status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_authenticate_client":
            log.debug("identity: client %s authenticated", kwargs.get("client"))

    def get_authorization_grant(self, request: OAuth2Request) -> Any:
        """Authlib's, with a missing ``response_type`` called what it is."""
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as exc:
            if request.payload.response_type:
                raise
            raise InvalidRequestError("Missing 'response_type' in request.",
                                      redirect_uri=exc.redirect_uri) from exc

    def get_token_grant(self, request: OAuth2Request) -> Any:
        """Authlib's, with a missing ``grant_type`` called what it is."""
        if not request.payload.grant_type:
            raise InvalidRequestError("Missing 'grant_type' in request.")
        return super().get_token_grant(request)

    # ------------------------------------------------------------ tokens
    def _bearer_token(self, grant_type: str, client: OAuthClient,
                      user: ResourceOwner | None = None, scope: str | None = None,
                      expires_in: int | None = None, include_refresh_token: bool = True,
                      ) -> dict[str, Any]:
        """The token response body (RFC 6749 5.1); the access token usable at once."""
        scope = scope or ""
        token, info = mint_access_token(
            self.ctx, client.config, user_id=user.user.id if user else None, scope=scope,
            grant_id=user.grant.id if user else None, auth_time=user.auth_time if user else None)
        if not info.jwt:
            self.ctx.call(store_opaque(self.ctx, token, info))
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer",
                                "expires_in": info.expires_at - info.issued_at, "scope": scope}
        if include_refresh_token and user is not None:
            body["refresh_token"] = REFRESH_PREFIX + secrets.token_urlsafe(32)
        return body

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Keep a new refresh token in its family (by hash, in the directory)."""
        refresh = token.get("refresh_token")
        owner = request.user
        if refresh is None or not isinstance(owner, ResourceOwner):
            return
        client: IdentityClient = request.client.config
        now = self.ctx.now()
        self.ctx.call(self.ctx.directory.save_refresh_token(
            refresh, owner.grant, now, now + client.refresh_token_lifetime))


def oauth_server(ctx: IdentityContext) -> IdentityServer:
    """The context's server, built on first use and again after a config change.

    Call it on the event loop (not from a grant thread)."""
    server = ctx.oauth_server
    if not isinstance(server, IdentityServer) or server.config is not ctx.config:
        server = ctx.oauth_server = IdentityServer(ctx, ctx.config)
    return server


async def authenticate_client(ctx: IdentityContext, http: HttpRequest,
                              endpoint: str) -> IdentityClient:
    """The client a request to ``endpoint`` (``"token"``, ``"revocation"``,
    ``"introspection"``) authenticates as; raises an ``OAuth2Error``
    (``invalid_client``, 401, or ``invalid_request``).  For the endpoints besides the
    token endpoint (RFC 7009 2.1, RFC 7662 2.1)."""
    server = oauth_server(ctx)
    request = server.create_oauth2_request(http)
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    client: OAuthClient = await ctx.run_sync(server.authenticate_client, request, methods,
                                             endpoint)
    return client.config


@dataclass(frozen=True)
class TokenRequest:
    """A request about one token by an authenticated client (RFC 7009 2.1, RFC 7662
    2.1): ``token`` and an optional ``token_type_hint``."""

    client: IdentityClient
    token: str
    hint: str | None


async def read_token_request(ctx: IdentityContext, request: Request, path: str,
                             endpoint: str) -> TokenRequest:
    """Read and authenticate a revocation or introspection request; raises an
    ``OAuth2Error``."""
    http = await read_form(request, ctx.url(path))
    form = dict(http.params)
    client = await authenticate_client(ctx, http, endpoint)
    token = form.get("token")
    if not token:
        raise InvalidRequestError(description="the token parameter is required")
    return TokenRequest(client, token, form.get("token_type_hint"))
