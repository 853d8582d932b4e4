"""The "Sign in with ClassLink" button in a real browser (Chromium, Playwright): a
person clicks it, ClassLink (the stand-in) sends them back, they allow the app, and
the app gets its code -- cookies, redirects and the pages' CSP as a browser applies
them."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
from classlink_standin import ClassLinkStandIn
from identity_harness import ServedGateway, pkce
from playwright.async_api import Browser, Route
from sources_harness import APP_CALLBACK


async def test_a_person_signs_in_with_the_classlink_button(
        gateway: ServedGateway, standin: ClassLinkStandIn, browser: Browser) -> None:
    _, challenge = pkce()
    query = httpx.QueryParams(response_type="code", client_id="quiz",
                              redirect_uri=APP_CALLBACK, state="st4te", nonce="n0nce",
                              scope="openid profile roster", code_challenge=challenge,
                              code_challenge_method="S256")
    page = await browser.new_page()
    landed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def app_callback(route: Route) -> None:  # the quiz app, which is not there
        if not landed.done():
            landed.set_result(route.request.url)
        await route.fulfill(status=200, body="signed in", content_type="text/plain")

    await page.route("https://quiz.example.edu/**", app_callback)
    await page.goto(f"{gateway.issuer}/oauth2/authorize?{query}")
    await page.get_by_role("link", name="Sign in with ClassLink").click()
    await page.get_by_text("Quiz App").first.wait_for()  # consent, after ClassLink
    await page.get_by_role("button", name="Allow").click()

    url = await asyncio.wait_for(landed, 10)
    params = parse_qs(urlsplit(url).query)
    assert params["state"] == ["st4te"] and params["code"][0]
    assert len(standin.token_requests) == 1
    await page.close()
