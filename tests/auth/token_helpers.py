"""Keys, tokens and a key-set server for the token tests (shared with tests/plugins).

Keys are generated here, in the test run, with joserfc; nothing is read from disk.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import warnings
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from gateway_harness import HttpUpstream, UpstreamRequest, ok_response
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey

__all__ = ["AuthorizationServer", "JwksServer", "b64url", "forge_hs", "public_jwk",
           "public_pem", "sign", "signing_key", "unsigned"]

_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
HMAC_SECRET = b"a-shared-secret-of-at-least-32-bytes!!"


@cache
def signing_key(alg: str, n: int = 0) -> Key:
    """A private key for ``alg`` (``n`` tells several keys of one kind apart)."""
    if alg.startswith("HS"):
        return OctKey.import_key(HMAC_SECRET + str(n).encode())
    if alg[:2] in ("RS", "PS"):
        return RSAKey.generate_key(2048, parameters={"kid": f"rsa-{n}"})
    if alg.startswith("ES"):
        return ECKey.generate_key(_CURVES[alg], parameters={"kid": f"ec-{alg}-{n}"})
    return OKPKey.generate_key("Ed25519", parameters={"kid": f"ed-{n}"})


def sign(claims: dict[str, Any], alg: str = "RS256", key: Key | None = None,
         **header: Any) -> str:
    key = key or signing_key(alg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns that EdDSA is deprecated (RFC 9864)
        return jwt.encode({"alg": alg, **header}, claims, key, algorithms=[alg])


def public_pem(key: Key) -> str:
    return key.as_pem(private=False).decode()  # type: ignore[union-attr]


def public_jwk(key: Key, **extra: Any) -> dict[str, Any]:
    data = dict(key.as_dict(private=False))
    if key.kid:
        data["kid"] = key.kid
    data.update(extra)
    return data


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return (b64url(json.dumps(header).encode()) + "."
            + b64url(json.dumps(claims).encode()))


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """An unsecured JWT (RFC 7519 section 6): no signature."""
    return _segments({"alg": alg, "typ": "JWT"}, claims) + "."


def forge_hs(claims: dict[str, Any], secret: bytes, alg: str = "HS256",
             **header: Any) -> str:
    """An HMAC token made by hand, with any bytes as the secret (joserfc refuses a
    public key as an HMAC secret; an attacker does not ask)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = _segments({"alg": alg, **header}, claims)
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


class JwksServer:
    """A key-set URL on 127.0.0.1 whose document a test changes; counts fetches."""

    def __init__(self, *keys: Key) -> None:
        self.document: dict[str, Any] = {"keys": [public_jwk(k) for k in keys]}
        self.status = 200
        self.upstream = HttpUpstream(self._answer)

    def set_keys(self, *keys: Key) -> None:
        self.document = {"keys": [public_jwk(k) for k in keys]}

    async def _answer(self, req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(self.document).encode()
        writer.write(ok_response(body, self.status, [(b"content-type", b"application/json")]))

    @property
    def fetches(self) -> int:
        return len(self.upstream.requests)

    @property
    def url(self) -> str:
        return f"http://{self.upstream.address}/jwks.json"

    async def start(self) -> JwksServer:
        await self.upstream.start()
        return self

    async def close(self) -> None:
        await self.upstream.close()


class AuthorizationServer:
    """A fake RFC 7662 introspection endpoint on 127.0.0.1.

    ``answers`` maps a token to its introspection answer; unknown tokens are
    inactive.  ``status`` and ``delay`` make it fail or dawdle; ``calls`` records the
    form each call carried and ``authorizations`` its Authorization header."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}
        self.status = 200
        self.delay = 0.0
        self.calls: list[dict[str, str]] = []
        self.authorizations: list[str | None] = []
        self.upstream = HttpUpstream(self._answer)

    async def _answer(self, req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        form = dict(parse_qsl(req.body.decode()))
        self.calls.append(form)
        self.authorizations.append(req.header("authorization"))
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answers.get(form.get("token", ""), {"active": False})
        writer.write(ok_response(json.dumps(answer).encode(), self.status,
                                 [(b"content-type", b"application/json")]))

    @property
    def url(self) -> str:
        return f"http://{self.upstream.address}/introspect"

    async def start(self) -> AuthorizationServer:
        await self.upstream.start()
        return self

    async def close(self) -> None:
        await self.upstream.close()
