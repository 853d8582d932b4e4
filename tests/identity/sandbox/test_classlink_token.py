"""ClassLink's token request at ``/oauth2/v2/token`` (identity/classlink/token.py):
the form ClassLink's libraries post, the standard form, and the errors."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from joserfc import jwt
from sandbox_kit import CLASSIC_CALLBACK, SECRETS

from campusgate.identity.classlink.token import classlink_body, standard_form
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.server import HttpRequest

TOKEN = "/oauth2/v2/token"


def _http(*params: tuple[str, str], **headers: str) -> HttpRequest:
    return HttpRequest("POST", "http://localhost:8080" + TOKEN, headers, params)


# ---------------------------------------------------------------- sans-IO


def test_classlink_form_becomes_the_standard_request() -> None:
    http = standard_form(_http(("code", "c1"), ("client_id", "lms"),
                               ("client_secret", "s:e/cret")),
                         code_redirect_uri=CLASSIC_CALLBACK,
                         registered_method="client_secret_post")
    assert dict(http.params) == {"code": "c1", "client_id": "lms",
                                 "client_secret": "s:e/cret",
                                 "grant_type": "authorization_code",
                                 "redirect_uri": CLASSIC_CALLBACK}
    assert "authorization" not in http.headers


def test_a_secret_in_the_form_of_a_basic_client_moves_into_the_header() -> None:
    http = standard_form(_http(("code", "c1"), ("client_id", "lms"),
                               ("client_secret", "s:e/cret")),
                         code_redirect_uri=None, registered_method="client_secret_basic")
    assert "client_secret" not in dict(http.params)
    scheme, _, value = http.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "lms:s%3Ae%2Fcret"


@pytest.mark.parametrize("given", [
    (("grant_type", "refresh_token"),),
    (("redirect_uri", "https://elsewhere.example/cb"),),
])
def test_what_the_request_says_is_kept(given: tuple[tuple[str, str], ...]) -> None:
    http = standard_form(_http(("code", "c1"), ("client_id", "lms"), *given),
                         code_redirect_uri=CLASSIC_CALLBACK, registered_method="none")
    assert [p for p in http.params if p[0] == given[0][0]] == list(given)


def test_an_authorization_header_is_left_alone() -> None:
    http = standard_form(_http(("client_id", "lms"), ("client_secret", "x"),
                               Authorization="Basic Zm9vOmJhcg=="),
                         code_redirect_uri=None, registered_method="client_secret_basic")
    assert http.headers["authorization"] == "Basic Zm9vOmJhcg=="
    assert dict(http.params)["client_secret"] == "x"


def test_classlink_body_has_classlinks_fields_and_expires_in() -> None:
    body = classlink_body({"access_token": "a", "token_type": "bearer", "expires_in": 3600,
                           "scope": "openid profile", "id_token": "i",
                           "refresh_token": "r"})
    assert body == {"access_token": "a", "token_type": "Bearer", "id_token": "i",
                    "expires_in": 3600, "response_type": "code"}


# ---------------------------------------------------------------- the endpoint


async def _classlink_post(http: httpx.AsyncClient, code: str, client_id: str = "classic",
                          secret: str | None = None) -> httpx.Response:
    """Exactly what ClassLink's libraries send: a form of code, client_id, secret."""
    return await http.post(TOKEN, data={
        "code": code, "client_id": client_id,
        "client_secret": secret if secret is not None else SECRETS[client_id]})


async def test_classlink_form_gets_classlinks_answer(
        http: httpx.AsyncClient, issue: Any, ben: User, sandbox_ctx: IdentityContext) -> None:
    answer = await _classlink_post(http, await issue(ben, scope="profile email"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "response_type", "id_token",
                         "expires_in"}
    assert (body["token_type"], body["response_type"]) == ("Bearer", "code")
    assert body["expires_in"] == 3600
    assert answer.headers["cache-control"] == "no-store"
    id_token = jwt.decode(body["id_token"], sandbox_ctx.keys.key_set())
    assert id_token.claims["sub"] == ben.id
    assert id_token.claims["aud"] == "classic"
    assert id_token.claims["email"] == "ben@lincoln.example.edu"


async def test_a_basic_client_may_post_its_secret_like_classlink(
        http: httpx.AsyncClient, issue: Any, ben: User) -> None:
    answer = await _classlink_post(http, await issue(ben, client_id="lms"), "lms")
    assert answer.status_code == 200, answer.text


async def test_the_standard_form_works_too(
        http: httpx.AsyncClient, issue: Any, ben: User) -> None:
    code = await issue(ben, client_id="lms", scope="full")
    answer = await http.post(TOKEN, data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": "https://lms.example.edu/callback"},
        auth=("lms", SECRETS["lms"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["response_type"] == "code"


async def test_basic_credentials_without_redirect_uri_or_grant_type(
        http: httpx.AsyncClient, issue: Any, ben: User) -> None:
    code = await issue(ben, client_id="lms")
    answer = await http.post(TOKEN, data={"code": code}, auth=("lms", SECRETS["lms"]))
    assert answer.status_code == 200, answer.text


async def test_a_code_is_used_once(http: httpx.AsyncClient, issue: Any, ben: User) -> None:
    code = await issue(ben)
    first = await _classlink_post(http, code)
    again = await _classlink_post(http, code)
    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    # the replay revoked what the first redemption produced (RFC 6749 4.1.2)
    info = await http.get("/v2/my/info", headers={
        "Authorization": f"Bearer {first.json()['access_token']}"})
    assert info.status_code == 401


async def test_a_wrong_secret_is_invalid_client(http: httpx.AsyncClient, issue: Any,
                                                ben: User) -> None:
    answer = await _classlink_post(http, await issue(ben), secret="wrong-secret-0123456789")
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    assert "Traceback" not in answer.text


async def test_a_code_of_another_client_is_refused(http: httpx.AsyncClient, issue: Any,
                                                   ben: User) -> None:
    answer = await _classlink_post(http, await issue(ben, client_id="lms"), "classic")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(("code", "error"), [(None, "invalid_request"),
                                           ("", "invalid_grant")])
async def test_a_missing_code_is_refused(http: httpx.AsyncClient, code: str | None,
                                         error: str) -> None:
    form = {"client_id": "classic", "client_secret": SECRETS["classic"]}
    if code is not None:
        form["code"] = code
    answer = await http.post(TOKEN, data=form)
    assert (answer.status_code, answer.json()["error"]) == (400, error), answer.text


async def test_an_unknown_code_is_invalid_grant(http: httpx.AsyncClient) -> None:
    answer = await _classlink_post(http, "no-such-code")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


async def test_a_json_body_is_invalid_request(http: httpx.AsyncClient) -> None:
    answer = await http.post(TOKEN, json={"code": "x", "client_id": "classic"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
