"""Who may pass an sso route, and the identity the upstream is told (plugins/_sso_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import ValidationError

from campusgate.plugins._sso_rules import AccessRules, IdentityHeaders, UpstreamJwt, kept_claims

TEACHER = {"sub": "t1", "role": "teacher", "tenant_id": "2001", "district_id": "d-1",
           "school_ids": ["s-north", "s-south"], "groups": ["staff"],
           "email": "kim@north.example.edu", "email_verified": True}
STUDENT = {"sub": "s1", "role": "student", "tenant_id": "2001", "school_ids": ["s-north"],
           "email": "sam@students.example.edu"}


@pytest.mark.parametrize("rules, claims, denied", [
    ({}, STUDENT, None),
    ({"roles": ["Teacher", "administrator"]}, TEACHER, None),
    ({"roles": ["teacher"]}, STUDENT, "role"),
    ({"roles": ["teacher"]}, {"sub": "x"}, "role"),
    ({"districts": ["2001"]}, STUDENT, None),
    ({"districts": ["d-1"]}, TEACHER, None),
    ({"districts": ["9999"]}, TEACHER, "district"),
    ({"schools": ["s-south"]}, TEACHER, None),
    ({"schools": ["s-south"]}, STUDENT, "school"),
    ({"groups": ["staff"]}, TEACHER, None),
    ({"groups": ["staff"]}, STUDENT, "groups"),
    ({"email_domains": ["north.example.edu"]}, TEACHER, None),
    ({"email_domains": ["@North.Example.edu"]}, TEACHER, None),
    ({"email_domains": ["example.edu"]}, TEACHER, "email"),  # no subdomains
    ({"email_domains": ["north.example.edu"]},
     {**TEACHER, "email_verified": False}, "email"),
    ({"roles": ["teacher"], "schools": ["s-west"]}, TEACHER, "school"),  # every list
])
def test_rules(rules: dict[str, Any], claims: dict[str, Any], denied: str | None) -> None:
    answer = AccessRules.model_validate(rules).denial(claims)
    if denied is None:
        assert answer is None
    else:
        assert answer is not None and denied in answer


def test_identity_headers_by_default() -> None:
    headers = dict(IdentityHeaders().build({**TEACHER, "name": "Kim\r\nX-Evil: 1 Lee"}))
    assert headers == {
        b"x-forwarded-user": b"t1", b"x-forwarded-email": b"kim@north.example.edu",
        b"x-forwarded-name": b"KimX-Evil: 1 Lee", b"x-forwarded-role": b"teacher",
        b"x-forwarded-tenant": b"2001", b"x-forwarded-district": b"d-1",
        b"x-forwarded-schools": b"s-north,s-south", b"x-forwarded-groups": b"staff"}


def test_identity_headers_can_be_renamed_or_left_out() -> None:
    names = IdentityHeaders(user="X-User-Id", email=None, groups=None)
    headers = dict(names.build({**TEACHER, "name": "Zoë"}))
    assert headers[b"x-user-id"] == b"t1" and b"x-forwarded-email" not in headers
    assert headers[b"x-forwarded-name"] == "Zoë".encode()
    assert b"x-forwarded-groups" not in headers
    assert b"x-user-id" in names.names() and b"x-forwarded-email" not in names.names()


@pytest.mark.parametrize("bad", ["Cookie", "Host", "X Bad", "Authorization"])
def test_identity_headers_cannot_take_over_protocol_headers(bad: str) -> None:
    with pytest.raises(ValidationError):
        IdentityHeaders(user=bad)


def test_the_upstream_jwt_verifies_with_the_shared_secret() -> None:
    secret = "s" * 40
    config = UpstreamJwt(secret=secret, audience="grades-app", lifetime=30)
    token = config.sign(kept_claims({**TEACHER, "nonce": "n", "at_hash": "h"}), 1_800_000_000)
    decoded = jwt.decode(token, OctKey.import_key(secret.encode()), algorithms=["HS256"])
    claims = decoded.claims
    assert claims["sub"] == "t1" and claims["role"] == "teacher"
    assert (claims["iss"], claims["aud"]) == ("campusgate-sso", "grades-app")
    assert claims["exp"] - claims["iat"] == 30 and "nonce" not in claims
    with pytest.raises(ValidationError):
        UpstreamJwt(secret="too-short")
