"""The ``sso`` plugin as an OpenID Connect relying party: discovery, the authorization
request, the code exchange and the ID token check.

- Discovery (OpenID Connect Discovery 1.0 section 4): ``{issuer}/.well-known/
  openid-configuration``, fetched and checked by :mod:`campusgate.auth.discovery`
  (its ``issuer`` must be the configured one exactly, section 4.3).  Kept for an
  hour, per worker and across reloads; a failed fetch is not tried again within
  :data:`RETRY_AFTER` seconds, so a provider that is down is not hammered by every
  browser that arrives (:mod:`campusgate.auth.provider_cache`, shared with the
  login sources).
- The authorization request (OIDC Core 3.1.2.1) is a code flow with ``state``,
  ``nonce`` and PKCE S256 (:mod:`campusgate.auth.pkce`), as RFC 9700 section 2.1.1
  asks of every client.
- The code exchange (RFC 6749 section 4.1.3, :mod:`campusgate.auth.token_request`)
  authenticates with ``client_secret_basic`` unless the provider offers only
  ``client_secret_post``.  A 429, a 5xx, a timeout or a refused connection is tried
  again with jittered backoff (:mod:`campusgate.auth.retry`, :data:`EXCHANGE_RETRIES`),
  within :data:`EXCHANGE_GRACE` seconds beyond the configured ``timeout`` in all.
- The ID token check is :func:`campusgate.auth.id_token.verify_id_token` (OIDC Core
  3.1.3.7), its TokenError told to the user as :class:`SignInFailed`.

Two kinds of failure, kept apart as h11 keeps local and remote errors:
:class:`ProviderUnavailable` (down, slow, 429, 5xx, nonsense: a 503, try later) and
:class:`SignInFailed` (this sign-in cannot be accepted: a refused code, an ID token
that does not verify).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from campusgate.auth import authorization_request, id_token, retry
from campusgate.auth.discovery import (
    DiscoveryError,
    fetch_document,
    provider_urls,
    token_auth_method,
)
from campusgate.auth.jwks import KeySource
from campusgate.auth.jwt_verify import TokenError
from campusgate.auth.pkce import pkce_pair
from campusgate.auth.provider_cache import ProviderCache
from campusgate.auth.token_request import CLIENT_SECRET_BASIC, code_exchange_request

__all__ = ["Discovery", "ProviderMetadata", "ProviderUnavailable", "SignInFailed",
           "authorization_url", "exchange_code", "pkce_pair", "verify_id_token"]

#: Seconds the discovery document is kept.
MAX_AGE: Final = 3600.0
#: Seconds between two attempts after a failed discovery fetch.
RETRY_AFTER: Final = 5.0
#: Largest answer read from the provider.
MAX_ANSWER: Final = 256 * 1024
#: The code exchange's retries: a person waits at most ~2 s of backoff.
EXCHANGE_RETRIES: Final = retry.RetryPolicy(attempts=3, base=0.25, cap=1.0, budget=2.0)
#: Seconds the whole code exchange may take beyond one attempt's ``timeout``.
EXCHANGE_GRACE: Final = 3.0
#: Discovery is tried once per :data:`RETRY_AFTER` (the wait is between browsers).
_DISCOVERY_ONCE: Final = retry.RetryPolicy(attempts=1)


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
    #: ``client_secret_basic`` or ``client_secret_post``: how the client
    #: authenticates at the token endpoint.
    token_auth: str = CLIENT_SECRET_BASIC

    @classmethod
    def from_document(cls, data: Any, issuer: str) -> ProviderMetadata:
        try:
            urls = provider_urls(data, issuer)
        except DiscoveryError as exc:
            raise ProviderUnavailable(str(exc)) from None
        return cls(issuer, urls["authorization_endpoint"], urls["token_endpoint"],
                   urls["jwks_uri"], urls.get("end_session_endpoint"),
                   token_auth_method(data))


async def _call(client: httpx.AsyncClient, what: str, request: httpx.Request,
                policy: retry.RetryPolicy) -> tuple[int, Any]:
    """A call to the provider, tried again per ``policy``: (status, JSON body);
    ProviderUnavailable when it cannot be reached, is slow, is rate limiting or
    failing (429, 5xx) after the retries, or does not answer JSON."""
    try:
        response = await retry.send(client, request, policy, limit=MAX_ANSWER)
    except retry.Unavailable as exc:
        raise ProviderUnavailable(f"the {what} {exc}") from None
    except retry.AnswerTooLarge:
        raise ProviderUnavailable("the provider's answer is too large") from None
    try:
        return response.status_code, json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise ProviderUnavailable(
            f"the {what} answered {response.status_code} without JSON") from None


class Discovery:
    """One provider's metadata, fetched when needed and kept
    (:class:`~campusgate.auth.provider_cache.ProviderCache`: for :data:`MAX_AGE`, a
    failure not tried again within :data:`RETRY_AFTER`)."""

    def __init__(self, issuer: str, client: httpx.AsyncClient, time_limit: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self.url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.client = client
        self.time_limit = time_limit
        self.cache = ProviderCache(self._fetch, ProviderUnavailable, max_age=MAX_AGE,
                                   retry_after=RETRY_AFTER, clock=clock)

    def current(self) -> ProviderMetadata | None:
        """The metadata if it is fresh (no I/O); None when :meth:`get` must fetch."""
        return self.cache.current()

    async def get(self) -> ProviderMetadata:
        return await self.cache.get()

    async def _fetch(self) -> ProviderMetadata:
        try:
            document = await fetch_document(self.client, self.url,
                                            time_limit=self.time_limit,
                                            policy=_DISCOVERY_ONCE)
        except retry.Unavailable as exc:
            raise ProviderUnavailable(f"the discovery document {exc}") from None
        except DiscoveryError as exc:
            raise ProviderUnavailable(str(exc)) from None
        return ProviderMetadata.from_document(document, self.issuer)


def authorization_url(meta: ProviderMetadata, client_id: str, redirect_uri: str,
                      scopes: Sequence[str], state: str, nonce: str, challenge: str) -> str:
    """The authorization request (:mod:`campusgate.auth.authorization_request`)."""
    return authorization_request.authorization_url(
        meta.authorization_endpoint, client_id=client_id, redirect_uri=redirect_uri,
        scopes=scopes, state=state, nonce=nonce, challenge=challenge)


async def exchange_code(client: httpx.AsyncClient, meta: ProviderMetadata, client_id: str,
                        client_secret: str, code: str, redirect_uri: str, verifier: str,
                        time_limit: float) -> dict[str, Any]:
    """The token response for ``code`` (RFC 6749 sections 4.1.3-4.1.4; the request is
    :mod:`campusgate.auth.token_request`'s)."""
    request = code_exchange_request(
        client, meta.token_endpoint, client_id=client_id, client_secret=client_secret,
        auth_method=meta.token_auth, code=code, redirect_uri=redirect_uri,
        verifier=verifier, timeout=time_limit)
    try:
        async with asyncio.timeout(time_limit + EXCHANGE_GRACE):
            status, data = await _call(client, "token endpoint", request, EXCHANGE_RETRIES)
    except TimeoutError:
        raise ProviderUnavailable(f"the token endpoint did not answer within "
                                  f"{time_limit + EXCHANGE_GRACE:g}s") from None
    if status != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        if status in (400, 401) and isinstance(error, str):
            raise SignInFailed(f"the provider refused the sign-in ({error[:60]})")
        raise ProviderUnavailable(f"the token endpoint answered {status}")
    if not isinstance(data.get("id_token"), str):
        raise SignInFailed("the provider sent no ID token (is openid among the scopes?)")
    return data


async def verify_id_token(token: str, keys: KeySource, issuer: str, client_id: str,
                          nonce: str, now: float, leeway: float = id_token.LEEWAY,
                          ) -> dict[str, Any]:
    """The claims of a valid ID token (:mod:`campusgate.auth.id_token`); SignInFailed
    otherwise."""
    try:
        return await id_token.verify_id_token(token, keys, issuer=issuer,
                                              client_id=client_id, nonce=nonce, now=now,
                                              leeway=leeway)
    except TokenError as exc:
        raise SignInFailed(f"the ID token is not valid: {exc}") from exc
