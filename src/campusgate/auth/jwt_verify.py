"""Checking a JWT, with no I/O: parse, pick the key, verify the signature, check claims.

The steps follow RFC 7519 section 7.2 (validating a JWT) over a JWS compact
serialization (RFC 7515 section 7.1); signatures are joserfc's (RFC 7518 section 3,
RFC 8037 for EdDSA).  Two rules guard against algorithm confusion:

- the token's ``alg`` must be on an allow-list, and ``none`` never is
  (RFC 8725 section 3.1);
- a key's type decides the algorithm family (:data:`KEY_TYPES`): an HMAC algorithm
  is verified only with a symmetric secret, RS/PS only with an RSA key, ES with an
  EC key on the matching curve, EdDSA with an OKP key (RFC 8725 section 3.1, 2.1).

:class:`TokenCache` remembers verified tokens so that a token seen again costs a
hash and a dictionary lookup instead of a signature check.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OctKey, OKPKey, RSAKey
from joserfc.util import urlsafe_b64decode

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "KEY_TYPES",
    "ClaimsPolicy",
    "KeyImportError",
    "TimeWindow",
    "TokenCache",
    "TokenError",
    "UnverifiedToken",
    "allowed_algorithm",
    "check_access_token_type",
    "check_claims",
    "check_key_for",
    "import_credential_key",
    "parse_token",
    "verify_signature",
]

#: The key type (JWK ``kty``, RFC 7518 section 6.1) each algorithm needs.
KEY_TYPES: Mapping[str, str] = {
    "HS256": "oct", "HS384": "oct", "HS512": "oct",
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
    "EdDSA": "OKP",
}
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = tuple(a for a, t in KEY_TYPES.items() if t != "oct")

#: Header parameters whose meaning we know (RFC 7515 section 4.1); ``crit`` may
#: name only these.
_HEADERS = jws.JWSRegistry(strict_check_header=False)
_KEY_CLASSES: Mapping[str, type[Key]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}


class TokenError(ValueError):
    """A token that must be refused; the message is safe to show the client."""


class KeyImportError(ValueError):
    """A configured key that cannot be used (the operator's mistake, not the client's)."""


@dataclass(frozen=True, slots=True)
class UnverifiedToken:
    """A parsed JWS compact token whose signature has not been checked yet."""

    header: Mapping[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    def claim(self, name: str) -> str | None:
        """A string claim, or None when absent or not a string."""
        value = self.claims.get(name)
        return value if isinstance(value, str) else None


def parse_token(token: bytes) -> UnverifiedToken:
    """Split and decode a JWS compact token (RFC 7515 section 7.1, RFC 7519 section 7.2
    steps 1-10), without checking the signature.  Unsecured (``alg: none``) and
    unencoded-payload (RFC 7797 ``b64``) tokens are refused here."""
    try:
        obj = jws.extract_compact(token)
    except (JoseError, ValueError) as exc:
        raise TokenError("the token is not a well-formed JWT") from exc
    header = obj.headers()
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise TokenError("unsigned tokens (alg none) are not accepted")
    if "b64" in header:
        raise TokenError("the token's header has a b64 parameter, which JWTs do not use")
    try:
        _HEADERS.check_header(header)
    except JoseError as exc:
        raise TokenError(f"the token's header is not acceptable ({exc.description})") from exc
    try:
        claims = json.loads(obj.payload)
        signature = urlsafe_b64decode(obj.segments["signature"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("the token's payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise TokenError("the token's payload is not a JSON object")
    signing_input = obj.segments["header"] + b"." + obj.segments["payload"]
    return UnverifiedToken(header, claims, signing_input, signature)


def import_credential_key(algorithm: str, secret: bytes | None,
                          public_key: str | None) -> Key:
    """The verification key of a consumer's ``jwt`` credential.

    The credential's algorithm decides the key type: an HMAC secret becomes an oct key
    (joserfc refuses PEM public keys there), anything else must parse as a key of
    exactly the algorithm's type -- PEM, or a JWK as JSON.
    """
    key_type = KEY_TYPES[algorithm]
    try:
        if key_type == "oct":
            if not secret:
                raise KeyImportError(f"{algorithm} needs a secret")
            return OctKey.import_key(secret)
        if not public_key:
            raise KeyImportError(f"{algorithm} needs a public_key")
        text = public_key.strip()
        if text.startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("kty") != key_type:
                raise KeyImportError(f"{algorithm} needs a JWK with kty {key_type}")
            key = JWKRegistry.import_key(data, key_type)
        else:
            key = _KEY_CLASSES[key_type].import_key(text.encode())
    except (JoseError, ValueError, TypeError) as exc:
        if isinstance(exc, KeyImportError):
            raise
        raise KeyImportError(f"not a usable {key_type} key for {algorithm}: {exc}") from exc
    check_key_for(key, algorithm)
    return key


def check_key_for(key: Key, alg: str) -> None:
    """Refuse a key whose type, ``use`` or ``alg`` does not fit algorithm ``alg``
    (RFC 7517 sections 4.2 and 4.4)."""
    wanted = KEY_TYPES.get(alg)
    if wanted is None or key.key_type != wanted:
        raise TokenError(f"the token's algorithm {alg} does not fit a {key.key_type} key")
    key_alg = key.get("alg")
    if key_alg is not None and key_alg != alg:
        raise TokenError(f"the key is for {key_alg}, not {alg}")
    use = key.get("use")
    if use is not None and use != "sig":
        raise TokenError("the key is not a signing key")


def verify_signature(token: UnverifiedToken, key: Key) -> None:
    """Check the signature with ``key`` (RFC 7515 section 5.2), for the token's own
    ``alg``, which the caller has already checked against its allow-list."""
    alg = token.alg
    check_key_for(key, alg)
    model = jws.JWSRegistry.algorithms[alg]
    try:
        model.check_key(key)
        valid = model.verify(token.signing_input, token.signature, key)
    except (JoseError, ValueError) as exc:
        raise TokenError(f"the key cannot check this token ({exc})") from exc
    if not valid:
        raise TokenError("the token's signature is not valid")


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """What the claims must say (RFC 7519 section 4.1)."""

    #: Required ``iss`` value, if any.
    issuer: str | None = None
    #: ``aud`` must name at least one of these, if any are given.
    audiences: frozenset[str] = frozenset()
    #: Time claims that must be present (``exp``, ``nbf``); present ones are always
    #: checked.
    required: frozenset[str] = frozenset({"exp"})
    #: Seconds of clock skew allowed either way.
    leeway: float = 30.0
    #: Longest accepted lifetime (``exp`` minus ``iat``, or minus now without ``iat``).
    max_lifetime: float | None = None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """When a token that passed :func:`check_claims` stops being valid."""

    exp: float | None


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise TokenError(f"the token's {name} claim is not a NumericDate")
    return float(value)


def check_claims(claims: Mapping[str, Any], policy: ClaimsPolicy, now: float) -> TimeWindow:
    """Check registered claims against ``policy`` at time ``now`` (seconds since the
    epoch): ``exp`` (section 4.1.4), ``nbf`` (4.1.5), ``iat`` (4.1.6), ``iss`` (4.1.1),
    ``aud`` (4.1.3)."""
    for name in sorted(policy.required):
        if claims.get(name) is None:
            raise TokenError(f"the token has no {name} claim")
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is not None and now >= exp + policy.leeway:
        raise TokenError("the token has expired")
    if nbf is not None and now + policy.leeway < nbf:
        raise TokenError("the token is not valid yet (nbf)")
    if iat is not None and now + policy.leeway < iat:
        raise TokenError("the token was issued in the future (iat)")
    if policy.max_lifetime is not None:
        if exp is None:
            raise TokenError("the token has no exp claim")
        if exp - (iat if iat is not None else now) > policy.max_lifetime:
            raise TokenError("the token's lifetime is longer than allowed")
    if policy.issuer is not None and claims.get("iss") != policy.issuer:
        raise TokenError("the token's issuer (iss) is not accepted")
    if policy.audiences:
        aud = claims.get("aud")
        named = {aud} if isinstance(aud, str) else (
            {a for a in aud if isinstance(a, str)} if isinstance(aud, list) else set())
        if not named & policy.audiences:
            raise TokenError("the token's audience (aud) is not accepted")
    return TimeWindow(exp)


def allowed_algorithm(token: UnverifiedToken, allowed: Collection[str]) -> None:
    """Refuse a token whose ``alg`` is not in ``allowed`` (RFC 8725 section 3.1)."""
    if token.alg not in allowed:
        raise TokenError(f"the token's algorithm {token.alg} is not accepted")


def check_access_token_type(token: UnverifiedToken) -> None:
    """A JWT access token says so in its header: ``typ`` is ``at+jwt`` (RFC 9068
    section 4), which keeps an ID token or other JWT of the same issuer from being
    used as an access token."""
    typ = token.header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ("at+jwt", "application/at+jwt"):
        raise TokenError('the token is not a JWT access token (typ must be "at+jwt")')


V = TypeVar("V")


class TokenCache(Generic[V]):
    """A bounded map from a token digest to what is known about the token, each entry
    with its own expiry (least recently used entries go first when full)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> V | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry[0]:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def put(self, digest: bytes, value: V, expires: float) -> None:
        self._entries[digest] = (expires, value)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, digest: bytes) -> None:
        self._entries.pop(digest, None)
