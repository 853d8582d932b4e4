"""The authorization endpoint from the browser's side: sign-in, prompt, max_age,
consent (asked, remembered, revoked, denied), and the code at the end."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from identity_harness import ISSUER, Clock, identity_config, sealed
from pages_harness import CALLBACK, PASSWORD, form_of
from starlette.routing import BaseRoute

from campusgate.identity import authorize
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.pages import consent, login, logout
from campusgate.identity.sessions import SESSION_COOKIE

Params = dict[str, str]


@pytest.fixture
def browser(identity_client: Callable[[Sequence[BaseRoute]], httpx.AsyncClient]
            ) -> httpx.AsyncClient:
    return identity_client([*authorize.routes(""), *login.routes(""), *consent.routes(""),
                            *logout.routes("")])


def request(**extra: str) -> Params:
    return {"response_type": "code", "client_id": "lms", "redirect_uri": CALLBACK,
            "scope": "openid profile email", "state": "st4te", "nonce": "n0nce", **extra}


def mobile_request(**extra: str) -> Params:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 64).digest()
                                         ).rstrip(b"=").decode()
    return request(client_id="mobile", redirect_uri="http://127.0.0.1:5173/callback",
                   scope="openid", code_challenge=challenge,
                   code_challenge_method="S256", **extra)


def where(answer: httpx.Response) -> str:
    """The path a redirect goes to (on the issuer), or its whole URL (off it)."""
    assert answer.status_code == 303, (answer.status_code, answer.text)
    location = answer.headers["location"]
    return location[len(ISSUER):].split("?")[0] if location.startswith(ISSUER) else location


def query(answer: httpx.Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(answer.headers["location"]).query)


async def go(browser: httpx.AsyncClient, answer: httpx.Response) -> httpx.Response:
    return await browser.get(answer.headers["location"])


async def submit(browser: httpx.AsyncClient, page: httpx.Response,
                 **values: str) -> httpx.Response:
    action, fields = form_of(page)
    return await browser.post(action, data={**fields, **values})


async def until_client(browser: httpx.AsyncClient, answer: httpx.Response, *,
                       consent_to: str | None = None) -> httpx.Response:
    """Follow the provider's redirects, signing in as alice on a login page and
    answering a consent page with ``consent_to`` (the test fails on an unexpected
    page); the redirect that leaves the provider."""
    for _ in range(10):
        if answer.status_code == 303 and not answer.headers["location"].startswith(ISSUER):
            return answer
        if answer.status_code == 303:
            answer = await go(browser, answer)
        elif 'name="password"' in answer.text:
            answer = await submit(browser, answer, username="alice", password=PASSWORD)
        elif 'name="decision"' in answer.text and consent_to is not None:
            answer = await submit(browser, answer, decision=consent_to)
        else:
            raise AssertionError(f"unexpected page {answer.status_code}: {answer.text}")
    raise AssertionError("too many steps")


def code_of(ctx_answer: httpx.Response) -> str:
    params = query(ctx_answer)
    assert params["state"] == ["st4te"] and params["iss"] == [ISSUER], params
    return params["code"][0]


async def code_record(ctx: IdentityContext, code: str) -> dict[str, Any]:
    record = await ctx.ephemeral.get("code", hashlib.sha256(code.encode()).hexdigest())
    assert record is not None
    return record


# ------------------------------------------------------------------ the flow
async def test_sign_in_consent_then_a_code(browser: httpx.AsyncClient, alice: User,
                                           identity_ctx: IdentityContext) -> None:
    answer = await browser.get("/oauth2/authorize", params=request())
    assert where(answer) == "/oauth2/login"
    page = await go(browser, answer)
    answer = await submit(browser, page, username="alice", password=PASSWORD)
    assert where(answer) == "/oauth2/authorize"
    answer = await go(browser, answer)
    assert where(answer) == "/oauth2/consent"

    page = await go(browser, answer)
    assert page.status_code == 200
    assert "Allow District LMS to access your account?" in page.text
    assert "alice" in page.text
    for text in consent.STANDARD_DESCRIPTIONS["openid"], \
            consent.STANDARD_DESCRIPTIONS["profile"], consent.STANDARD_DESCRIPTIONS["email"]:
        assert text in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "form-action 'self' https://lms.example.edu;" in \
        page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"

    answer = await submit(browser, page, decision="allow")
    assert where(answer) == CALLBACK + "?" + urlsplit(answer.headers["location"]).query
    record = await code_record(identity_ctx, code_of(answer))
    assert record["user_id"] == alice.id and record["nonce"] == "n0nce"
    assert record["sid"] and list(record["amr"]) == ["pwd"]
    assert await identity_ctx.directory.consent_covers(alice.id, "lms",
                                                       ["openid", "profile", "email"])


async def test_consent_is_remembered_until_revoked(browser: httpx.AsyncClient, alice: User,
                                                   identity_ctx: IdentityContext) -> None:
    first = await until_client(browser, await browser.get("/oauth2/authorize",
                                                          params=request()),
                               consent_to="allow")
    code_of(first)
    again = await browser.get("/oauth2/authorize", params=request())
    assert where(again).startswith(CALLBACK)  # no login, no consent page
    code_of(again)
    # fewer scopes are covered too; a new one is asked for
    fewer = await browser.get("/oauth2/authorize", params=request(scope="openid"))
    assert where(fewer).startswith(CALLBACK)
    more = await browser.get("/oauth2/authorize",
                             params=request(scope="openid offline_access"))
    assert where(more) == "/oauth2/consent"

    await identity_ctx.directory.revoke_consent(alice.id, "lms")
    revoked = await browser.get("/oauth2/authorize", params=request())
    assert where(revoked) == "/oauth2/consent"


async def test_deny_tells_the_client_access_denied(browser: httpx.AsyncClient, alice: User,
                                                   identity_ctx: IdentityContext) -> None:
    answer = await until_client(browser, await browser.get("/oauth2/authorize",
                                                           params=request()),
                                consent_to="deny")
    params = query(answer)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["st4te"] and params["iss"] == [ISSUER]
    assert "code" not in params
    assert not await identity_ctx.directory.consent_covers(alice.id, "lms", ["openid"])


async def test_consent_form_needs_its_csrf_token(browser: httpx.AsyncClient,
                                                 alice: User) -> None:
    answer = await browser.get("/oauth2/authorize", params=request())
    answer = await submit(browser, await go(browser, answer), username="alice",
                          password=PASSWORD)
    page = await go(browser, await go(browser, answer))
    action, fields = form_of(page)
    forged = await browser.post(action, data={**fields, "csrf_token": "x",
                                              "decision": "allow"})
    assert forged.status_code == 403 and "location" not in forged.headers
    missing = await browser.post(action, data={"decision": "allow"})
    assert missing.status_code == 403


async def test_no_consent_page_for_first_party_clients(
        browser: httpx.AsyncClient, alice: User, identity_ctx: IdentityContext) -> None:
    config = identity_config()
    clients = [c.model_copy(update={"require_consent": False}) for c in config.clients]
    identity_ctx.update(sealed(config.model_copy(update={"clients": clients}),
                               identity_ctx.keyring))
    answer = await until_client(browser, await browser.get("/oauth2/authorize",
                                                           params=request()))
    code_of(answer)


async def test_prompt_consent_asks_even_when_remembered(
        browser: httpx.AsyncClient, alice: User) -> None:
    await until_client(browser, await browser.get("/oauth2/authorize", params=request()),
                       consent_to="allow")
    answer = await browser.get("/oauth2/authorize", params=request(prompt="consent"))
    assert where(answer) == "/oauth2/consent"
    answer = await until_client(browser, answer, consent_to="allow")
    code_of(answer)


async def test_authorization_request_by_post(browser: httpx.AsyncClient, alice: User) -> None:
    answer = await browser.post("/oauth2/authorize", data=request())
    assert where(answer) == "/oauth2/login"
    answer = await until_client(browser, answer, consent_to="allow")
    code_of(answer)


async def test_public_client_with_loopback_redirect(browser: httpx.AsyncClient,
                                                    alice: User) -> None:
    answer = await until_client(browser, await browser.get("/oauth2/authorize",
                                                           params=mobile_request()),
                                consent_to="allow")
    assert answer.headers["location"].startswith("http://127.0.0.1:5173/callback?")
    code_of(answer)


# ------------------------------------------------------------------ prompt, max_age
async def test_prompt_none_without_a_session(browser: httpx.AsyncClient) -> None:
    answer = await browser.get("/oauth2/authorize", params=request(prompt="none"))
    assert where(answer).startswith(CALLBACK)
    params = query(answer)
    assert params["error"] == ["login_required"]
    assert params["iss"] == [ISSUER] and params["state"] == ["st4te"]


async def test_prompt_none_without_consent(browser: httpx.AsyncClient, alice: User) -> None:
    await until_client(browser, await browser.get("/oauth2/authorize",
                                                  params=request(scope="openid")),
                       consent_to="allow")
    answer = await browser.get("/oauth2/authorize", params=request(prompt="none"))
    assert query(answer)["error"] == ["consent_required"]
    covered = await browser.get("/oauth2/authorize",
                                params=request(prompt="none", scope="openid"))
    code_of(covered)


async def test_prompt_login_signs_in_again_once(browser: httpx.AsyncClient, alice: User,
                                                identity_ctx: IdentityContext) -> None:
    first = await until_client(browser, await browser.get("/oauth2/authorize",
                                                          params=request()),
                               consent_to="allow")
    old = await code_record(identity_ctx, code_of(first))
    answer = await browser.get("/oauth2/authorize", params=request(prompt="login"))
    assert where(answer) == "/oauth2/login"
    answer = await submit(browser, await go(browser, answer), username="alice",
                          password=PASSWORD)
    answer = await go(browser, answer)  # resumed: prompt=login is satisfied
    assert where(answer).startswith(CALLBACK)
    new = await code_record(identity_ctx, code_of(answer))
    assert new["sid"] != old["sid"]


async def test_max_age_forces_a_fresh_sign_in(browser: httpx.AsyncClient, alice: User,
                                              clock: Clock,
                                              identity_ctx: IdentityContext) -> None:
    first = await until_client(browser, await browser.get("/oauth2/authorize",
                                                          params=request()),
                               consent_to="allow")
    signed_in_at = (await code_record(identity_ctx, code_of(first)))["auth_time"]
    clock.advance(120)
    recent = await browser.get("/oauth2/authorize", params=request(max_age="300"))
    assert where(recent).startswith(CALLBACK)
    stale = await browser.get("/oauth2/authorize", params=request(max_age="60"))
    assert where(stale) == "/oauth2/login"
    answer = await until_client(browser, stale)
    record = await code_record(identity_ctx, code_of(answer))
    assert record["auth_time"] == signed_in_at + 120
    # prompt=none cannot sign in: login_required
    clock.advance(120)
    none = await browser.get("/oauth2/authorize", params=request(max_age="60", prompt="none"))
    assert query(none)["error"] == ["login_required"]


async def test_a_disabled_user_is_not_signed_in(browser: httpx.AsyncClient, alice: User,
                                                identity_ctx: IdentityContext) -> None:
    await until_client(browser, await browser.get("/oauth2/authorize", params=request()),
                       consent_to="allow")
    await identity_ctx.directory.update_user(alice.id, disabled=True)
    answer = await browser.get("/oauth2/authorize", params=request())
    assert where(answer) == "/oauth2/login"


async def test_signed_out_sessions_sign_in_again(browser: httpx.AsyncClient,
                                                 alice: User) -> None:
    await until_client(browser, await browser.get("/oauth2/authorize", params=request()),
                       consent_to="allow")
    browser.cookies.delete(SESSION_COOKIE)
    answer = await browser.get("/oauth2/authorize", params=request())
    assert where(answer) == "/oauth2/login"


# ------------------------------------------------------------------ what never redirects
async def test_an_unregistered_redirect_uri_gets_a_page(browser: httpx.AsyncClient,
                                                        alice: User) -> None:
    for params in (request(redirect_uri="https://evil.example/cb"),
                   request(client_id="unknown")):
        answer = await browser.get("/oauth2/authorize", params=params)
        assert answer.status_code == 400 and "location" not in answer.headers
        assert answer.headers["x-frame-options"] == "DENY"


async def test_an_unknown_or_stale_transaction_gets_a_page(
        browser: httpx.AsyncClient, clock: Clock) -> None:
    answer = await browser.get("/oauth2/authorize", params={"tx": "made-up"})
    assert answer.status_code == 400 and "location" not in answer.headers
    login_redirect = await browser.get("/oauth2/authorize", params=request())
    tx = query(login_redirect)["tx"][0]
    clock.advance(601)
    stale = await browser.get("/oauth2/authorize", params={"tx": tx})
    assert stale.status_code == 400


async def test_a_tx_parameter_does_not_hijack_a_new_request(
        browser: httpx.AsyncClient) -> None:
    """Unknown parameters are ignored: ``tx`` next to ``client_id`` is a new request."""
    answer = await browser.get("/oauth2/authorize", params=request(tx="whatever"))
    assert where(answer) == "/oauth2/login"


async def test_consent_page_after_sign_out_goes_back_through_login(
        browser: httpx.AsyncClient, alice: User) -> None:
    answer = await browser.get("/oauth2/authorize", params=request())
    answer = await submit(browser, await go(browser, answer), username="alice",
                          password=PASSWORD)
    consent_redirect = await go(browser, answer)
    browser.cookies.delete(SESSION_COOKIE)
    page = await go(browser, consent_redirect)
    assert where(page) == "/oauth2/authorize"
    assert where(await go(browser, page)) == "/oauth2/login"


def test_scope_descriptions_use_the_operators_words(identity_ctx: IdentityContext) -> None:
    described = consent.describe_scopes(identity_ctx, ["openid", "roster.read"])
    assert described == [
        {"name": "openid", "description": consent.STANDARD_DESCRIPTIONS["openid"]},
        {"name": "roster.read", "description": "Read class rosters"}]
