"""A local stand-in for ClassLink, speaking its wire format as its developer docs and
official libraries describe it (import by name: ``from classlink_standin import ...``).

A real HTTP server on 127.0.0.1 with its own RS256 key: ``/.well-known/openid-
configuration`` and its JWKS, ``/oauth2/v2/auth`` (signs :attr:`ClassLinkStandIn.person`
in at once and redirects back with ``code``, ``response_type=code`` and ``state``),
``/oauth2/v2/token`` (form ``code, client_id, client_secret``; answers without
``expires_in`` and without a refresh token), ``/v2/my/info``,
``/v2/oneroster/my/info`` (``{"user": ...}``, a OneRoster user with ``grades``) and
``/v2/oneroster/my/classes``.  It also serves as a generic OpenID provider (the same
discovery document; client_secret_basic accepted; ``/userinfo``).

Switches (:class:`Misbehaviour`) make it answer wrongly: a wrong nonce, audience, an
expired ID token, 429s (a number of them, or forever), 500s, slowness, a denial, a
failing ``/v2/oneroster/my/info``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "PERSON", "ROSTER_USER", "ClassLinkStandIn",
           "Misbehaviour"]

CLIENT_ID = "campusgate-at-classlink"
CLIENT_SECRET = "standin-client-secret-0123456789"

#: A teacher, as ClassLink's /v2/my/info shows one.
PERSON: dict[str, Any] = {
    "UserId": 4711, "TenantId": 2001, "StateId": 12, "StateName": "Ohio",
    "BuildingId": 31, "AuthenticationType": 2, "DisplayName": "Ada Lovelace",
    "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@springfield.k12.us",
    "LoginId": "alovelace", "ImagePath": "", "LanguageId": 1, "Language": "English",
    "DefaultTimeFormat": 0, "Profile": "Teacher", "ProfileId": 3,
    "Tenant": "Springfield Public Schools", "Building": "Springfield High",
    "Role": "Teacher", "Role_Level": 2, "LastAccessTime": "2026-11-28 08:00:00.0",
    "OrgId": "school-shs", "SourcedId": "t-1001",
}
#: The same teacher as ``/v2/oneroster/my/info`` shows them (OneRoster 1.1 user).
ROSTER_USER: dict[str, Any] = {
    "sourcedId": "t-1001", "status": "active", "username": "alovelace",
    "givenName": "Ada", "familyName": "Lovelace", "role": "teacher",
    "email": "ada@springfield.k12.us", "grades": ["07", "08"],
    "orgs": [{"sourcedId": "school-shs", "type": "org"}],
}
CLASSES = {"classes": [
    {"sourcedId": "class-math-7", "title": "Math 7", "school": {"sourcedId": "school-shs",
                                                                "type": "org"}},
    {"sourcedId": "class-sci-7", "title": "Science 7",
     "school": {"sourcedId": "school-shs", "type": "org"}},
]}


@dataclass
class Misbehaviour:
    """How the stand-in answers wrongly (all off by default)."""

    wrong_nonce: bool = False
    wrong_audience: bool = False
    expired: bool = False
    #: The token endpoint answers this many 429s before answering properly (-1: forever).
    token_429s: int = 0
    #: The token endpoint answers this status forever.
    token_status: int | None = None
    #: Seconds the token endpoint waits before answering.
    token_delay: float = 0.0
    #: The authorization endpoint answers error=access_denied.
    deny: bool = False
    #: The key set (JWKS) answers 503.
    keys_down: bool = False
    #: ``/v2/oneroster/my/info`` answers this status (with an error body).
    roster_info_status: int | None = None


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None


@dataclass
class ClassLinkStandIn:
    """The server; :meth:`start` it, :meth:`stop` it, change :attr:`misbehave`."""

    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": "standin-1", "use": "sig", "alg": "RS256"}))
    person: dict[str, Any] = field(default_factory=lambda: dict(PERSON))
    roster_user: dict[str, Any] = field(default_factory=lambda: dict(ROSTER_USER))
    misbehave: Misbehaviour = field(default_factory=Misbehaviour)
    #: Every token request's form (and whether it came with HTTP Basic).
    token_requests: list[dict[str, str]] = field(default_factory=list)
    #: Every authorization request's query.
    auth_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, _Code] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> ClassLinkStandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def reset(self) -> None:
        self.misbehave = Misbehaviour()
        self.person = dict(PERSON)
        self.roster_user = dict(ROSTER_USER)
        self.token_requests.clear()
        self.auth_requests.clear()

    # ------------------------------------------------------------ answers
    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "authorization_endpoint": self.url + "/oauth2/v2/auth",
                "token_endpoint": self.url + "/oauth2/v2/token",
                "jwks_uri": self.url + "/oauth2/v2/jwks",
                "userinfo_endpoint": self.url + "/userinfo",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    def id_token(self, code: _Code) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": str(self.person["UserId"]),
                  "aud": "someone-else" if self.misbehave.wrong_audience else code.client_id,
                  "iat": now - (7200 if self.misbehave.expired else 0),
                  "exp": now + (-3600 if self.misbehave.expired else 600),
                  "nonce": "not-your-nonce" if self.misbehave.wrong_nonce else code.nonce,
                  "email": self.person.get("Email"), "email_verified": True,
                  "name": self.person.get("DisplayName"),
                  "preferred_username": self.person.get("LoginId")}
        return jwt.encode({"alg": "RS256", "kid": "standin-1"},
                          {k: v for k, v in claims.items() if v is not None}, self.key)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                    ).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    owner: ClassLinkStandIn

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None
              ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        owner = self.owner
        if parts.path == "/.well-known/openid-configuration":
            return self._send(200, owner.discovery())
        if parts.path == "/oauth2/v2/jwks":
            if owner.misbehave.keys_down:
                return self._send(503, {"error": "unavailable"})
            return self._send(200, {"keys": [owner.key.as_dict(private=False)]})
        if parts.path == "/oauth2/v2/auth":
            return self._authorize(query)
        if parts.path in ("/v2/my/info", "/v2/oneroster/my/classes", "/v2/oneroster/my/info",
                          "/userinfo"):
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in owner.tokens:
                return self._send(401, {"error": "invalid_token"})
            if parts.path == "/v2/my/info":
                return self._send(200, owner.person)
            if parts.path == "/v2/oneroster/my/info":
                if owner.misbehave.roster_info_status is not None:
                    return self._send(owner.misbehave.roster_info_status,
                                      {"error": "unavailable"})
                return self._send(200, {"user": owner.roster_user})
            if parts.path == "/userinfo":
                return self._send(200, {"sub": str(owner.person["UserId"]),
                                        "email": owner.person.get("Email")})
            return self._send(200, CLASSES)
        self._send(404, {"error": "not found"})

    def _authorize(self, query: dict[str, str]) -> None:
        owner = self.owner
        owner.auth_requests.append(query)
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or not redirect:
            return self._send(400, {"error": "invalid_request"})
        if owner.misbehave.deny:
            answer = {"error": "access_denied", "state": query.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            owner.codes[code] = _Code(CLIENT_ID, redirect, query.get("nonce"),
                                      query.get("code_challenge"))
            answer = {"code": code, "response_type": "code", "state": query.get("state", "")}
        self._send(302, headers={"Location": f"{redirect}?{urlencode(answer)}"})

    def do_POST(self) -> None:
        owner = self.owner
        if urlsplit(self.path).path != "/oauth2/v2/token":
            return self._send(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form = {**form, "client_id": client_id, "client_secret": secret, "basic": "yes"}
        owner.token_requests.append(form)
        bad = owner.misbehave
        if bad.token_delay:
            time.sleep(bad.token_delay)
        if bad.token_status is not None:
            return self._send(bad.token_status, {"error": "server_error"})
        if bad.token_429s:
            bad.token_429s -= 1 if bad.token_429s > 0 else 0
            return self._send(429, {"error": "too many requests"}, {"Retry-After": "0"})
        code = owner.codes.pop(form.get("code", ""), None)
        if (code is None or form.get("client_id") != CLIENT_ID
                or form.get("client_secret") != CLIENT_SECRET):
            return self._send(400, {"error": "invalid_grant"})
        verifier = form.get("code_verifier")
        if code.challenge and (verifier is None or _s256(verifier) != code.challenge):
            return self._send(400, {"error": "invalid_grant"})
        access = secrets.token_urlsafe(24)
        owner.tokens.add(access)
        self._send(200, {"access_token": access, "token_type": "Bearer",
                         "response_type": "code", "id_token": owner.id_token(code)})
