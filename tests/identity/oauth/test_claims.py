"""Claims released per scope (OIDC Core 5.1, 5.4), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from campusgate.config.identity import IdentityScope
from campusgate.identity.claims import SCOPE_CLAIMS, released_claims, supported_claims
from campusgate.identity.models import User

UPDATED = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_user(**changes: Any) -> User:
    fields: dict[str, Any] = {
        "id": "7c0a7f0e-2f6b-4d1c-9a55-0d1e2f3a4b5c", "username": "ada",
        "email": "ada@example.edu", "email_verified": True, "name": "Ada Lovelace",
        "given_name": "Ada", "family_name": "Lovelace",
        "claims": {"locale": "en-GB", "picture": "https://img.example.edu/ada.png",
                   "phone_number": "+44 20 7946 0000", "phone_number_verified": False,
                   "address": {"locality": "London", "country": "GB"},
                   "grade": "12", "school_id": "s-42", "iss": "https://evil.example"},
        "disabled": False, "created_at": UPDATED, "updated_at": UPDATED,
    }
    fields.update(changes)
    return User(**fields)


def test_sub_alone_without_scopes() -> None:
    assert released_claims(make_user(), ["openid"]) == {"sub": make_user().id}


def test_profile_releases_names_preferred_username_and_updated_at_in_epoch_seconds() -> None:
    claims = released_claims(make_user(), ["openid", "profile"])
    assert claims == {
        "sub": make_user().id, "name": "Ada Lovelace", "family_name": "Lovelace",
        "given_name": "Ada", "preferred_username": "ada",
        "picture": "https://img.example.edu/ada.png", "locale": "en-GB",
        "updated_at": int(UPDATED.timestamp()),
    }


def test_naive_updated_at_is_read_as_utc() -> None:
    user = make_user(updated_at=UPDATED.replace(tzinfo=None))
    assert released_claims(user, ["profile"])["updated_at"] == int(UPDATED.timestamp())


@pytest.mark.parametrize(("scope", "expected"), [
    ("email", {"email": "ada@example.edu", "email_verified": True}),
    ("phone", {"phone_number": "+44 20 7946 0000", "phone_number_verified": False}),
    ("address", {"address": {"locality": "London", "country": "GB"}}),
    ("offline_access", {}),
])
def test_each_standard_scope_releases_only_its_claims(scope: str,
                                                      expected: dict[str, Any]) -> None:
    claims = released_claims(make_user(), [scope])
    assert claims == {"sub": make_user().id, **expected}


def test_missing_values_are_omitted_not_null() -> None:
    user = make_user(email=None, email_verified=False, name=None, claims={})
    claims = released_claims(user, ["profile", "email", "phone", "address"])
    assert None not in claims.values()
    assert "email" not in claims and "email_verified" not in claims
    assert "name" not in claims and claims["given_name"] == "Ada"


def test_operator_scope_releases_its_listed_claims_from_user_claims() -> None:
    roster = IdentityScope(name="roster.read", claims=["grade", "school_id", "missing"])
    claims = released_claims(make_user(), ["openid", "roster.read"], [roster])
    assert claims == {"sub": make_user().id, "grade": "12", "school_id": "s-42"}
    # not granted: not released
    assert "grade" not in released_claims(make_user(), ["openid"], [roster])


def test_user_data_cannot_set_protocol_claims() -> None:
    forged = IdentityScope(name="forge", claims=["iss", "sub", "aud", "nonce"])
    user = make_user(claims={"iss": "https://evil.example", "sub": "admin", "nonce": "n"})
    assert released_claims(user, ["forge"], [forged]) == {"sub": user.id}


def test_unknown_scope_releases_nothing() -> None:
    assert released_claims(make_user(), ["roster.write"]) == {"sub": make_user().id}


def test_supported_claims_cover_every_scope_and_operator_claims() -> None:
    names = supported_claims([IdentityScope(name="roster.read", claims=["grade", "iss"])])
    for scope_claims in SCOPE_CLAIMS.values():
        assert set(scope_claims) <= set(names)
    assert "grade" in names and "sub" in names
    assert len(names) == len(set(names))
