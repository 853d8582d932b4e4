"""Sign in with ClassLink, end to end: an app -> campusgate's login page -> the
ClassLink button -> the ClassLink stand-in -> back -> consent -> the app gets
campusgate's tokens (with a refresh token and roster claims).  Over real sockets,
against ``campusgate serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from classlink_standin import CLIENT_SECRET, ClassLinkStandIn
from identity_harness import ServedGateway, pkce, serve_gateway
from sources_harness import (
    APP_CALLBACK,
    APP_LAUNCH,
    APP_SECRET,
    Stop,
    browse,
    identity_yaml,
    source_buttons,
)


def app_request(gateway: ServedGateway, challenge: str, nonce: str = "app-nonce") -> str:
    query = httpx.QueryParams(response_type="code", client_id="quiz",
                              redirect_uri=APP_CALLBACK, state="app-state", nonce=nonce,
                              scope="openid profile email offline_access roster",
                              code_challenge=challenge, code_challenge_method="S256")
    return f"{gateway.issuer}/oauth2/authorize?{query}"


def redeem(gateway: ServedGateway, landing: httpx.URL, verifier: str) -> dict[str, Any]:
    assert str(landing).startswith(APP_CALLBACK), landing
    assert landing.params["state"] == "app-state"
    answer = httpx.post(f"{gateway.issuer}/oauth2/token", auth=("quiz", APP_SECRET), data={
        "grant_type": "authorization_code", "code": landing.params["code"],
        "redirect_uri": APP_CALLBACK, "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def userinfo(gateway: ServedGateway, access_token: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.issuer}/oauth2/userinfo",
                       headers={"Authorization": f"Bearer {access_token}"})
    assert answer.status_code == 200, answer.text
    claims: dict[str, Any] = answer.json()
    return claims


def sign_in(gateway: ServedGateway, button: str = "Sign in with ClassLink"
            ) -> dict[str, Any]:
    verifier, challenge = pkce()
    with httpx.Client(base_url=gateway.issuer) as browser:
        landing = browse(browser, app_request(gateway, challenge), button=button)
    return redeem(gateway, landing, verifier)


def stopped(gateway: ServedGateway, button: str = "Sign in with ClassLink") -> httpx.Response:
    """Where a sign-in that should fail ends: the page the person sees."""
    _, challenge = pkce()
    with httpx.Client(base_url=gateway.issuer) as browser, pytest.raises(Stop) as stop:
        browse(browser, app_request(gateway, challenge), button=button)
    return stop.value.response


def test_the_login_page_offers_each_source(gateway: ServedGateway) -> None:
    _, challenge = pkce()
    with httpx.Client(base_url=gateway.issuer, follow_redirects=True) as browser:
        page = browser.get(app_request(gateway, challenge))
    assert set(source_buttons(page.text)) == {"Sign in with ClassLink",
                                              "Sign in with Springfield Schools"}
    assert 'name="password"' in page.text  # the local form stays


def test_a_classlink_teacher_gets_campusgate_tokens_with_roster_claims(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    tokens = sign_in(gateway)
    assert tokens["refresh_token"] and tokens["id_token"]
    claims = userinfo(gateway, tokens["access_token"])
    assert claims["role"] == "teacher"
    assert claims["tenant_id"] == "2001"
    assert claims["district"] == "Springfield Public Schools"
    assert claims["school_ids"] == ["school-shs"]
    assert claims["class_ids"] == ["class-math-7", "class-sci-7"]
    assert claims["grades"] == ["07", "08"]  # from /v2/oneroster/my/info
    assert claims["email"] == "ada@springfield.k12.us"
    assert claims["name"] == "Ada Lovelace"
    # campusgate asked as a confidential client with PKCE, state and nonce...
    (asked,) = standin.auth_requests
    assert asked["code_challenge_method"] == "S256" and asked["state"] and asked["nonce"]
    # ...and redeemed the code the way ClassLink's libraries do, plus the standard fields.
    (form,) = standin.token_requests
    assert form["client_secret"] == "standin-client-secret-0123456789"
    assert form["grant_type"] == "authorization_code" and form["code_verifier"]
    # the refresh token works (ClassLink itself has none)
    refreshed = httpx.post(f"{gateway.issuer}/oauth2/token", auth=("quiz", APP_SECRET),
                           data={"grant_type": "refresh_token",
                                 "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text


def test_a_second_sign_in_is_the_same_account_with_fresh_roster_data(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    first = userinfo(gateway, sign_in(gateway)["access_token"])
    standin.person["Role"] = "Tenant Administrator"
    second = userinfo(gateway, sign_in(gateway)["access_token"])
    assert second["sub"] == first["sub"]
    assert second["role"] == "administrator"


def test_a_failing_oneroster_record_signs_in_without_grades(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    standin.person["TenantId"] = 2003  # a new account: no grades from before
    standin.misbehave.roster_info_status = 500
    claims = userinfo(gateway, sign_in(gateway)["access_token"])
    assert claims["tenant_id"] == "2003" and claims["role"] == "teacher"
    assert "grades" not in claims
    assert claims["class_ids"] == ["class-math-7", "class-sci-7"]


def test_the_same_sourced_id_in_another_district_is_another_person(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    first = userinfo(gateway, sign_in(gateway)["access_token"])
    standin.person["TenantId"] = 2002
    other = userinfo(gateway, sign_in(gateway)["access_token"])
    assert other["sub"] != first["sub"]
    assert other["tenant_id"] == "2002"
    assert other["preferred_username"] == "alovelace@2002"  # the name was taken


def test_a_launchpad_tile_starts_a_fresh_sign_in_and_lands_in_the_app(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    with httpx.Client(base_url=gateway.issuer) as browser:
        landing = browse(browser, "/oauth2/sources/classlink/launch?client_id=quiz")
        assert str(landing).startswith(APP_LAUNCH)
        assert landing.params["iss"] == gateway.issuer
        # the app's login now needs no password: the browser is signed in
        verifier, challenge = pkce()
        back = browse(browser, app_request(gateway, challenge), button="(none)")
    assert redeem(gateway, back, verifier)["refresh_token"]


def test_a_code_sent_straight_to_the_callback_is_dropped_for_a_fresh_sign_in(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    with httpx.Client(base_url=gateway.issuer) as browser:
        answer = browser.get("/oauth2/sources/classlink/callback?code=planted&response_type=code")
    assert answer.status_code == 303
    fresh = httpx.URL(answer.headers["location"])
    assert fresh.path == "/oauth2/v2/auth" and fresh.params["state"]
    assert standin.token_requests == []  # the planted code was never redeemed
    nothing = httpx.get(f"{gateway.issuer}/oauth2/sources/classlink/callback?state=made-up")
    assert nothing.status_code == 400 and "cannot be used" in nothing.text
    unknown = httpx.get(f"{gateway.issuer}/oauth2/sources/nope/launch")
    assert unknown.status_code == 404


def test_a_callback_from_another_browser_is_not_accepted(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    _, challenge = pkce()
    with httpx.Client(base_url=gateway.issuer, follow_redirects=True) as attacker:
        page = attacker.get(app_request(gateway, challenge))
        start = attacker.get(source_buttons(page.text)["Sign in with ClassLink"],
                             follow_redirects=False)
        to_standin = attacker.get(start.headers["location"], follow_redirects=False)
    callback = to_standin.headers["location"]  # the attacker's own code and state
    with httpx.Client(base_url=gateway.issuer) as victim:
        answer = victim.get(callback)
        assert answer.status_code == 400
        assert "started in another browser" in answer.text
        assert "cg_session" not in victim.cookies
    assert standin.token_requests == []


def test_a_browser_without_cookies_gets_a_page_not_a_redirect_loop(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    with httpx.Client(base_url=gateway.issuer) as browser:
        to_standin = browser.get("/oauth2/sources/classlink/launch")
        back = browser.get(to_standin.headers["location"])
        browser.cookies.clear()
        answer = browser.get(back.headers["location"])
    assert answer.status_code == 400 and "does not keep cookies" in answer.text
    assert standin.token_requests == []


@pytest.mark.parametrize("switch", ["wrong_nonce", "wrong_audience", "expired"])
def test_an_id_token_that_does_not_check_out_signs_nobody_in(
        gateway: ServedGateway, standin: ClassLinkStandIn, switch: str) -> None:
    setattr(standin.misbehave, switch, True)
    page = stopped(gateway)
    assert page.status_code == 502
    assert "could not be verified" in page.text
    assert "Back to sign-in" in page.text


def test_a_429_is_retried_and_the_sign_in_succeeds(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    standin.misbehave.token_429s = 1
    assert sign_in(gateway)["access_token"]
    assert len(standin.token_requests) == 2


@pytest.mark.parametrize("trouble", [{"token_429s": -1}, {"token_status": 500},
                                     {"token_delay": 1.5}])
def test_classlink_not_answering_gives_a_clear_page(
        gateway: ServedGateway, standin: ClassLinkStandIn, trouble: dict[str, Any]) -> None:
    for name, value in trouble.items():
        setattr(standin.misbehave, name, value)
    page = stopped(gateway)
    assert page.status_code == 503
    assert "ClassLink is not answering" in page.text
    assert page.headers["retry-after"]
    assert 2 <= len(standin.token_requests) <= 3  # retried, within bounds


def test_classlink_keys_out_of_reach_on_a_fresh_gateway_give_a_clear_page(
        standin: ClassLinkStandIn, tmp_path: Path) -> None:
    standin.misbehave.keys_down = True
    fresh = serve_gateway(tmp_path, identity_yaml(standin.url),
                          env={"CLASSLINK_SECRET": CLIENT_SECRET})
    try:
        page = stopped(fresh)
    finally:
        fresh.stop()
    assert page.status_code == 503 and "ClassLink is not answering" in page.text


def test_cancelling_at_classlink_goes_back_to_the_login_page_with_a_message(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    standin.misbehave.deny = True
    _, challenge = pkce()
    with httpx.Client(base_url=gateway.issuer, follow_redirects=True) as browser:
        login = browser.get(app_request(gateway, challenge))
        back = browser.get(source_buttons(login.text)["Sign in with ClassLink"])
    assert back.url.path == "/oauth2/login"
    assert "Sign-in with ClassLink was cancelled." in back.text


def test_a_generic_openid_provider_signs_people_in(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    tokens = sign_in(gateway, button="Sign in with Springfield Schools")
    claims = userinfo(gateway, tokens["access_token"])
    assert claims["email"] == "ada@springfield.k12.us"
    (form,) = standin.token_requests
    assert form.get("basic") == "yes"  # client_secret_basic, the OIDC default


def test_an_openid_account_outside_the_allowed_domains_is_refused(
        gateway: ServedGateway, standin: ClassLinkStandIn) -> None:
    standin.person["Email"] = "ada@gmail.com"
    page = stopped(gateway, button="Sign in with Springfield Schools")
    assert page.status_code == 403
    assert "may not sign in here" in page.text
