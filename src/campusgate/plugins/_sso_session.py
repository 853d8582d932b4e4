"""The ``sso`` plugin's cookies: a signed-in session and a sign-in in progress, sealed.

Both live in the browser, so checking a session costs one decrypt and no I/O.  Each is
JSON sealed with AES-256-GCM (a fresh 96-bit nonce per cookie) under a keyring subkey
of its own (``keyring.subkey("sso-cookies")``), with the cookie's *purpose* and the
plugin's *binding* (issuer, client id, cookie name) as associated data: a session
cookie cannot stand in for a state cookie, and a cookie made for one provider or
client is worthless to a route configured for another.  Tampering, truncation, a
different installation key or an expired ``exp`` all read as "no cookie".

- :class:`Session`: who signed in (the claims the plugin keeps), ``iat``/``exp``
  (absolute lifetime) and ``seen`` (for the idle timeout), and, when it fits, the ID
  token for RP-initiated logout's ``id_token_hint``.  Sealed cookies are bounded
  (:data:`MAX_COOKIE`): the ID token, then long lists are dropped to fit.
- :class:`LoginState`: the round trip of one sign-in -- ``state``, ``nonce``, PKCE
  verifier and the page to come back to -- in a short-lived cookie named after its
  state, so sign-ins in two tabs do not overwrite each other.

:func:`safe_return` keeps every "come back to" URL a path on this host (no open
redirect).  Pure code: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MAX_COOKIE",
    "CookieJar",
    "LoginState",
    "Session",
    "SessionCodec",
    "cookie_value",
    "find_cookie",
    "safe_return",
    "set_cookie",
]

#: Largest sealed cookie value (browsers keep at least 4096 bytes per cookie,
#: RFC 6265 section 6.1, name and attributes included).
MAX_COOKIE: Final = 3800
_NONCE = 12
#: Claims shortened first when a session does not fit.
_TRIMMABLE = ("class_ids", "grades", "groups", "school_ids")
#: Anything but printable ASCII (controls, spaces, non-ASCII), and the backslash that
#: some browsers read as ``/`` (``/\\host`` is ``//host`` to them).
_UNSAFE_PATH = re.compile(r"[^\x21-\x5b\x5d-\x7e]")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Seals and opens the plugin's cookies (see the module docstring)."""

    def __init__(self, key: bytes, binding: str) -> None:
        self._aead = AESGCM(key)
        self._binding = binding.encode("utf-8")

    def seal(self, purpose: str, payload: Mapping[str, Any]) -> str:
        nonce = os.urandom(_NONCE)
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        sealed = self._aead.encrypt(nonce, data, self._aad(purpose))
        return _b64(nonce + sealed)

    def open(self, purpose: str, value: str) -> dict[str, Any] | None:
        """The payload, or None if ``value`` is not a cookie this codec sealed for
        ``purpose`` (forged, altered, another key or binding, not ours at all)."""
        if not value or len(value) > MAX_COOKIE:
            return None
        try:
            raw = _unb64(value)
            data = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._aad(purpose))
            payload = json.loads(data)
        except (ValueError, binascii.Error, InvalidTag):
            return None
        return payload if isinstance(payload, dict) else None

    def _aad(self, purpose: str) -> bytes:
        return purpose.encode("ascii") + b"\x00" + self._binding


def _number(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser, as its cookie says."""

    claims: Mapping[str, Any]
    iat: float
    exp: float
    seen: float
    id_token: str | None = None

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])

    def valid_at(self, now: float, idle_timeout: float) -> bool:
        """Within its absolute lifetime and, with an idle timeout, used recently."""
        if now >= self.exp or now < self.iat - 300:
            return False
        return not idle_timeout or now - self.seen < idle_timeout

    def seal(self, codec: SessionCodec) -> str | None:
        """The cookie value, kept under :data:`MAX_COOKIE`: without the ID token, then
        with shorter lists, if need be; None when even that does not fit."""
        claims = dict(self.claims)
        attempts: list[tuple[dict[str, Any], str | None]] = [(claims, self.id_token)]
        if self.id_token:
            attempts.append((claims, None))
        for name in _TRIMMABLE:
            claims = {k: v for k, v in claims.items() if k != name}
            attempts.append((claims, None))
        for kept, id_token in attempts:
            payload: dict[str, Any] = {"c": kept, "iat": self.iat, "exp": self.exp,
                                       "seen": self.seen}
            if id_token:
                payload["idt"] = id_token
            value = codec.seal("session", payload)
            if len(value) <= MAX_COOKIE:
                return value
        return None

    @classmethod
    def open(cls, codec: SessionCodec, value: str) -> Session | None:
        payload = codec.open("session", value)
        if payload is None:
            return None
        claims = payload.get("c")
        iat, exp, seen = (_number(payload, n) for n in ("iat", "exp", "seen"))
        if (not isinstance(claims, dict) or not isinstance(claims.get("sub"), str)
                or iat is None or exp is None or seen is None):
            return None
        id_token = payload.get("idt")
        return cls(claims, iat, exp, seen, id_token if isinstance(id_token, str) else None)


@dataclass(frozen=True, slots=True)
class LoginState:
    """One sign-in in progress: what the callback must find again."""

    state: str
    nonce: str
    verifier: str
    #: Where to send the browser afterwards: a path on this host (with its query).
    return_to: str
    redirect_uri: str
    exp: float

    @property
    def cookie_suffix(self) -> str:
        """The state cookie is named after its state, one per sign-in in progress."""
        return self.state[:16]

    def seal(self, codec: SessionCodec) -> str:
        return codec.seal("login", {"s": self.state, "n": self.nonce, "v": self.verifier,
                                    "r": self.return_to, "u": self.redirect_uri,
                                    "exp": self.exp})

    @classmethod
    def open(cls, codec: SessionCodec, value: str, now: float) -> LoginState | None:
        payload = codec.open("login", value)
        if payload is None:
            return None
        parts = [payload.get(k) for k in ("s", "n", "v", "r", "u")]
        exp = _number(payload, "exp")
        if exp is None or now >= exp or not all(isinstance(p, str) for p in parts):
            return None
        state, nonce, verifier, return_to, redirect_uri = (str(p) for p in parts)
        return cls(state, nonce, verifier, return_to, redirect_uri, exp)


def safe_return(value: str | None, fallback: str) -> str:
    """``value`` if it is a path on this host (``/...``, not ``//host`` or ``/\\host``,
    printable ASCII only), else ``fallback``: a "come back to" URL is never a way
    off the site."""
    if (not value or not value.startswith("/") or value.startswith("//")
            or _UNSAFE_PATH.search(value)):
        return fallback
    return value


@dataclass(slots=True)
class CookieJar:
    """The cookies of one request's ``Cookie`` headers, by name (RFC 6265 section 5.4)."""

    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, headers: list[tuple[bytes, bytes]]) -> CookieJar:
        values: dict[str, str] = {}
        for name, value in headers:
            if name != b"cookie":
                continue
            for pair in value.decode("latin-1").split(";"):
                key, eq, val = pair.strip().partition("=")
                if eq and key not in values:
                    values[key] = val.strip().strip('"')
        return cls(values)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def find_cookie(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of cookie ``name`` in the ``Cookie`` headers, the first one found (as
    :meth:`CookieJar.parse` would give it, without parsing the others: this runs on
    every request of a protected app)."""
    prefix = name + b"="
    for header, value in headers:
        if header != b"cookie" or prefix not in value:
            continue
        for pair in value.split(b";"):
            pair = pair.strip()
            if pair.startswith(prefix):
                return pair[len(prefix):].strip().strip(b'"').decode("latin-1")
    return None


def cookie_value(header: bytes, drop: str) -> bytes:
    """A ``Cookie`` header value without the cookies named ``drop`` or starting with
    ``drop + "_s_"`` (the plugin's own, which the upstream never sees)."""
    name = drop.encode("latin-1")
    if name not in header:  # none of ours: as it came
        return header
    state = name + b"_s_"
    keep = [pair for pair in (part.strip() for part in header.split(b";"))
            if pair.partition(b"=")[0] != name and not pair.startswith(state)]
    return b"; ".join(keep)


def set_cookie(name: str, value: str, *, path: str, max_age: int, secure: bool,
               domain: str | None = None) -> tuple[bytes, bytes]:
    """A ``Set-Cookie`` header: HttpOnly, SameSite=Lax (the cookie must come along
    when the provider sends the browser back), Secure over TLS; ``max_age`` 0 clears."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly",
             "SameSite=Lax"]
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")
