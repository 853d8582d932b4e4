"""The answers of the authorization endpoint (RFC 6749 4.1.2, 4.1.2.1; RFC 9207)."""

from __future__ import annotations

from oauth_harness import SID, Flow, pkce_pair, query_of
from starlette.datastructures import QueryParams

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.authorization import (
    error_response,
    issue_code,
    validate_authorization_request,
)
from campusgate.identity.oauth.grants.authorization_code import CODE_KIND
from campusgate.identity.tokens import token_digest

LMS = {"response_type": "code", "client_id": "lms",
       "redirect_uri": "https://lms.example.edu/callback", "scope": "openid profile"}


async def test_code_redirect_carries_state_and_issuer(flow: Flow) -> None:
    response = await flow.authorize(**LMS, state="af0ifjsldkj")
    assert response.status_code == 303
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith("https://lms.example.edu/callback?code=")
    query = query_of(location)
    assert query["state"] == "af0ifjsldkj"
    assert query["iss"] == "http://localhost:8080"
    assert len(query["code"]) >= 43


async def test_state_is_left_out_when_not_sent(flow: Flow) -> None:
    response = await flow.authorize(**LMS)
    assert "state" not in query_of(response.headers["location"])


async def test_existing_query_of_the_redirect_uri_is_kept(
        flow: Flow, identity_ctx: IdentityContext, alice: User) -> None:
    config = identity_ctx.config.model_copy(deep=True)
    config.clients[0].redirect_uris.append("https://lms.example.edu/cb?tenant=7")
    identity_ctx.update(config)
    req = await validate_authorization_request(
        identity_ctx, {**LMS, "redirect_uri": "https://lms.example.edu/cb?tenant=7"})
    response = await issue_code(identity_ctx, req, alice, identity_ctx.now(), None)
    query = query_of(response.headers["location"])
    assert query["tenant"] == "7" and "code" in query


async def test_code_record_holds_what_the_token_endpoint_needs(
        identity_ctx: IdentityContext, alice: User) -> None:
    _, challenge = pkce_pair()
    params = QueryParams({**LMS, "nonce": "n1", "code_challenge": challenge,
                          "code_challenge_method": "S256"})
    req = await validate_authorization_request(identity_ctx, params)
    response = await issue_code(identity_ctx, req, alice, 1_799_999_000, SID,
                                amr=["pwd", "mfa"])
    code = query_of(response.headers["location"])["code"]
    record = await identity_ctx.ephemeral.get(CODE_KIND, token_digest(code))
    assert record is not None
    assert record["client_id"] == "lms" and record["user_id"] == alice.id
    assert record["redirect_uri"] == "https://lms.example.edu/callback"
    assert record["scope"] == "openid profile" and record["nonce"] == "n1"
    assert record["auth_time"] == 1_799_999_000 and record["sid"] == SID
    assert record["amr"] == ["pwd", "mfa"]
    assert (record["code_challenge"], record["code_challenge_method"]) == (challenge, "S256")
    assert record["expires_at"] == identity_ctx.now() + identity_ctx.config.code_lifetime


async def test_error_response_for_decisions_on_the_user_side(
        identity_ctx: IdentityContext) -> None:
    req = await validate_authorization_request(identity_ctx, {**LMS, "state": "s 1"})
    for error in ("login_required", "consent_required", "access_denied",
                  "interaction_required"):
        response = error_response(identity_ctx, req, error, "The user is not signed in.")
        assert response.status_code == 303
        query = query_of(response.headers["location"])
        assert query == {"error": error, "error_description": "The user is not signed in.",
                         "state": "s 1", "iss": identity_ctx.issuer}
