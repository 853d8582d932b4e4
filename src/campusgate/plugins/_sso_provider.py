"""The ``sso`` plugin as an OpenID Connect relying party: discovery, the authorization
request, the code exchange and the ID token check.

- Discovery (OpenID Connect Discovery 1.0 section 4): ``{issuer}/.well-known/
  openid-configuration``, whose ``issuer`` must be the configured one exactly
  (section 4.3).  Kept for an hour, per worker and across reloads; a failed fetch
  is not retried within :data:`RETRY_AFTER` seconds, so a provider that is down is
  not hammered by every browser that arrives.
- The authorization request (OIDC Core 3.1.2.1) is a code flow with ``state``,
  ``nonce`` and PKCE S256 (RFC 7636), as RFC 9700 section 2.1.1 asks of every client.
- The code exchange (RFC 6749 section 4.1.3) authenticates with
  ``client_secret_basic`` unless the provider offers only ``client_secret_post``.
- The ID token check (OIDC Core 3.1.3.7): signature with the provider's JWK Set
  (:mod:`campusgate.auth.jwks`), an asymmetric ``alg``, ``iss``, ``aud`` (and ``azp``
  when there are several audiences), ``exp``/``iat``, ``nonce``.

Two kinds of failure, kept apart as h11 keeps local and remote errors:
:class:`ProviderUnavailable` (down, slow, 429, 5xx, nonsense: a 503, try later) and
:class:`SignInFailed` (this sign-in cannot be accepted: a refused code, an ID token
that does not verify).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote_plus, urlencode

import httpx

from campusgate.auth.jwks import Fetch, KeySource
from campusgate.auth.jwt_verify import (
    ASYMMETRIC_ALGORITHMS,
    ClaimsPolicy,
    TokenError,
    allowed_algorithm,
    check_claims,
    parse_token,
    verify_signature,
)

__all__ = ["Discovery", "ProviderMetadata", "ProviderUnavailable", "SignInFailed",
           "authorization_url", "exchange_code", "pkce_pair", "verify_id_token"]

#: Seconds the discovery document is kept.
MAX_AGE: Final = 3600.0
#: Seconds between two attempts after a failed discovery fetch.
RETRY_AFTER: Final = 5.0
#: Largest answer read from the provider.
MAX_ANSWER: Final = 256 * 1024


class ProviderUnavailable(Exception):
    """The provider did not give a usable answer; the message names why (for the log
    and the 503 page; it never holds a secret)."""


class SignInFailed(Exception):
    """This sign-in cannot be accepted; the message is safe to show the user."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the plugin needs of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None
    #: ``basic`` or ``post``: how the client authenticates at the token endpoint.
    token_auth: str = "basic"

    @classmethod
    def from_document(cls, data: Any, issuer: str) -> ProviderMetadata:
        if not isinstance(data, dict):
            raise ProviderUnavailable("the discovery document is not a JSON object")
        if data.get("issuer") != issuer:
            raise ProviderUnavailable(f"the discovery document names issuer "
                                      f"{data.get('issuer')!r}, not {issuer!r}")
        urls = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = data.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise ProviderUnavailable(f"the discovery document has no usable {name}")
            urls[name] = value
        end_session = data.get("end_session_endpoint")
        methods = data.get("token_endpoint_auth_methods_supported")
        post_only = (isinstance(methods, list) and "client_secret_post" in methods
                     and "client_secret_basic" not in methods)
        return cls(issuer, urls["authorization_endpoint"], urls["token_endpoint"],
                   urls["jwks_uri"], end_session if isinstance(end_session, str) else None,
                   "post" if post_only else "basic")


async def _read(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER:
            raise ProviderUnavailable("the provider's answer is too large")
    return bytes(body)


async def _call(client: httpx.AsyncClient, what: str, method: str, url: str,
                time_limit: float, **kwargs: Any) -> tuple[int, Any]:
    """One call to the provider: (status, JSON body); ProviderUnavailable when it
    cannot be reached, is slow, is rate limiting or failing (429, 5xx), or does not
    answer JSON."""
    try:
        async with client.stream(method, url, timeout=time_limit, **kwargs) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise ProviderUnavailable(f"the {what} answered {status}")
            body = await _read(response)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"the {what} did not answer within {time_limit:g}s") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(
            f"the {what} could not be reached ({type(exc).__name__})") from exc
    try:
        return status, json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderUnavailable(f"the {what} answered {status} without JSON") from exc


class Discovery:
    """One provider's metadata, fetched when needed and kept (see the module docstring)."""

    def __init__(self, issuer: str, client: httpx.AsyncClient, time_limit: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self.url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.client = client
        self.time_limit = time_limit
        self.clock = clock
        self.metadata: ProviderMetadata | None = None
        self.problem: str | None = None
        self._fetched_at = -MAX_AGE
        self._failed_at = -RETRY_AFTER
        self._lock = asyncio.Lock()

    def current(self) -> ProviderMetadata | None:
        """The metadata if it is fresh (no I/O); None when :meth:`get` must fetch."""
        if self.metadata is not None and self.clock() - self._fetched_at < MAX_AGE:
            return self.metadata
        return None

    async def get(self) -> ProviderMetadata:
        async with self._lock:
            now = self.clock()
            if self.metadata is not None and now - self._fetched_at < MAX_AGE:
                return self.metadata
            if now - self._failed_at < RETRY_AFTER:
                if self.metadata is not None:
                    return self.metadata  # stale beats nothing while the provider is down
                raise ProviderUnavailable(self.problem or "the provider is unavailable")
            try:
                status, data = await _call(self.client, "discovery document", "GET",
                                           self.url, self.time_limit,
                                           headers={"accept": "application/json"})
                if status != 200:
                    raise ProviderUnavailable(f"the discovery document answered {status}")
                self.metadata = ProviderMetadata.from_document(data, self.issuer)
            except ProviderUnavailable as exc:
                self._failed_at = now
                self.problem = str(exc)
                if self.metadata is not None:
                    return self.metadata
                raise
            self._fetched_at = now
            return self.metadata


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 section 4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(meta: ProviderMetadata, client_id: str, redirect_uri: str,
                      scopes: Sequence[str], state: str, nonce: str, challenge: str) -> str:
    """The authorization request (OIDC Core 3.1.2.1, RFC 7636 section 4.3)."""
    query = urlencode({"response_type": "code", "client_id": client_id,
                       "redirect_uri": redirect_uri, "scope": " ".join(scopes),
                       "state": state, "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    separator = "&" if "?" in meta.authorization_endpoint else "?"
    return meta.authorization_endpoint + separator + query


async def exchange_code(client: httpx.AsyncClient, meta: ProviderMetadata, client_id: str,
                        client_secret: str, code: str, redirect_uri: str, verifier: str,
                        time_limit: float) -> dict[str, Any]:
    """The token response for ``code`` (RFC 6749 sections 4.1.3-4.1.4)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    headers = {"accept": "application/json",
               "content-type": "application/x-www-form-urlencoded"}
    if meta.token_auth == "post":
        form.update(client_id=client_id, client_secret=client_secret)
    else:  # RFC 6749 section 2.3.1: form-encode each part before joining
        userpass = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(userpass).decode("ascii")
    status, data = await _call(client, "token endpoint", "POST", meta.token_endpoint,
                               time_limit, content=urlencode(form).encode(), headers=headers)
    if status != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        if status in (400, 401) and isinstance(error, str):
            raise SignInFailed(f"the provider refused the sign-in ({error[:60]})")
        raise ProviderUnavailable(f"the token endpoint answered {status}")
    if not isinstance(data.get("id_token"), str):
        raise SignInFailed("the provider sent no ID token (is openid among the scopes?)")
    return data


async def verify_id_token(token: str, keys: KeySource, issuer: str, client_id: str,
                          nonce: str, now: float, leeway: float = 60.0) -> dict[str, Any]:
    """The claims of a valid ID token (OIDC Core 3.1.3.7); SignInFailed otherwise."""
    try:
        parsed = parse_token(token.encode("ascii", "replace"))
        allowed_algorithm(parsed, ASYMMETRIC_ALGORITHMS)
        key = keys.lookup(parsed.kid, parsed.alg)
        if isinstance(key, Fetch):
            await keys.refresh()
            key = keys.lookup(parsed.kid, parsed.alg, may_fetch=False)
        if isinstance(key, Fetch | str):
            raise TokenError(key if isinstance(key, str) else "no key")
        verify_signature(parsed, key)
        policy = ClaimsPolicy(issuer, frozenset({client_id}), frozenset({"exp", "iat"}),
                              leeway)
        check_claims(parsed.claims, policy, now)
    except TokenError as exc:
        raise SignInFailed(f"the ID token is not valid: {exc}") from exc
    claims = parsed.claims
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise SignInFailed("the ID token is not valid: azp does not name this client")
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SignInFailed("the ID token is not valid: its nonce is not this sign-in's")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SignInFailed("the ID token is not valid: it has no sub")
    return claims
