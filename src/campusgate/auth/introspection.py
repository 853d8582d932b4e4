"""OAuth 2.0 Token Introspection (RFC 7662), the resource server's side.

The sans-IO part builds the request (section 2.1, with the client authenticating by
``client_secret_basic``, RFC 6749 section 2.3.1), reads the answer (section 2.2), and
says how long an answer may be remembered (section 4: not past the token's ``exp``).
:class:`Introspector` is the thin async shell that makes the call.

"The endpoint could not answer" (:class:`IntrospectionUnavailable`) is kept apart from
"the token is not active": the first is the gateway's problem (a 503), the second the
client's (a 401).
"""

from __future__ import annotations

import base64
import json
import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode

import httpx

if TYPE_CHECKING:
    from campusgate.plugins.base import PluginResources

__all__ = [
    "IntrospectionUnavailable",
    "Introspector",
    "TokenInfo",
    "cache_expiry",
    "introspection_request",
    "parse_introspection",
    "shared_http_client",
]

#: Largest introspection answer accepted.
MAX_ANSWER = 64 * 1024


class IntrospectionUnavailable(Exception):
    """The endpoint did not give a usable answer: down, slow, an error, or not RFC 7662."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known about a token: ``active`` and, when active, its members
    (``scope``, ``client_id``, ``sub``, ``exp``..., RFC 7662 section 2.2)."""

    active: bool
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def scopes(self) -> frozenset[str]:
        scope = self.claims.get("scope")
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()

    @property
    def exp(self) -> float | None:
        exp = self.claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return None
        return float(exp) if math.isfinite(exp) else None


def introspection_request(token: str, client_id: str, client_secret: str,
                          token_type_hint: str | None = None) -> tuple[dict[str, str], bytes]:
    """The headers and form body of an introspection request (RFC 7662 section 2.1).

    The client id and secret are form-encoded before they are joined and base64-encoded,
    as RFC 6749 section 2.3.1 asks."""
    userpass = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    form = {"token": token}
    if token_type_hint:
        form["token_type_hint"] = token_type_hint
    headers = {
        "authorization": "Basic " + base64.b64encode(userpass).decode("ascii"),
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
    }
    return headers, urlencode(form).encode("ascii")


def parse_introspection(status: int, body: bytes) -> TokenInfo:
    """Read an introspection answer (RFC 7662 section 2.2): a 200 with a JSON object
    whose ``active`` is a boolean.  Anything else means the endpoint is unusable."""
    if status != 200:
        raise IntrospectionUnavailable(f"the introspection endpoint answered {status}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntrospectionUnavailable("the introspection answer is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("active"), bool):
        raise IntrospectionUnavailable("the introspection answer has no boolean 'active'")
    if not data["active"]:
        return TokenInfo(False)  # nothing else about an inactive token matters
    return TokenInfo(True, MappingProxyType(data))


def cache_expiry(info: TokenInfo, now: float, cache_ttl: float,
                 negative_cache_ttl: float) -> float | None:
    """Until when ``info`` may be remembered, or None for not at all.  An active
    token is never remembered past its ``exp`` (RFC 7662 section 4)."""
    if not info.active:
        return now + negative_cache_ttl if negative_cache_ttl > 0 else None
    until = now + cache_ttl
    exp = info.exp
    if exp is not None:
        until = min(until, exp)
    return until if until > now else None


class Introspector:
    """Calls one introspection endpoint over a shared HTTP client."""

    def __init__(self, url: str, client_id: str, client_secret: str,
                 token_type_hint: str | None, time_limit: float,
                 client: httpx.AsyncClient) -> None:
        self.url = url
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_type_hint = token_type_hint
        self.time_limit = time_limit
        self.client = client

    async def introspect(self, token: str) -> TokenInfo:
        headers, body = introspection_request(token, self.client_id, self.client_secret,
                                              self.token_type_hint)
        try:
            async with self.client.stream("POST", self.url, content=body, headers=headers,
                                          timeout=self.time_limit) as response:
                answer = bytearray()
                async for chunk in response.aiter_bytes():
                    answer += chunk
                    if len(answer) > MAX_ANSWER:
                        raise IntrospectionUnavailable("the introspection answer is too large")
                status = response.status_code
        except httpx.TimeoutException as exc:
            raise IntrospectionUnavailable("the introspection endpoint timed out") from exc
        except (httpx.HTTPError, ssl.SSLError) as exc:  # a TLS 1.3 alert comes raw
            raise IntrospectionUnavailable(
                f"the introspection endpoint could not be reached ({type(exc).__name__})"
            ) from exc
        return parse_introspection(status, bytes(answer))


def shared_http_client(resources: PluginResources) -> httpx.AsyncClient:
    """The worker's HTTP client for introspection calls (pooled keep-alive connections)."""
    client: httpx.AsyncClient = resources.cache(
        "http-client:introspection",
        lambda: httpx.AsyncClient(follow_redirects=False,
                                  limits=httpx.Limits(max_keepalive_connections=32)))
    return client
