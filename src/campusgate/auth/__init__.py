"""Credential checks shared by the authentication plugins, with as little I/O as can be.

- :mod:`campusgate.auth.jwt_verify`: JWT parsing, signature and claim checks (RFC 7519),
  with no I/O, and the cache of verified tokens.
- :mod:`campusgate.auth.jwks`: verification keys by ``kid``: fixed sets and JWK Sets
  fetched from a URL (RFC 7517), cached and refreshed.
- :mod:`campusgate.auth.introspection`: the OAuth 2.0 token introspection client
  (RFC 7662) and the meaning of its answers.
- :mod:`campusgate.auth.hmac_signature`: signed HTTP requests for ``hmac-auth``.

And campusgate's own OpenID Connect relying parties (the ``sso`` plugin and the
identity provider's login sources) share:

- :mod:`campusgate.auth.discovery`: the provider's discovery document, fetched and
  checked (issuer, endpoints, size);
- :mod:`campusgate.auth.provider_cache`: what is read of the provider, kept, and read
  again with backoff after a failure;
- :mod:`campusgate.auth.authorization_request` and :mod:`campusgate.auth.pkce`: the
  code-flow request with state, nonce and PKCE S256;
- :mod:`campusgate.auth.token_request`: the code exchange request (RFC 6749 4.1.3);
- :mod:`campusgate.auth.retry`: calls with bounded backoff and full jitter;
- :mod:`campusgate.auth.id_token`: the ID token check (OIDC Core 3.1.3.7).
"""

from urllib.parse import urlsplit

__all__ = ["http_url"]


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host (a config validator)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value
