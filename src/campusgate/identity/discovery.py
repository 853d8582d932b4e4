"""How clients learn about the provider: metadata documents and the public keys.

- ``GET {issuer}/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0,
  section 4) and ``GET /.well-known/oauth-authorization-server{issuer path}``
  (RFC 8414 section 3) serve the same document: every endpoint URL is the issuer plus
  a path from ``identity/paths.py``, so the document is right behind any mount point.
- ``GET {issuer}/oauth2/jwks``: the public keys that verify ID tokens and JWT access
  tokens (RFC 7517 section 5) -- the current ones and, during a rotation's overlap,
  the retired ones whose tokens may still be valid.

The document says what the provider really does: the code flow only, PKCE S256
(``plain`` is never advertised; RFC 9700 2.1.1), ``iss`` in authorization responses
(RFC 9207), no request objects or ``claims`` parameter.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from campusgate.config.identity import GRANT_TYPES, STANDARD_SCOPES, IdentityConfig
from campusgate.identity import paths
from campusgate.identity.claims import supported_claims
from campusgate.identity.context import IdentityContext

__all__ = ["ASSERTION_ALGORITHMS", "AUTH_METHODS", "UI_LOCALES", "provider_metadata",
           "routes"]

#: Client authentication at the token and revocation endpoints (RFC 6749 2.3,
#: RFC 7523 2.2 for private_key_jwt); introspection needs a credential, so not ``none``.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
#: What client assertions (private_key_jwt) may be signed with: joserfc's recommended
#: asymmetric algorithms, which Authlib's ``JWTBearerClientAssertion`` accepts
#: (``oauth/client_auth.py``).
ASSERTION_ALGORITHMS = ("RS256", "ES256")
#: Languages of the login and consent pages.
UI_LOCALES = ("en",)
#: Well-known documents and keys may be cached this long (seconds).
CACHE_SECONDS = 300


def provider_metadata(config: IdentityConfig) -> dict[str, Any]:
    """The provider's metadata (OIDC Discovery 3 and RFC 8414 2) for ``config``."""
    issuer = config.issuer
    signing_algs = list(ASSERTION_ALGORITHMS)
    secret_methods = [m for m in AUTH_METHODS if m != "none"]
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + paths.AUTHORIZE,
        "token_endpoint": issuer + paths.TOKEN,
        "userinfo_endpoint": issuer + paths.USERINFO,
        "jwks_uri": issuer + paths.JWKS,
        "revocation_endpoint": issuer + paths.REVOKE,
        "introspection_endpoint": issuer + paths.INTROSPECT,
        "end_session_endpoint": issuer + paths.LOGOUT,
        "scopes_supported": [*STANDARD_SCOPES, *(s.name for s in config.scopes)],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": signing_algs,
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
        "introspection_endpoint_auth_methods_supported": secret_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
        "code_challenge_methods_supported": ["S256"],
        "claim_types_supported": ["normal"],
        "claims_supported": supported_claims(config.scopes),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": list(UI_LOCALES),
        "prompt_values_supported": ["none", "login", "consent"],
    }


def _cacheable(body: dict[str, Any], media_type: str = "application/json") -> Response:
    return JSONResponse(body, media_type=media_type,
                        headers={"Cache-Control": f"public, max-age={CACHE_SECONDS}"})


async def metadata(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    return _cacheable(provider_metadata(ctx.config))


async def jwks(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    await ctx.keys.refresh()  # a rotation made by another worker
    media_type = ("application/jwk-set+json"
                  if "application/jwk-set+json" in request.headers.get("accept", "")
                  else "application/json")
    return _cacheable(ctx.keys.jwks(), media_type)


def routes(issuer_path: str) -> list[Route]:
    return [
        Route(issuer_path + paths.OIDC_DISCOVERY, metadata, methods=["GET"]),
        Route(paths.AS_METADATA + issuer_path, metadata, methods=["GET"]),
        Route(issuer_path + paths.JWKS, jwks, methods=["GET"]),
    ]
