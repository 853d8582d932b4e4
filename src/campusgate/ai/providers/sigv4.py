"""AWS Signature Version 4 (header form), sans-IO: the headers that sign one request.

The algorithm is AWS's "Create a signed AWS API request" (IAM user guide, "Elements of
an AWS API request signature"):

1. the *canonical request*: method, canonical URI, canonical query string, canonical
   headers (lower-cased names, values trimmed with inner runs of spaces collapsed,
   sorted), the signed header names, and the hex SHA-256 of the body;
2. the *string to sign*: ``AWS4-HMAC-SHA256``, the request time, the credential scope
   ``date/region/service/aws4_request`` and the hex SHA-256 of the canonical request;
3. the *signing key*: HMAC-SHA256 chained over ``"AWS4" + secret``, date, region,
   service, ``aws4_request``;
4. ``authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.

The canonical URI encodes each path segment of the URL *as sent* once more ("each path
segment must be URI-encoded twice, except for Amazon S3"): a Bedrock model id
``anthropic.claude-3-haiku-20240307-v1:0`` goes on the wire as ``...v1%3A0`` and is
signed as ``...v1%253A0``, as botocore does (``quote(path, safe="/~")``).  The query
string is decoded and re-encoded with only the unreserved characters left bare, and
sorted.  Tested against AWS's published SigV4 test suite (``get-vanilla`` and friends,
the ``AKIDEXAMPLE`` credentials) and against botocore's signature of a Bedrock request.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["ALGORITHM", "sign"]

ALGORITHM = "AWS4-HMAC-SHA256"
#: Ports a ``host`` header leaves out.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes, *,
         access_key: str, secret_key: str, session_token: str | None = None,
         region: str, service: str, now: datetime,
         content_sha256_header: bool = True) -> dict[str, str]:
    """The headers to add to the request (lower-case names): ``x-amz-date``,
    ``x-amz-content-sha256`` (unless ``content_sha256_header`` is False: the AWS test
    suite signs without it), ``x-amz-security-token`` (temporary credentials) and
    ``authorization``.  Every header in ``headers`` is signed, and ``host`` (from
    ``url`` when ``headers`` has none): send them unchanged."""
    when = now.astimezone(UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{when:%Y%m%d}/{region}/{service}/aws4_request"
    payload_hash = hashlib.sha256(body).hexdigest()
    added: dict[str, str] = {"x-amz-date": amz_date}
    if content_sha256_header:
        added["x-amz-content-sha256"] = payload_hash
    if session_token:
        added["x-amz-security-token"] = session_token
    parts = urlsplit(url)
    signed = {name.lower(): _trim(value) for name, value in headers.items()}
    signed.setdefault("host", _host(parts.scheme, parts.hostname or "", parts.port))
    signed.update(added)
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical = "\n".join([
        method.upper(),
        canonical_uri(parts.path, service),
        canonical_query(parts.query),
        "".join(f"{name}:{signed[name]}\n" for name in names),
        signed_headers,
        payload_hash,
    ])
    to_sign = "\n".join([ALGORITHM, amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret_key, f"{when:%Y%m%d}", region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    added["authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, "
                              f"SignedHeaders={signed_headers}, Signature={signature}")
    return added


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """``kSigning``: HMAC-SHA256 chained over the date, region, service and
    ``aws4_request``, starting from ``"AWS4" + secret``."""
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_uri(path: str, service: str) -> str:
    """The path as sent, URI-encoded again (S3 alone signs it as it is)."""
    if not path:
        return "/"
    return path if service == "s3" else quote(path, safe="/~")


def canonical_query(query: str) -> str:
    """Parameters decoded, re-encoded (unreserved characters bare, space as %20), and
    sorted by name, then value."""
    pairs = [(quote(name, safe="-_.~"), quote(value, safe="-_.~"))
             for name, value in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _trim(value: str) -> str:
    return " ".join(value.split())


def _host(scheme: str, hostname: str, port: int | None) -> str:
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return hostname
    return f"{hostname}:{port}"
