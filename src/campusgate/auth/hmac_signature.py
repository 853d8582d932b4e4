"""Signed HTTP requests for ``hmac-auth``: parsing, the signing string, checks.

The scheme follows draft-cavage-http-signatures-12 (the one Kong's hmac-auth uses),
with the algorithm in the auth-scheme and ``@method``/``@path`` pseudo-headers in
place of ``(request-target)``::

    Authorization: HMAC-SHA256 keyId="app-1", headers="@method @path x-date digest",
                   signature="BASE64(HMAC-SHA256(secret, signing string))"

The signing string (draft section 2.3) has one line per name in ``headers``, in that
order, joined by ``\\n`` (no newline after the last):

- ``@method: GET`` -- the request method as sent;
- ``@path: /v1/grades?term=2`` -- the path as sent, plus ``?`` and the query when
  the query is not empty (before any rewriting by the gateway);
- ``name: value`` for a header: the name in lower case, the value with surrounding
  whitespace removed; a header sent several times has its values joined by ``, ``.

A request with a body signs a ``digest`` header (RFC 3230): ``SHA-256=`` followed by
the base64 SHA-256 of the body (``SHA-512=`` is accepted too).  The date in ``date``
or ``x-date`` (an HTTP-date, RFC 9110 section 5.6.7) bounds how long a signature is
usable.

Everything here works on plain values; the plugin supplies the request and the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = [
    "ALGORITHMS",
    "DIGESTS",
    "PSEUDO_HEADERS",
    "SignatureError",
    "SignatureParams",
    "authorization",
    "body_digest",
    "check_date",
    "check_digest_header",
    "digest_matches",
    "parse_auth_params",
    "parse_authorization",
    "scheme_algorithm",
    "sign",
    "signing_string",
    "verify",
]

#: Signature algorithm -> hashlib name.  The auth-scheme is the algorithm, upper-cased.
ALGORITHMS = {"hmac-sha256": "sha256", "hmac-sha512": "sha512"}
PSEUDO_HEADERS = ("@method", "@path")
#: ``Digest`` algorithms accepted (RFC 3230 names) -> hashlib name.
DIGESTS = {"sha-256": "sha256", "sha-512": "sha512"}

Headers = Sequence[tuple[bytes, bytes]]

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# RFC 9110 section 11.2: auth-param = token BWS "=" BWS ( token / quoted-string )
_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*'
                    r'(?:"((?:[^"\\]|\\.)*)"|([!#$%&\'*+.^_`|~0-9A-Za-z/=-]+))\s*(?:,|$)')
_UNESCAPE = re.compile(r"\\(.)")


class SignatureError(ValueError):
    """A signature that cannot be checked: the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """What an ``Authorization: HMAC-...`` header says."""

    algorithm: str
    key_id: str
    #: Lower-cased names, in signing order.
    headers: tuple[str, ...]
    #: The decoded signature (raw MAC bytes).
    signature: bytes


def parse_auth_params(text: str) -> dict[str, str]:
    """``keyId="a", headers="b c"`` -> ``{"keyid": "a", "headers": "b c"}`` (names
    lower-cased, quoted-strings unescaped); SignatureError when malformed or repeated."""
    params: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if match is None:
            raise SignatureError("malformed Authorization parameters")
        name = match.group(1).lower()
        if name in params:
            raise SignatureError(f"parameter {match.group(1)} is given twice")
        quoted = match.group(2)
        params[name] = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else match.group(3)
        pos = match.end()
    return params


def scheme_algorithm(value: bytes) -> str | None:
    """The algorithm an ``Authorization`` value's auth-scheme names (``hmac-sha256``),
    or None when the scheme is another one."""
    algorithm = value.strip().partition(b" ")[0].decode("latin-1").lower()
    return algorithm if algorithm in ALGORITHMS else None


def parse_authorization(value: bytes) -> SignatureParams | None:
    """The signature parameters of an ``Authorization`` value, or None when its scheme
    is not ``HMAC-SHA256``/``HMAC-SHA512`` (not a credential of this kind)."""
    algorithm = scheme_algorithm(value)
    if algorithm is None:
        return None
    rest = value.strip().partition(b" ")[2]
    params = parse_auth_params(rest.decode("latin-1"))
    for required in ("keyid", "headers", "signature"):
        if not params.get(required):
            raise SignatureError(f"the {required.replace('keyid', 'keyId')} parameter "
                                 "is missing")
    names = tuple(params["headers"].lower().split())
    for name in names:
        if name not in PSEUDO_HEADERS and not _TOKEN.match(name):
            raise SignatureError(f"{name!r} in headers is not a header name")
    if len(set(names)) != len(names):
        raise SignatureError("a name is listed twice in headers")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except binascii.Error:
        raise SignatureError("the signature is not base64") from None
    return SignatureParams(algorithm, params["keyid"], names, signature)


def signing_string(method: str, path: str, query: str, headers: Headers,
                   names: Sequence[str]) -> bytes:
    """The bytes that are signed (see the module docstring); SignatureError when a
    listed header is not in the request."""
    lines: list[bytes] = []
    for name in names:
        if name == "@method":
            value = method.encode("latin-1")
        elif name == "@path":
            value = (path + "?" + query if query else path).encode("latin-1")
        else:
            key = name.encode("latin-1")
            values = [v.strip(b" \t") for n, v in headers if n == key]
            if not values:
                raise SignatureError(f"signed header {name!r} is not in the request")
            value = b", ".join(values)
        lines.append(name.encode("latin-1") + b": " + value)
    return b"\n".join(lines)


def sign(algorithm: str, secret: bytes, message: bytes) -> bytes:
    """The raw MAC of ``message`` (``algorithm``: a key of :data:`ALGORITHMS`)."""
    return hmac.digest(secret, message, ALGORITHMS[algorithm])


def verify(params: SignatureParams, secret: bytes, message: bytes) -> bool:
    """True when ``params.signature`` is the MAC of ``message`` (constant time)."""
    return hmac.compare_digest(sign(params.algorithm, secret, message), params.signature)


def body_digest(body: bytes, algorithm: str = "SHA-256") -> str:
    """The ``Digest`` header value for ``body``: ``SHA-256=<base64>``."""
    raw = hashlib.new(DIGESTS[algorithm.lower()], body).digest()
    return f"{algorithm}={base64.b64encode(raw).decode('ascii')}"


def _digest_entries(header: str) -> list[tuple[str, bytes]]:
    entries: list[tuple[str, bytes]] = []
    for part in header.split(","):
        name, eq, value = part.strip().partition("=")
        algorithm = DIGESTS.get(name.lower())
        if not eq or algorithm is None:
            continue
        try:
            entries.append((algorithm, base64.b64decode(value.strip(), validate=True)))
        except binascii.Error:
            raise SignatureError("the digest header is not valid base64") from None
    if not entries:
        raise SignatureError("the digest header needs a SHA-256= (or SHA-512=) value")
    return entries


def check_digest_header(header: str) -> None:
    """SignatureError unless ``header`` has a usable SHA-256/SHA-512 value."""
    _digest_entries(header)


def digest_matches(header: str, body: bytes) -> bool:
    """True when every SHA-256/SHA-512 value of the ``digest`` header matches ``body``
    (SignatureError when the header has none)."""
    return all(hmac.compare_digest(hashlib.new(algorithm, body).digest(), expected)
               for algorithm, expected in _digest_entries(header))


def check_date(value: bytes, now: float, skew: float) -> None:
    """SignatureError unless ``value`` is an HTTP-date within ``skew`` seconds of
    ``now`` (a Unix time)."""
    try:
        when = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        raise SignatureError("the date is not an HTTP-date") from None
    if when.tzinfo is None:
        raise SignatureError("the date is not an HTTP-date (no GMT)")
    if abs(when.timestamp() - now) > skew:
        raise SignatureError("the request date is outside the allowed clock skew")


def authorization(key_id: str, secret: bytes, method: str, path: str, query: str,
                  headers: Headers, names: Sequence[str],
                  algorithm: str = "hmac-sha256") -> bytes:
    """The ``Authorization`` value a client sends (the client side, for tests and
    tools)."""
    mac = sign(algorithm, secret, signing_string(method, path, query, headers, names))
    return (f'{algorithm.upper()} keyId="{key_id}", headers="{" ".join(names)}", '
            f'signature="{base64.b64encode(mac).decode("ascii")}"').encode("latin-1")
