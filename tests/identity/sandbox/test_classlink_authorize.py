"""ClassLink's authorization request at ``/oauth2/v2/auth``
(identity/classlink/authorize.py), and the sandbox switched off."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from identity_harness import identity_config, sealed
from sandbox_kit import CLASSIC_CALLBACK, sandbox_config

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.config.model import Entities
from campusgate.identity.classlink.authorize import translate_authorization
from campusgate.identity.context import IdentityContext
from campusgate.identity.discovery import provider_metadata
from campusgate.identity.models import User
from campusgate.identity.oauth.authorization import (
    ECHO_RESPONSE_TYPE,
    issue_code,
    validate_authorization_request,
)
from campusgate.keyring import Keyring
from campusgate.proxy.snapshot import with_identity_service


@pytest.mark.parametrize(("scope", "expected"), [
    ("profile", "openid profile"),
    ("email", "openid email"),
    ("oneroster", "openid roster"),
    ("openid", "openid"),
    ("full", "openid profile email roster"),
    ("profile oneroster profile", "openid profile roster"),
    ("profile roster.read", "openid profile roster.read"),  # not ClassLink's: as it is
    ("", "openid"),
])
def test_classlink_scopes_become_campusgate_scopes(scope: str, expected: str) -> None:
    params = translate_authorization([("client_id", "x"), ("scope", scope)],
                                     ClassLinkSandbox())
    assert params == [("client_id", "x"), ("scope", expected), (ECHO_RESPONSE_TYPE, "1")]


def test_the_scope_map_is_the_operators() -> None:
    sandbox = ClassLinkSandbox(scopes={"profile": ["profile", "email"]})
    assert sandbox.translate_scope("profile oneroster") == "openid profile email oneroster"


def test_repeated_scopes_stay_repeated_and_a_forged_marker_is_dropped() -> None:
    params = translate_authorization(
        [("scope", "profile"), ("scope", "email"), (ECHO_RESPONSE_TYPE, "x")],
        ClassLinkSandbox())
    assert params == [("scope", "openid profile"), ("scope", "openid email"),
                      (ECHO_RESPONSE_TYPE, "1")]


def _classlink_query(**overrides: str) -> dict[str, str]:
    """What ClassLink's libraries put in the URL (no state, no PKCE)."""
    return {"client_id": "classic", "scope": "profile", "redirect_uri": CLASSIC_CALLBACK,
            "response_type": "code", **overrides}


async def test_the_request_goes_on_to_the_authorization_endpoint(
        http: httpx.AsyncClient) -> None:
    answer = await http.get("/oauth2/v2/auth", params=_classlink_query(
        scope="full", state="s-1"))
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == "/oauth2/authorize"
    assert dict(parse_qsl(target.query)) == {
        **_classlink_query(scope="openid profile email roster", state="s-1"),
        ECHO_RESPONSE_TYPE: "1"}
    login = await http.get(answer.headers["location"])  # not signed in: the login page
    assert login.status_code == 303
    assert urlsplit(login.headers["location"]).path == "/oauth2/login"


async def test_a_scope_the_client_may_not_have_goes_back_as_invalid_scope(
        http: httpx.AsyncClient) -> None:
    answer = await http.get("/oauth2/v2/auth", params=_classlink_query(
        scope="profile roster.read", state="s-2"))
    refused = await http.get(answer.headers["location"])
    assert refused.status_code == 303
    back = urlsplit(refused.headers["location"])
    assert back.geturl().startswith(CLASSIC_CALLBACK)
    assert parse_qs(back.query)["error"] == ["invalid_scope"]
    assert parse_qs(back.query)["state"] == ["s-2"]


async def test_an_unregistered_redirect_uri_is_an_error_page(
        http: httpx.AsyncClient) -> None:
    answer = await http.get("/oauth2/v2/auth", params=_classlink_query(
        redirect_uri="https://evil.example/code"))
    page = await http.get(answer.headers["location"])
    assert page.status_code == 400
    assert "location" not in page.headers


async def test_the_code_comes_back_with_response_type_code(
        sandbox_ctx: IdentityContext, ben: User) -> None:
    sandbox = sandbox_ctx.config.classlink_sandbox
    assert sandbox is not None
    request = await validate_authorization_request(sandbox_ctx, dict(
        translate_authorization(_classlink_query(state="s-3").items(), sandbox)))
    answer = await issue_code(sandbox_ctx, request, ben, sandbox_ctx.now(), None)
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    assert back["response_type"] == ["code"]
    assert back["state"] == ["s-3"]
    assert back["code"]


async def test_a_standard_request_gets_no_response_type_back(
        sandbox_ctx: IdentityContext, ben: User) -> None:
    request = await validate_authorization_request(sandbox_ctx, {
        **_classlink_query(scope="openid profile")})
    answer = await issue_code(sandbox_ctx, request, ben, sandbox_ctx.now(), None)
    assert "response_type" not in parse_qs(urlsplit(answer.headers["location"]).query)


# ---------------------------------------------------------------- switched off


@pytest.mark.parametrize("sandbox", [None, {"enabled": False}])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/oauth2/v2/auth"), ("POST", "/oauth2/v2/token"), ("GET", "/v2/my/info"),
    ("GET", "/v2/my/profileinfo"), ("GET", "/v2/my/district"),
    ("GET", "/v2/oneroster/my/info"), ("GET", "/v2/oneroster/my/classes"),
    ("GET", "/v2/oneroster/my/classes/cls-bio/students"),
])
async def test_without_the_sandbox_its_paths_are_404(
        sandbox_ctx: IdentityContext, keyring: Keyring, http: httpx.AsyncClient,
        sandbox: dict[str, Any] | None, method: str, path: str) -> None:
    config = sandbox_config(**(sandbox or {})).model_dump(exclude_none=True)
    if sandbox is None:
        del config["classlink_sandbox"]
    sandbox_ctx.update(sealed(type(sandbox_ctx.config).model_validate(config), keyring))
    answer = await http.request(method, path, params=_classlink_query(),
                                headers={"Authorization": "Bearer x"})
    assert answer.status_code == 404


def test_the_proxy_routes_the_data_api_only_with_the_sandbox() -> None:
    def paths(identity: Any) -> list[str]:
        services = with_identity_service(Entities(identity=identity))
        return [p for s in services for r in s.routes for p in r.paths]

    assert paths(identity_config(issuer="https://id.example.edu/idp",
                                 classlink_sandbox={})) == [
        "/idp/oauth2", "/idp/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/idp", "/idp/v2/my", "/idp/v2/oneroster"]
    for off in ({"classlink_sandbox": {"enabled": False}}, {}):
        assert not any("/v2/" in p for p in paths(identity_config(**off)))


def test_discovery_is_the_same_with_or_without_the_sandbox() -> None:
    assert provider_metadata(identity_config(classlink_sandbox={})) == \
        provider_metadata(identity_config())
