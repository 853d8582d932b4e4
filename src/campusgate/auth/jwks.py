"""Verification keys by key id: JSON Web Key Sets fetched from a URL (RFC 7517 section 5).

A :class:`KeySource` answers "which key has this ``kid``, for this ``alg``" without
waiting -- a key, :data:`FETCH` (the caller should ``await refresh()`` and ask
again), or a sentence saying why there is none.  Its ``generation`` changes whenever
the keys change, so whoever caches verified tokens can tell that a key may have been
withdrawn.

- :class:`StaticKeys`: a fixed set (the identity provider's own keys, tests).
- :class:`JwksCache`: a set fetched from a ``jwks_uri`` and kept.  It is fetched on
  first use, again when it is older than ``max_age``, and again when a token names a
  ``kid`` it does not hold (a key rotation, RFC 7517 section 4.5) -- but never twice
  within ``refetch_interval``, so tokens with made-up ``kid`` values cannot make the
  gateway hammer the issuer.  When a fetch fails the last good set stays in use.

:func:`parse_jwks` is the sans-IO part; the cache's one I/O call is its ``fetch``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from campusgate.auth.jwt_verify import KEY_TYPES

if TYPE_CHECKING:
    from campusgate.plugins.base import PluginResources

__all__ = [
    "FETCH",
    "Fetch",
    "JwksCache",
    "JwksError",
    "KeyAnswer",
    "KeySource",
    "StaticKeys",
    "fetch_document",
    "parse_jwks",
    "shared_jwks",
]

log = logging.getLogger("campusgate.auth.jwks")

#: Largest key set document accepted.
MAX_DOCUMENT = 512 * 1024
#: Curves of OKP keys that sign (RFC 8037 section 2); X25519/X448 do not.
_SIGNING_CURVES = frozenset({"Ed25519", "Ed448"})
#: Private key members (RFC 7518 sections 6.2.2, 6.3.2; RFC 8037 section 2): a
#: published set should not have them, and verification never needs them.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


class Fetch:
    """The type of :data:`FETCH`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FETCH"


#: :meth:`KeySource.lookup` returns this when the keys must be fetched first.
FETCH: Final = Fetch()

#: A key, FETCH, or why there is no key.
KeyAnswer = Key | Fetch | str


class JwksError(ValueError):
    """A key set document that cannot be used, or could not be fetched."""


class KeySource(Protocol):
    """Where the verification keys of one issuer come from."""

    #: Changes whenever the set of keys changes.
    generation: int

    def lookup(self, kid: str | None, alg: str, may_fetch: bool = True) -> KeyAnswer:
        """The key for (``kid``, ``alg``), :data:`FETCH` (only if ``may_fetch``), or
        why there is none."""
        ...

    async def refresh(self) -> None: ...


def _fits(key: Key, alg: str) -> bool:
    key_alg = key.get("alg")
    return key.key_type == KEY_TYPES.get(alg) and (key_alg is None or key_alg == alg)


def pick_key(keys: Mapping[str, list[Key]], kid: str | None, alg: str) -> Key | str | None:
    """The key for (``kid``, ``alg``); a reason when the set cannot serve the token;
    None when ``kid`` is not in the set at all."""
    if kid is None:
        fitting = [k for group in keys.values() for k in group if _fits(k, alg)]
        if len(fitting) == 1:
            return fitting[0]
        return "the token has no kid and the key set does not have exactly one key for it"
    group = keys.get(kid)
    if group is None:
        return None
    return next((k for k in group if _fits(k, alg)),
                f"the key {kid!r} is not a {alg} key")


def parse_jwks(document: bytes) -> dict[str, list[Key]]:
    """The signing keys of a JWK Set document, by ``kid`` (RFC 7517 section 5).

    Keys that are not for signatures (``use`` other than ``sig``, ``key_ops`` without
    ``verify``), symmetric keys (a published ``oct`` key is no secret), keys of a type
    we do not know, and keys that do not parse are skipped (section 5 asks for this
    for unknown types).  A key without ``kid`` gets its RFC 7638 thumbprint.
    """
    try:
        data = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwksError("the key set is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError('the key set has no "keys" array')
    keys: dict[str, list[Key]] = {}
    for item in data["keys"]:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        if item.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if item.get("kty") == "OKP" and item.get("crv") not in _SIGNING_CURVES:
            continue
        ops = item.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        public = {k: v for k, v in item.items() if k not in _PRIVATE_MEMBERS}
        try:
            key = JWKRegistry.import_key(public)
            key.ensure_kid()
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        keys.setdefault(str(key.kid), []).append(key)
    if not keys:
        raise JwksError("the key set has no usable signing keys")
    return keys


class StaticKeys:
    """A key set that does not change (``generation`` stays 0)."""

    generation = 0

    def __init__(self, keys: Mapping[str, list[Key]]) -> None:
        self.keys = dict(keys)

    @classmethod
    def of(cls, *keys: Key) -> StaticKeys:
        grouped: dict[str, list[Key]] = {}
        for key in keys:
            key.ensure_kid()
            grouped.setdefault(str(key.kid), []).append(key)
        return cls(grouped)

    def lookup(self, kid: str | None, alg: str, may_fetch: bool = True) -> KeyAnswer:
        found = pick_key(self.keys, kid, alg)
        return f"no key {kid!r} in the key set" if found is None else found

    async def refresh(self) -> None:
        return None


Fetcher = Callable[[str, float], Awaitable[bytes]]


async def fetch_document(uri: str, time_limit: float,
                         client: httpx.AsyncClient | None = None) -> bytes:
    """GET ``uri`` and return its body (200 only, at most :data:`MAX_DOCUMENT` bytes),
    with ``client`` (a long-lived one the caller keeps) or, without, one of its own."""
    if client is None:
        async with httpx.AsyncClient() as own:
            return await fetch_document(uri, time_limit, own)
    headers = {"accept": "application/jwk-set+json, application/json"}
    async with client.stream("GET", uri, headers=headers, timeout=time_limit) as response:
        if response.status_code != 200:
            raise JwksError(f"the key set URL answered {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT:
                raise JwksError("the key set document is too large")
        return bytes(body)


class JwksCache:
    """The key set at ``uri``, fetched when needed and kept (see the module docstring)."""

    def __init__(self, uri: str, *, refetch_interval: float = 30.0, max_age: float = 300.0,
                 timeout: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 fetch: Fetcher = fetch_document) -> None:
        self.uri = uri
        self.refetch_interval = refetch_interval
        self.max_age = max_age
        self.timeout = timeout
        self.clock = clock
        self.fetch = fetch
        self.keys: dict[str, list[Key]] | None = None
        self.generation = 0
        self.fetches = 0
        self.problem: str | None = None
        self._fetched_at = -float("inf")
        self._attempted_at = -float("inf")
        self._fingerprint: dict[str, list[str]] = {}
        self._lock = asyncio.Lock()

    def _may_fetch(self, now: float) -> bool:
        return now - self._attempted_at >= self.refetch_interval

    def lookup(self, kid: str | None, alg: str, may_fetch: bool = True) -> KeyAnswer:
        now = self.clock()
        may_fetch = may_fetch and self._may_fetch(now)
        if self.keys is None:
            if may_fetch:
                return FETCH
            return self.problem or "the issuer's key set is not available"
        if may_fetch and now - self._fetched_at >= self.max_age:
            return FETCH
        found = pick_key(self.keys, kid, alg)
        if found is not None:
            return found
        if may_fetch:
            return FETCH
        return f"no key {kid!r} in the issuer's key set"

    async def refresh(self) -> None:
        """Fetch the set unless it was tried within ``refetch_interval``; concurrent
        callers share one fetch.  Failures are logged and leave the old set in use."""
        async with self._lock:
            now = self.clock()
            if not self._may_fetch(now):
                return
            self._attempted_at = now
            self.fetches += 1
            try:
                keys = parse_jwks(await self.fetch(self.uri, self.timeout))
            except (httpx.HTTPError, JwksError) as exc:
                reason = str(exc) or type(exc).__name__
                self.problem = f"the issuer's key set could not be fetched ({reason})"
                log.warning("JWKS %s: %s%s", self.uri, reason,
                            "; keeping the last good key set" if self.keys else "")
                return
            fingerprint = {kid: [json.dumps(k.as_dict(private=False), sort_keys=True)
                                 for k in group] for kid, group in keys.items()}
            if fingerprint != self._fingerprint:
                self.generation += 1
                self._fingerprint = fingerprint
            self.keys = keys
            self._fetched_at = now
            self.problem = None


def shared_jwks(resources: PluginResources, uri: str) -> JwksCache:
    """The worker's cache of the key set at ``uri``: shared by every plugin that names
    it and kept across config reloads."""
    cache: JwksCache = resources.cache(f"jwks:{uri}", lambda: JwksCache(uri))
    return cache
