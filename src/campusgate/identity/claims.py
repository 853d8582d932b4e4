"""Which of a user's claims a client gets, by scope (OpenID Connect Core 5.1, 5.4).

The standard scopes release the standard claims (5.4): ``profile`` the name and
profile claims, ``email`` the address and whether it was verified, ``address`` and
``phone`` theirs.  campusgate's ``roster`` scope releases the person's place at school
(:data:`ROSTER_CLAIMS`), kept in ``User.claims`` by the OneRoster import and by
ClassLink sign-ins.  Operator-defined scopes (``identity.scopes[].claims``) release the
claims they list.  ``sub`` is always released.  A claim the user has no value for is
left out rather than sent as null (5.3.2).

Values come from the :class:`~campusgate.identity.models.User`'s own fields (name,
email, ...; ``preferred_username`` is the username, ``updated_at`` epoch seconds,
5.1) and otherwise from ``User.claims``.  Names that carry protocol meaning in an ID
token or access token (``iss``, ``aud``, ``nonce``, ...) are never taken from user
data, so an operator's claim cannot forge them.

No I/O: the token and userinfo endpoints call these with a user already loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from campusgate.config.identity import IdentityScope

if TYPE_CHECKING:
    from campusgate.identity.models import User

__all__ = [
    "PROTOCOL_CLAIMS",
    "ROSTER_CLAIMS",
    "SCOPE_CLAIMS",
    "released_claims",
    "supported_claims",
]

#: The ``roster`` scope's claims, all optional: ``role`` (a OneRoster role, lowercase:
#: student, teacher, administrator, aide, guardian, ...), ``tenant_id`` (the district's
#: ClassLink TenantId or roster tenant id, a string), ``district_id`` (the district
#: org's sourcedId), ``district`` (its name), ``school_ids`` and ``class_ids``
#: (sourcedIds), ``grades`` (CEDS codes: KG, 01 ... 12) and ``groups``: lists of strings.
ROSTER_CLAIMS = ("role", "tenant_id", "district_id", "district", "school_ids", "grades",
                 "class_ids", "groups")

#: OIDC Core 5.4: the claims each standard scope asks for (and ``roster``).
SCOPE_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "middle_name", "nickname",
                "preferred_username", "profile", "picture", "website", "gender",
                "birthdate", "zoneinfo", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
    "roster": ROSTER_CLAIMS,
}

#: Claims with a protocol meaning (RFC 7519 4.1, OIDC Core 2 and 3.1.3.6, RFC 9068 2.2,
#: OIDC Front/Back-Channel Logout): set by the provider, never from user data.
PROTOCOL_CLAIMS = frozenset({
    "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "acr", "amr",
    "azp", "at_hash", "c_hash", "s_hash", "sid", "client_id", "scope", "cnf", "gid",
    "typ", "events", "act", "may_act",
})


def _timestamp(moment: datetime) -> int:
    if moment.tzinfo is None:  # stored naive by SQLite: it is UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _value(user: User, name: str) -> Any:
    """The user's value of claim ``name``, or None when they have none."""
    if name == "preferred_username":
        return user.username
    if name == "updated_at":
        return _timestamp(user.updated_at)
    if name == "email_verified":
        return bool(user.email_verified) if user.email else None
    if name in ("name", "given_name", "family_name", "email"):
        return getattr(user, name)
    return user.claims.get(name)


def released_claims(user: User, scopes: Iterable[str],
                    operator_scopes: Sequence[IdentityScope] = ()) -> dict[str, Any]:
    """``sub`` and the claims ``scopes`` release about ``user``, for userinfo and the
    ID token.  Claims without a value are omitted."""
    wanted: list[str] = []
    defined = {scope.name: scope for scope in operator_scopes}
    for scope in scopes:
        if scope in SCOPE_CLAIMS:
            wanted.extend(SCOPE_CLAIMS[scope])
        elif scope in defined:
            wanted.extend(defined[scope].claims)
    claims: dict[str, Any] = {"sub": user.id}
    for name in wanted:
        if name in PROTOCOL_CLAIMS or name in claims:
            continue
        value = _value(user, name)
        if value is not None:
            claims[name] = value
    return claims


def supported_claims(operator_scopes: Sequence[IdentityScope] = ()) -> list[str]:
    """Every claim some scope can release (discovery's ``claims_supported``), plus the
    ID token's own."""
    names = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash",
             "c_hash", "sid"]
    for scope_claims in SCOPE_CLAIMS.values():
        names.extend(scope_claims)
    for scope in operator_scopes:
        names.extend(c for c in scope.claims if c not in PROTOCOL_CLAIMS)
    return list(dict.fromkeys(names))
