"""The login page: CSRF, a new session on every sign-in, one message for every failure,
throttling per account and per address, accessible markup and the page headers."""

from __future__ import annotations

import re

import httpx
import pytest
from identity_harness import ISSUER, Clock, identity_config, sealed
from pages_harness import CALLBACK, PASSWORD, form_of, sign_in

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.pages import transaction
from campusgate.identity.pages.transaction import Transaction
from campusgate.identity.sessions import SESSION_COOKIE

INCORRECT = "Incorrect username or password."


def message(page: httpx.Response) -> str | None:
    match = re.search(r'<p id="login-error"[^>]*>([^<]*)</p>', page.text)
    return match[1] if match else None


async def failure_page(client: httpx.AsyncClient, tx: Transaction, username: str,
                       password: str) -> httpx.Response:
    posted = await sign_in(client, tx, username, password)
    assert posted.status_code == 303
    assert posted.headers["location"] == f"{ISSUER}/oauth2/login?tx={tx.id}"
    return await client.get(posted.headers["location"])


def assert_page_headers(page: httpx.Response, *form_origins: str) -> None:
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "base-uri 'none'" in csp
    sources = " ".join(["'self'", *form_origins])
    assert f"form-action {sources};" in csp


async def test_sign_in_starts_a_session_and_resumes_the_request(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    posted = await sign_in(page_client, tx)
    assert posted.status_code == 303
    assert posted.headers["location"] == f"{ISSUER}/oauth2/authorize?tx={tx.id}"
    cookie = posted.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "path=/" in cookie.lower() and "secure" not in cookie.lower()  # http issuer
    resumed = await transaction.load(identity_ctx, tx.id)
    assert resumed is not None and resumed.sid is not None


async def test_login_form_is_accessible_and_protected(
        page_client: httpx.AsyncClient, tx: Transaction) -> None:
    page = await page_client.get(f"/oauth2/login?tx={tx.id}")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert '<label for="username">' in page.text and 'id="username"' in page.text
    assert '<label for="password">' in page.text and 'id="password"' in page.text
    assert 'autocomplete="username"' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert "District LMS" in page.text
    for external in ("<script", "<link", " src=", "url("):  # nothing to load
        assert external not in page.text
    # the form's last hop is the client's redirect URI: the CSP allows its origin
    assert_page_headers(page, "https://lms.example.edu")
    assert "cg_csrf=" in page.headers["set-cookie"]
    assert "samesite=strict" in page.headers["set-cookie"].lower()


async def test_post_without_or_with_a_wrong_csrf_token_is_refused(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User) -> None:
    page = await page_client.get(f"/oauth2/login?tx={tx.id}")
    action, fields = form_of(page)
    for token in (None, "", fields["csrf_token"][:-2] + "xx"):
        data = {"username": "alice", "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        refused = await page_client.post(action, data=data)
        assert refused.status_code == 403
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert_page_headers(refused)


async def test_csrf_token_of_another_browser_is_refused(
        identity_client: object, page_client: httpx.AsyncClient, tx: Transaction,
        alice: User) -> None:
    """Login CSRF: an attacker's own (valid) token and fields, posted from the victim's
    browser, which has its own cg_csrf cookie."""
    attacker_page = await page_client.get(f"/oauth2/login?tx={tx.id}")
    action, fields = form_of(attacker_page)
    page_client.cookies.clear()
    await page_client.get(f"/oauth2/login?tx={tx.id}")  # the victim's cookie
    forged = await page_client.post(action, data={**fields, "username": "alice",
                                                  "password": PASSWORD})
    assert forged.status_code == 403


async def test_a_token_for_another_transaction_is_refused(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    other = await transaction.begin(identity_ctx, dict(tx.params))
    page = await page_client.get(f"/oauth2/login?tx={other.id}")
    _, fields = form_of(page)
    posted = await page_client.post(f"/oauth2/login?tx={tx.id}", data={
        **fields, "username": "alice", "password": PASSWORD})
    assert posted.status_code == 403


async def test_sign_in_replaces_the_session_cookie(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    """Session fixation: a cookie planted before sign-in (or an old session) is not
    the one the browser is signed in with afterwards."""
    page_client.cookies.set(SESSION_COOKIE, "planted-by-an-attacker")
    first = await sign_in(page_client, tx)
    first_cookie = first.cookies[SESSION_COOKIE]
    assert first_cookie != "planted-by-an-attacker"
    again = await transaction.begin(identity_ctx, dict(tx.params))
    second = await sign_in(page_client, again)
    assert second.cookies[SESSION_COOKIE] not in ("planted-by-an-attacker", first_cookie)
    first_sid = (await transaction.load(identity_ctx, tx.id))
    second_sid = (await transaction.load(identity_ctx, again.id))
    assert first_sid is not None and second_sid is not None
    assert first_sid.sid != second_sid.sid


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    await identity_ctx.directory.create_user("bob", "bobs password is long")
    bob = await identity_ctx.directory.find_user("bob")
    assert bob is not None
    await identity_ctx.directory.update_user(bob.id, disabled=True)
    pages = [await failure_page(page_client, tx, "alice", "not the password"),
             await failure_page(page_client, tx, "nobody", "not the password"),
             await failure_page(page_client, tx, "bob", "bobs password is long")]
    assert [message(p) for p in pages] == [INCORRECT] * 3
    # the same page, apart from the username typed and the CSRF token
    normalised = {re.sub(r'value="[^"]*"', "", p.text) for p in pages}
    assert len(normalised) == 1
    assert 'aria-describedby="login-error"' in pages[0].text
    assert 'aria-invalid="true"' in pages[0].text
    assert 'value="nobody"' in pages[1].text  # what was typed is kept
    # shown once: a reload is a clean form
    reloaded = await page_client.get(f"/oauth2/login?tx={tx.id}")
    assert message(reloaded) is None
    assert SESSION_COOKIE not in page_client.cookies


async def test_login_hint_prefills_the_username(
        page_client: httpx.AsyncClient, identity_ctx: IdentityContext) -> None:
    hinted = await transaction.begin(identity_ctx, {
        "client_id": "lms", "redirect_uri": CALLBACK, "login_hint": "alice@example.edu",
        "ui_locales": "fr-CA en-GB"})
    page = await page_client.get(f"/oauth2/login?tx={hinted.id}")
    assert 'value="alice@example.edu"' in page.text
    assert '<html lang="en-GB">' in page.text


async def test_unknown_or_expired_transaction(
        page_client: httpx.AsyncClient, tx: Transaction, clock: Clock) -> None:
    assert (await page_client.get("/oauth2/login?tx=made-up")).status_code == 400
    assert (await page_client.get("/oauth2/login")).status_code == 400
    clock.advance(transaction.LIFETIME + 1)
    expired = await page_client.get(f"/oauth2/login?tx={tx.id}")
    assert expired.status_code == 400
    assert "expired" in expired.text
    assert "location" not in expired.headers


async def test_an_email_address_signs_in_too(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User) -> None:
    posted = await sign_in(page_client, tx, "Alice@Example.edu")
    assert posted.headers["location"].endswith(f"/oauth2/authorize?tx={tx.id}")


# ------------------------------------------------------------------ throttling
async def test_throttle_per_account(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User, clock: Clock,
        identity_ctx: IdentityContext) -> None:
    limit = identity_ctx.config.login_throttle.per_account  # 5
    for _ in range(limit):
        page = await failure_page(page_client, tx, "ALICE", "guess")
        assert message(page) == INCORRECT
    locked = await sign_in(page_client, tx, "alice", PASSWORD)  # right password, refused
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) == identity_ctx.config.login_throttle.lockout
    assert "Too many failed sign-in attempts" in locked.text
    assert SESSION_COOKIE not in locked.headers.get("set-cookie", "")
    # an account that does not exist is locked in the same way (nothing to learn)
    for _ in range(limit):
        await failure_page(page_client, tx, "ghost", "guess")
    ghost = await sign_in(page_client, tx, "ghost", "guess")
    assert ghost.status_code == 429
    assert re.sub(r'value="[^"]*"', "", ghost.text) == re.sub(r'value="[^"]*"', "",
                                                              locked.text)

    clock.advance(identity_ctx.config.login_throttle.lockout + 1)
    later = await transaction.begin(identity_ctx, dict(tx.params))  # tx has expired
    allowed = await sign_in(page_client, later, "alice", PASSWORD)
    assert allowed.status_code == 303
    assert "/oauth2/authorize?tx=" in allowed.headers["location"]


async def test_success_clears_the_account_count(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    limit = identity_ctx.config.login_throttle.per_account
    for _ in range(limit - 1):
        await failure_page(page_client, tx, "alice", "guess")
    assert (await sign_in(page_client, tx)).status_code == 303
    for _ in range(limit - 1):  # a fresh budget
        page = await failure_page(page_client, tx, "alice", "guess")
        assert message(page) == INCORRECT
    assert (await sign_in(page_client, tx)).status_code == 303


async def test_throttle_per_address(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User, clock: Clock,
        identity_ctx: IdentityContext) -> None:
    identity_ctx.update(sealed(identity_config(login_throttle={
        "per_account": 100, "per_ip": 3, "window": 600, "lockout": 120}),
        identity_ctx.keyring))
    await failure_page(page_client, tx, "a1", "guess")
    await failure_page(page_client, tx, "a2", "guess")
    # a success does not reset the address's count (one valid account would do)
    assert (await sign_in(page_client, tx)).status_code == 303
    await failure_page(page_client, tx, "a3", "guess")  # the third from this address
    locked = await sign_in(page_client, tx)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "120"
    clock.advance(60)
    assert (await sign_in(page_client, tx)).headers["retry-after"] == "60"
    clock.advance(61)
    assert (await sign_in(page_client, tx)).status_code == 303


async def test_an_unknown_user_costs_a_password_hash_too(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing: the directory hashes a dummy password when there is no account."""
    checked: list[str] = []
    original = identity_ctx.directory.verify_password

    async def spy(user: User, password: str) -> bool:
        checked.append(user.username)
        return await original(user, password)

    monkeypatch.setattr(identity_ctx.directory, "verify_password", spy)
    await failure_page(page_client, tx, "nobody", "guess")
    await failure_page(page_client, tx, "alice", "guess")
    assert len(checked) == 2


async def test_failures_spread_over_time_are_forgotten(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User, clock: Clock,
        identity_ctx: IdentityContext) -> None:
    window = identity_ctx.config.login_throttle.window
    for _ in range(4):
        await failure_page(page_client, tx, "alice", "guess")
    clock.advance(2 * window)
    later = await transaction.begin(identity_ctx, dict(tx.params))
    for _ in range(4):
        await failure_page(page_client, later, "alice", "guess")
    assert (await sign_in(page_client, later)).status_code == 303


@pytest.mark.parametrize("length", [5000])
async def test_huge_inputs_are_a_plain_failure(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User, length: int) -> None:
    page = await failure_page(page_client, tx, "alice", "x" * length)
    assert message(page) == INCORRECT
