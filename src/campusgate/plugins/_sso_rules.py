"""Who may pass an ``sso`` route, and what the upstream is told about them.

- :class:`AccessRules`: allowed roles, districts, schools, groups and email domains.
  Each list that is set must match; an empty list does not restrict.  The claims are
  those of the ID token, as campusgate's ``roster`` scope gives them
  (:data:`campusgate.identity.claims.ROSTER_CLAIMS`): ``role``, ``tenant_id``,
  ``district_id``, ``school_ids``, ``groups``, and ``email`` (with
  ``email_verified``: an address the provider says is unverified never matches).
- :class:`IdentityHeaders`: the request headers that carry the identity upstream.
- :class:`UpstreamJwt`: optionally, the identity as a short-lived HS256 JWT signed
  with a secret the upstream shares, so it can check the headers came from the
  gateway.

Pure code over plain values: the plugin calls these on every request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

from campusgate.identity.claims import ROSTER_CLAIMS

__all__ = ["KEPT_CLAIMS", "AccessRules", "IdentityHeaders", "UpstreamJwt", "kept_claims",
           "spoofable"]

#: The claims a session keeps (the rest of the ID token is not needed afterwards).
KEPT_CLAIMS = ("sub", "email", "email_verified", "name", "preferred_username",
               "given_name", "family_name", *ROSTER_CLAIMS)
#: RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Headers an identity header may not replace.
_RESERVED = frozenset({"host", "cookie", "authorization", "content-length",
                       "transfer-encoding", "connection", "upgrade", "x-request-id",
                       "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def kept_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {name: claims[name] for name in KEPT_CLAIMS if claims.get(name) is not None}


def _strings(value: Any) -> set[str]:
    """A claim as a set of strings (a string, or a list of them)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def header_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not _TOKEN.match(value):
        raise ValueError(f"{value!r} is not a header name")
    if value.lower() in _RESERVED:
        raise ValueError(f"{value} cannot carry the identity")
    return value


class AccessRules(BaseModel):
    """Who may pass: every list that is set must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Allowed ``role`` values (OneRoster roles: ``teacher``, ``student``,
    #: ``administrator``...; compared without case).
    roles: list[str] = Field(default_factory=list)
    #: Allowed districts: a ``tenant_id`` (ClassLink TenantId) or ``district_id``.
    districts: list[str] = Field(default_factory=list)
    #: Allowed schools (sourcedIds): one of the person's ``school_ids`` must be here.
    schools: list[str] = Field(default_factory=list)
    #: Allowed groups: one of the person's ``groups`` must be here.
    groups: list[str] = Field(default_factory=list)
    #: Allowed domains of a verified ``email`` (``example.edu``; no subdomains).
    email_domains: list[str] = Field(default_factory=list)

    @field_validator("roles", "email_domains")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in values]

    def denial(self, claims: Mapping[str, Any]) -> str | None:
        """Why ``claims`` may not pass, or None when they may."""
        if self.roles and not {r.lower() for r in _strings(claims.get("role"))} & set(
                self.roles):
            return "your role may not use this application"
        if self.districts and not (_strings(claims.get("tenant_id"))
                                   | _strings(claims.get("district_id"))) & set(self.districts):
            return "your district may not use this application"
        if self.schools and not _strings(claims.get("school_ids")) & set(self.schools):
            return "your school may not use this application"
        if self.groups and not _strings(claims.get("groups")) & set(self.groups):
            return "your groups may not use this application"
        if self.email_domains and not self._email_allowed(claims):
            return "your email address may not use this application"
        return None

    def _email_allowed(self, claims: Mapping[str, Any]) -> bool:
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            return False
        return email.rpartition("@")[2].lower() in self.email_domains


class IdentityHeaders(BaseModel):
    """The headers that tell the upstream who is signed in (null: not sent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The user's id at the provider (``sub``).
    user: str | None = "X-Forwarded-User"
    email: str | None = "X-Forwarded-Email"
    name: str | None = "X-Forwarded-Name"
    #: ``preferred_username``.
    username: str | None = "X-Forwarded-Preferred-Username"
    role: str | None = "X-Forwarded-Role"
    #: ``tenant_id`` (the district's ClassLink TenantId).
    tenant: str | None = "X-Forwarded-Tenant"
    #: ``district_id`` (the district org's sourcedId).
    district: str | None = "X-Forwarded-District"
    #: ``school_ids``, comma-separated.
    schools: str | None = "X-Forwarded-Schools"
    #: ``groups``, comma-separated.
    groups: str | None = "X-Forwarded-Groups"

    @field_validator("*")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        return header_name(value)

    def names(self) -> list[bytes]:
        return [v.lower().encode() for v in self.model_dump().values() if v]

    def build(self, claims: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
        """The headers for ``claims``: lists comma-joined, control characters dropped,
        UTF-8; a claim without a value sends no header."""
        sources = (("user", "sub"), ("email", "email"), ("name", "name"),
                   ("username", "preferred_username"), ("role", "role"),
                   ("tenant", "tenant_id"), ("district", "district_id"),
                   ("schools", "school_ids"), ("groups", "groups"))
        out = []
        for field_name, claim in sources:
            header = getattr(self, field_name)
            value = _header_value(claims.get(claim))
            if header and value:
                out.append((header.lower().encode(), value))
        return out


def _header_value(value: Any) -> bytes | None:
    if isinstance(value, list):
        value = ",".join(str(v) for v in value if isinstance(v, str | int))
    elif isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = _CONTROL.sub("", str(value)).strip()
    return text.encode("utf-8") if text else None


class UpstreamJwt(BaseModel):
    """The identity as a signed JWT for the upstream (HS256 with a shared secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The header that carries it.
    header: str = "X-Identity-Token"
    #: The shared secret (at least 32 characters; a ``${ENV}`` reference).
    secret: str = Field(min_length=32)
    #: Seconds the JWT is valid (``exp`` - ``iat``).
    lifetime: int = Field(default=60, ge=5, le=3600)
    #: Its ``iss``.
    issuer: str = "campusgate-sso"
    #: Its ``aud``, if any (the upstream's name).
    audience: str | None = None

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        return header_name(value) or value

    def sign(self, claims: Mapping[str, Any], now: float) -> str:
        payload: dict[str, Any] = dict(claims)
        payload.update(iss=self.issuer, iat=int(now), exp=int(now) + self.lifetime)
        if self.audience:
            payload["aud"] = self.audience
        return jwt.encode({"alg": "HS256", "typ": "JWT"}, payload,
                          OctKey.import_key(self.secret.encode()))


def spoofable(headers: IdentityHeaders, extra: Iterable[str | None]) -> frozenset[bytes]:
    """Every header name the plugin sets: incoming copies of them are removed."""
    return frozenset([*headers.names(), *(e.lower().encode() for e in extra if e)])
