"""Validation of authorization requests (RFC 6749 4.1.1, 4.1.2.1, 3.1.2; RFC 9700 2.1,
4.1; OIDC Core 3.1.2) and where their errors go."""

from __future__ import annotations

from typing import Any

import pytest
from oauth_harness import Flow, pkce_pair, query_of
from starlette.datastructures import QueryParams

from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.authorization import (
    AuthorizationError,
    validate_authorization_request,
)

LMS = {"response_type": "code", "client_id": "lms",
       "redirect_uri": "https://lms.example.edu/callback", "scope": "openid profile"}


def assert_error_page(response: Any) -> None:
    """An error shown to the user, never a redirect to the client."""
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"


def assert_redirected_error(flow: Flow, response: Any, error: str,
                            to: str = "https://lms.example.edu/callback",
                            state: str | None = "st") -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(to + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["iss"] == flow.ctx.issuer
    assert query.get("state") == state
    assert "code" not in query
    return query


# ------------------------------------------------------------ errors that never redirect
@pytest.mark.parametrize("params", [
    {**LMS, "client_id": "nobody"},
    {k: v for k, v in LMS.items() if k != "client_id"},
    {**LMS, "redirect_uri": "https://evil.example/callback"},
    {**LMS, "redirect_uri": "https://lms.example.edu/callback/"},
    {**LMS, "redirect_uri": "https://lms.example.edu/callback?x=1"},
    {**LMS, "redirect_uri": "https://LMS.example.edu/callback"},
    {**LMS, "client_id": "mobile", "redirect_uri": "http://localhost:5000/callback"},
    {**LMS, "client_id": "mobile", "redirect_uri": "http://127.0.0.1:5000/other"},
    {**LMS, "client_id": "mobile", "redirect_uri": "http://127.0.0.1:5000/callback#x"},
    # mobile has two redirect URIs: it must say which
    {k: v for k, v in LMS.items() if k != "redirect_uri"} | {"client_id": "mobile"},
    # reports has none at all
    {**LMS, "client_id": "reports"},
])
async def test_unknown_client_or_unregistered_redirect_gets_an_error_page(
        flow: Flow, params: dict[str, str]) -> None:
    assert_error_page(await flow.authorize(**params, state="st"))


async def test_repeated_client_id_or_redirect_uri_gets_an_error_page(flow: Flow) -> None:
    for name in ("client_id", "redirect_uri"):
        query = "&".join(f"{k}={v}" for k, v in LMS.items())
        query += f"&{name}={LMS[name]}"
        assert_error_page(await flow.http.get(f"/oauth2/authorize?{query}"))


# ------------------------------------------------------------ errors sent to the client
async def test_implicit_is_not_supported(flow: Flow) -> None:
    for response_type in ("token", "id_token token", "code id_token"):
        response = await flow.authorize(**{**LMS, "response_type": response_type},
                                        state="st")
        assert_redirected_error(flow, response, "unsupported_response_type")


async def test_missing_response_type(flow: Flow) -> None:
    params = {k: v for k, v in LMS.items() if k != "response_type"}
    assert_redirected_error(flow, await flow.authorize(**params, state="st"),
                            "invalid_request")


@pytest.mark.parametrize("scope", ["openid roster.read", "openid admin", "", "address"])
async def test_scopes_the_client_may_not_have(flow: Flow, scope: str) -> None:
    response = await flow.authorize(**{**LMS, "scope": scope}, state="st")
    assert_redirected_error(flow, response, "invalid_scope")


@pytest.mark.parametrize("extra", [
    {"response_mode": "fragment"},
    {"response_mode": "form_post"},
    {"prompt": "none login"},
    {"max_age": "ten"},
    {"max_age": "-1"},
])
async def test_bad_openid_parameters(flow: Flow, extra: dict[str, str]) -> None:
    assert_redirected_error(flow, await flow.authorize(**LMS, **extra, state="st"),
                            "invalid_request")


async def test_request_objects_are_not_supported(flow: Flow) -> None:
    response = await flow.authorize(**LMS, request="eyJhbGciOiJub25lIn0.e30.", state="st")
    assert_redirected_error(flow, response, "request_not_supported")
    response = await flow.authorize(**LMS, request_uri="https://lms.example.edu/r/1",
                                    state="st")
    assert_redirected_error(flow, response, "request_uri_not_supported")


async def test_repeated_parameters_are_invalid_request(flow: Flow) -> None:
    base = "&".join(f"{k}={v}" for k, v in LMS.items()) + "&state=st"
    for repeated in ("nonce=a&nonce=b", "prompt=login&prompt=consent",
                     "code_challenge_method=S256&code_challenge_method=S256"):
        response = await flow.http.get(f"/oauth2/authorize?{base}&{repeated}")
        assert_redirected_error(flow, response, "invalid_request")
    # Authlib checks these five before anything else, and shows the page
    for repeated in ("scope=openid", "state=st", "response_type=code"):
        response = await flow.http.get(f"/oauth2/authorize?{base}&{repeated}")
        assert_error_page(response)


async def test_error_without_state_has_none(flow: Flow) -> None:
    response = await flow.authorize(**{**LMS, "scope": "admin"})
    assert_redirected_error(flow, response, "invalid_scope", state=None)


# ------------------------------------------------------------ accepted requests
async def test_loopback_redirect_may_use_any_port(flow: Flow) -> None:
    _, challenge = pkce_pair()
    for uri in ("http://127.0.0.1/callback", "http://127.0.0.1:51004/callback"):
        response = await flow.authorize(
            response_type="code", client_id="mobile", redirect_uri=uri, scope="openid",
            code_challenge=challenge, code_challenge_method="S256", state="st")
        assert response.status_code == 303
        assert response.headers["location"].startswith(uri + "?code=")


async def test_private_use_scheme_redirect(flow: Flow) -> None:
    _, challenge = pkce_pair()
    response = await flow.authorize(
        response_type="code", client_id="mobile", redirect_uri="edu.example.app:/cb",
        scope="openid", code_challenge=challenge, code_challenge_method="S256")
    assert response.headers["location"].startswith("edu.example.app:/cb?code=")


async def test_unknown_parameters_are_ignored(flow: Flow) -> None:
    response = await flow.authorize(**LMS, state="st", foo="bar", claims_locales="de")
    assert response.status_code == 303
    assert "code" in query_of(response.headers["location"])


async def test_validated_request(identity_ctx: IdentityContext) -> None:
    _, challenge = pkce_pair()
    params = QueryParams({**LMS, "scope": "openid email openid", "state": "xyz",
                          "nonce": "n1", "prompt": "login consent unknown",
                          "max_age": "300", "login_hint": "alice",
                          "ui_locales": "en-GB fr", "code_challenge": challenge,
                          "code_challenge_method": "S256", "extra": "1"})
    req = await validate_authorization_request(identity_ctx, params)
    assert req.client.client_id == "lms"
    assert req.redirect_uri == "https://lms.example.edu/callback"
    assert req.response_type == "code" and req.response_mode == "query"
    assert req.scopes == ("openid", "email")
    assert (req.state, req.nonce, req.login_hint) == ("xyz", "n1", "alice")
    assert req.prompt == frozenset({"login", "consent"})
    assert req.max_age == 300
    assert req.ui_locales == ("en-GB", "fr")
    assert (req.code_challenge, req.code_challenge_method) == (challenge, "S256")
    assert req.params["extra"] == "1"


async def test_redirect_uri_defaults_to_the_only_registered_one(
        identity_ctx: IdentityContext) -> None:
    params = {k: v for k, v in LMS.items() if k != "redirect_uri"}
    req = await validate_authorization_request(identity_ctx, params)
    assert req.redirect_uri == "https://lms.example.edu/callback"


async def test_validation_error_carries_where_to_go(identity_ctx: IdentityContext) -> None:
    with pytest.raises(AuthorizationError) as raised:
        await validate_authorization_request(identity_ctx, {**LMS, "scope": "admin",
                                                            "state": "s"})
    assert raised.value.error == "invalid_scope"
    assert raised.value.redirect_uri == "https://lms.example.edu/callback"
    assert raised.value.state == "s"
    with pytest.raises(AuthorizationError) as raised:
        await validate_authorization_request(identity_ctx, {**LMS, "client_id": "x"})
    assert raised.value.redirect_uri is None
