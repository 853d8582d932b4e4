"""The sso plugin in front of a real upstream, behind a real ``campusgate serve`` whose
own identity provider is the OpenID provider (plugins/sso.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from identity_harness import ServedGateway
from joserfc import jwt
from joserfc.jwk import OctKey
from sso_harness import JWT_SECRET, Browser, echo_upstream, sso_gateway

from campusgate.keyring import load_keyring
from campusgate.plugins._sso_session import Session, SessionCodec


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    with echo_upstream() as upstream, \
            sso_gateway(tmp_path_factory.mktemp("sso"), upstream) as served:
        yield served


def echoed(answer: httpx.Response) -> tuple[str, dict[str, str]]:
    """What the upstream received: its path and headers (the last of each name)."""
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    data: dict[str, Any] = answer.json()
    return data["path"], {k: v for k, v in data["headers"]}


def cookie_attributes(answer: httpx.Response, name: str) -> dict[str, str]:
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            attrs = {}
            for part in header.split(";")[1:]:
                key, _, value = part.strip().partition("=")
                attrs[key.lower()] = value
            return attrs
    raise AssertionError(f"no Set-Cookie {name} in {answer.headers.get_list('set-cookie')}")


def test_sign_in_returns_to_the_page_asked_for_with_the_identity(
        gateway: ServedGateway) -> None:
    spoofed = {"x-forwarded-user": "admin", "x-forwarded-role": "administrator",
               "x-identity-token": "forged"}
    with Browser(gateway.proxy) as browser:
        final = browser.visit("/grades/report?term=2", username="kim")
        first, callback = browser.trail[0], browser.trail[-2]
        assert first.status_code == 302
        assert first.headers["location"].startswith(gateway.issuer + "/oauth2/authorize?")
        query = parse_qs(urlsplit(first.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
        assert query["redirect_uri"] == [gateway.proxy + "/grades/_sso/callback"]
        state_cookie = cookie_attributes(first, "campusgate_sso_s_" + query["state"][0][:16])
        assert state_cookie["path"] == "/grades/_sso/callback"
        assert "httponly" in state_cookie and state_cookie["samesite"] == "Lax"

        assert urlsplit(str(callback.url)).path == "/grades/_sso/callback"
        assert callback.status_code == 303
        assert callback.headers["location"] == "/grades/report?term=2"
        session = cookie_attributes(callback, "campusgate_sso")
        assert session["path"] == "/" and "httponly" in session and session["samesite"] == "Lax"
        assert "secure" not in session  # plain http here; https sets Secure

        path, headers = echoed(final)
        assert path == "/report?term=2"
        assert headers["x-forwarded-email"] == "kim@north.example.edu"
        assert headers["x-forwarded-name"] == "Kim Lee"
        assert headers["x-forwarded-role"] == "teacher"
        assert headers["x-forwarded-tenant"] == "2001"
        assert headers["x-forwarded-schools"] == "s-north"

        # signed in: spoofed copies are replaced, the session cookie stays here
        browser.client.cookies.set("theme", "dark")
        _, again = echoed(browser.get("/grades/other", headers=spoofed))
        assert again["x-forwarded-user"] == headers["x-forwarded-user"] != "admin"
        assert again["x-forwarded-role"] == "teacher"
        assert "campusgate_sso" not in again.get("cookie", "")
        assert "theme=dark" in again["cookie"]
        token = jwt.decode(again["x-identity-token"], OctKey.import_key(JWT_SECRET.encode()),
                           algorithms=["HS256"])
        assert token.claims["sub"] == again["x-forwarded-user"]
        assert token.claims["aud"] == "grades" and token.claims["exp"] > time.time()


def test_spoofed_identity_headers_never_reach_the_upstream(gateway: ServedGateway) -> None:
    """Not signed in, on a route that lets the request through to nothing but the
    plugin: even the 302 path is never proxied, and the JSON 401 neither."""
    spoofed = {"x-forwarded-user": "admin", "x-identity-token": "forged",
               "accept": "application/json"}
    answer = httpx.get(f"{gateway.proxy}/grades/x", headers=spoofed)
    assert answer.status_code == 401
    with Browser(gateway.proxy) as browser:
        browser.visit("/grades/", username="sam")
        _, headers = echoed(browser.get("/grades/x", headers={"x-forwarded-user": "admin",
                                                             "X-Forwarded-Groups": "staff"}))
        assert headers["x-forwarded-role"] == "student"
        assert headers["x-forwarded-user"] != "admin"
        assert "x-forwarded-groups" not in headers  # sam has no groups: no header at all


@pytest.mark.parametrize("headers, method", [
    ({"accept": "application/json"}, "GET"),
    ({"x-requested-with": "XMLHttpRequest"}, "GET"),
    ({"accept": "text/html"}, "POST"),
])
def test_api_requests_get_401_json_not_a_redirect(gateway: ServedGateway,
                                                   headers: dict[str, str], method: str) -> None:
    answer = httpx.request(method, f"{gateway.proxy}/grades/api/marks", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "login_required"
    assert answer.headers["www-authenticate"].startswith("SSO ")
    assert 'login_uri="/grades/_sso/login"' in answer.headers["www-authenticate"]


def test_a_teachers_only_route_refuses_a_student_and_keeps_no_session(
        gateway: ServedGateway) -> None:
    with Browser(gateway.proxy) as browser:
        refused = browser.visit("/staff/planning", username="sam")
        assert refused.status_code == 403
        assert "Not allowed" in refused.text and "role" in refused.text
        assert "campusgate_sso" not in browser.client.cookies
    with Browser(gateway.proxy) as browser:
        _, headers = echoed(browser.visit("/staff/planning", username="kim"))
        assert headers["x-forwarded-role"] == "teacher"


def test_logout_clears_the_session_and_ends_the_provider_session(
        gateway: ServedGateway) -> None:
    with Browser(gateway.proxy) as browser:
        echoed(browser.visit("/grades/", username="kim"))
        answer = browser.get("/grades/_sso/logout")
        assert answer.status_code == 302
        assert cookie_attributes(answer, "campusgate_sso")["max-age"] == "0"
        target = urlsplit(answer.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == (
            gateway.issuer + "/oauth2/logout")
        query = parse_qs(target.query)
        assert query["post_logout_redirect_uri"] == [gateway.proxy + "/grades/"]
        assert query["id_token_hint"] and query["client_id"] == ["grades-sso"]
        assert "campusgate_sso" not in browser.client.cookies
        # the provider signs out and sends the browser back, which must sign in again
        back = browser.visit(answer.headers["location"])
        assert "password" in back.text and urlsplit(str(back.url)).path != "/grades/"


def test_a_tampered_or_expired_cookie_means_signing_in_again(gateway: ServedGateway) -> None:
    with Browser(gateway.proxy) as browser:
        echoed(browser.visit("/grades/", username="kim"))
        value = browser.client.cookies["campusgate_sso"]
        browser.client.cookies.clear()
        browser.client.cookies.set("campusgate_sso", value[:-3] + ("AAA" if value[-3:] != "AAA"
                                                                    else "BBB"))
        assert browser.get("/grades/").status_code == 302

    # a cookie sealed with the installation's own key, but past its lifetime
    keyring = load_keyring(gateway.workdir / "data" / "secret.key", create=False)
    codec = SessionCodec(keyring.subkey("sso-cookies"),
                         f"{gateway.issuer}\x00grades-sso\x00campusgate_sso")
    now = time.time()
    claims = {"sub": "u1", "role": "teacher"}
    expired = Session(claims, now - 7200, now - 60, now - 60).seal(codec)
    valid = Session(claims, now, now + 60, now).seal(codec)
    assert expired is not None and valid is not None
    for cookie, status in ((expired, 302), (valid, 200)):
        answer = httpx.get(f"{gateway.proxy}/grades/", cookies={"campusgate_sso": cookie},
                           headers={"accept": "text/html"})
        assert answer.status_code == status


@pytest.mark.parametrize("rd", ["https://evil.example/", "//evil.example/x",
                                "/\\evil.example/", "/grades/ok?x=1"])
def test_the_return_url_never_leaves_the_site(gateway: ServedGateway, rd: str) -> None:
    with Browser(gateway.proxy) as browser:
        final = browser.visit(f"/grades/_sso/login?{httpx.QueryParams(rd=rd)}",
                              username="kim")
        path, _ = echoed(final)
        assert urlsplit(str(final.url)).netloc == urlsplit(gateway.proxy).netloc
        assert path == ("/ok?x=1" if rd.startswith("/grades") else "/")


def test_a_forged_or_replayed_callback_is_refused(gateway: ServedGateway) -> None:
    answer = httpx.get(f"{gateway.proxy}/grades/_sso/callback?code=abc&state=made-up",
                       headers={"accept": "text/html"})
    assert answer.status_code == 400 and "Sign-in expired" in answer.text
    assert "/grades/_sso/login" in answer.text


def test_the_provider_down_gives_a_503_page_naming_the_cause(gateway: ServedGateway) -> None:
    page = httpx.get(f"{gateway.proxy}/down/x", headers={"accept": "text/html"})
    assert page.status_code == 503 and page.headers["retry-after"]
    assert "text/html" in page.headers["content-type"]
    assert "could not be reached" in page.text and "Traceback" not in page.text
    api = httpx.get(f"{gateway.proxy}/down/x", headers={"accept": "application/json"})
    assert api.status_code == 401  # no session: an API call is told to sign in
    login = httpx.get(f"{gateway.proxy}/down/_sso/login", headers={"accept": "application/json"})
    assert login.status_code == 503
    assert json.loads(login.text)["error"]["code"] == "provider_unavailable"
