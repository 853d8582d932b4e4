"""RP-initiated logout: a valid ID token hint signs out at once and returns to a
registered URI with ``state``; anything else asks first; nothing unregistered is ever
a redirect target."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from identity_harness import ISSUER, Clock
from joserfc import jwt
from joserfc.jwk import RSAKey
from pages_harness import form_of, sign_in

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.pages.transaction import Transaction
from campusgate.identity.sessions import SESSION_COOKIE
from campusgate.identity.tokens import mint_id_token

BYE = "https://lms.example.edu/bye"


def id_token(ctx: IdentityContext, user: User, client_id: str = "lms") -> str:
    client = ctx.client(client_id)
    assert client is not None
    return mint_id_token(ctx, client, user, nonce=None, auth_time=ctx.now(),
                         session_id=None, scopes=["openid"])


async def signed_in(client: httpx.AsyncClient, tx: Transaction) -> str:
    answer = await sign_in(client, tx)
    assert answer.status_code == 303
    return client.cookies[SESSION_COOKIE]


async def session_alive(client: httpx.AsyncClient, ctx: IdentityContext, cookie: str) -> bool:
    import hashlib

    return await ctx.ephemeral.get("session", hashlib.sha256(cookie.encode()).hexdigest()) \
        is not None


async def test_hint_and_registered_uri_sign_out_and_return_with_state(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    cookie = await signed_in(page_client, tx)
    answer = await page_client.get("/oauth2/logout", params={
        "id_token_hint": id_token(identity_ctx, alice), "post_logout_redirect_uri": BYE,
        "state": "after bye"})
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == BYE
    assert parse_qs(location.query) == {"state": ["after bye"]}
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    assert not await session_alive(page_client, identity_ctx, cookie)


async def test_an_expired_hint_still_identifies_the_user(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User, clock: Clock,
        identity_ctx: IdentityContext) -> None:
    hint = id_token(identity_ctx, alice)
    cookie = await signed_in(page_client, tx)
    clock.advance(7200)  # the ID token expired an hour ago; the session lives on
    answer = await page_client.get("/oauth2/logout", params={
        "id_token_hint": hint, "post_logout_redirect_uri": BYE})
    assert answer.status_code == 303 and answer.headers["location"] == BYE
    assert not await session_alive(page_client, identity_ctx, cookie)


async def test_an_unregistered_uri_never_redirects(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    cookie = await signed_in(page_client, tx)
    hint = id_token(identity_ctx, alice)
    for params in (
        {"id_token_hint": hint, "post_logout_redirect_uri": "https://evil.example/bye"},
        {"id_token_hint": hint, "post_logout_redirect_uri": BYE + "/"},  # exact match
        {"id_token_hint": hint, "post_logout_redirect_uri": BYE + "?next=x"},
        {"post_logout_redirect_uri": BYE},  # which client's? unknown
        {"client_id": "mobile", "post_logout_redirect_uri": BYE},  # another client's
        {"client_id": "nope", "post_logout_redirect_uri": BYE},
        {"client_id": "mobile", "id_token_hint": hint},  # the hint is lms's
    ):
        answer = await page_client.get("/oauth2/logout", params=params)
        assert answer.status_code == 400, params
        assert "location" not in answer.headers
        assert answer.headers["x-frame-options"] == "DENY"
    assert await session_alive(page_client, identity_ctx, cookie)


async def test_a_hint_not_signed_here_is_refused(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    await signed_in(page_client, tx)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    forged = jwt.encode({"alg": "RS256", "kid": "stranger"},
                        {"iss": ISSUER, "sub": alice.id, "aud": "lms"}, stranger)
    answer = await page_client.get("/oauth2/logout", params={
        "id_token_hint": forged, "post_logout_redirect_uri": BYE})
    assert answer.status_code == 400 and "location" not in answer.headers


async def test_without_a_hint_the_user_confirms(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    cookie = await signed_in(page_client, tx)
    page = await page_client.get("/oauth2/logout", params={
        "client_id": "lms", "post_logout_redirect_uri": BYE, "state": "s"})
    assert page.status_code == 200
    assert "Sign out of campusgate?" in page.text and "District LMS" in page.text
    assert await session_alive(page_client, identity_ctx, cookie)
    csp = page.headers["content-security-policy"]
    assert "form-action 'self' https://lms.example.edu;" in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    action, fields = form_of(page)

    forged = await page_client.post(action, data={**fields, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert await session_alive(page_client, identity_ctx, cookie)

    done = await page_client.post(action, data=fields)
    assert done.status_code == 303
    assert done.headers["location"] == f"{BYE}?state=s"
    assert not await session_alive(page_client, identity_ctx, cookie)


async def test_a_hint_for_someone_else_asks_first(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    bob = await identity_ctx.directory.create_user("bob", "bobs password is long")
    cookie = await signed_in(page_client, tx)
    page = await page_client.get("/oauth2/logout", params={
        "id_token_hint": id_token(identity_ctx, bob), "post_logout_redirect_uri": BYE})
    assert page.status_code == 200 and "Sign out of campusgate?" in page.text
    assert await session_alive(page_client, identity_ctx, cookie)


async def test_plain_sign_out_shows_a_page(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    cookie = await signed_in(page_client, tx)
    page = await page_client.get("/oauth2/logout")
    action, fields = form_of(page)
    done = await page_client.post(action, data=fields)
    assert done.status_code == 303 and done.headers["location"] == f"{ISSUER}/oauth2/logout"
    final = await page_client.get(done.headers["location"])
    assert final.status_code == 200 and "You are signed out" in final.text
    assert not await session_alive(page_client, identity_ctx, cookie)


async def test_without_a_session_the_client_gets_its_user_back(
        page_client: httpx.AsyncClient, alice: User, identity_ctx: IdentityContext) -> None:
    answer = await page_client.get("/oauth2/logout", params={
        "client_id": "lms", "post_logout_redirect_uri": BYE, "state": "s"})
    assert answer.status_code == 303 and answer.headers["location"] == f"{BYE}?state=s"


async def test_the_relying_party_may_post_the_request(
        page_client: httpx.AsyncClient, tx: Transaction, alice: User,
        identity_ctx: IdentityContext) -> None:
    cookie = await signed_in(page_client, tx)
    answer = await page_client.post("/oauth2/logout", data={
        "id_token_hint": id_token(identity_ctx, alice), "post_logout_redirect_uri": BYE})
    assert answer.status_code == 303 and answer.headers["location"] == BYE
    assert not await session_alive(page_client, identity_ctx, cookie)
