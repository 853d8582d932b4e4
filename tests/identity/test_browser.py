"""The sign-in and consent pages in a real browser (Debian's Chromium, driven by
Playwright): a person finds the fields by their labels, signs in, allows the app, and
lands on the app's redirect URI with a code; the pages refuse to be framed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from identity_harness import ServedGateway, serve_gateway
from playwright.async_api import Browser, Route

CALLBACK = "https://lms.example.edu/callback"

IDENTITY = f"""\
  clients:
    - client_id: lms
      name: District LMS
      client_secret: lms-secret-0123456789abcdef
      redirect_uris: [{CALLBACK}]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    workdir: Path = tmp_path_factory.mktemp("idp-browser")
    served = serve_gateway(workdir, IDENTITY)
    served.create_user("bob", "a long and secret passphrase", name="Bob Builder")
    yield served
    served.stop()


def authorize_url(issuer: str) -> str:
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(b"v" * 64).digest()).rstrip(b"=").decode()
    query = httpx.QueryParams(response_type="code", client_id="lms", redirect_uri=CALLBACK,
                              scope="openid profile", state="st4te", nonce="n0nce",
                              code_challenge=challenge, code_challenge_method="S256")
    return f"{issuer}/oauth2/authorize?{query}"


async def test_a_person_signs_in_and_allows_the_app(gateway: ServedGateway,
                                                    browser: Browser) -> None:
    page = await browser.new_page()
    landed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def app_callback(route: Route) -> None:  # the LMS, which is not really there
        if not landed.done():
            landed.set_result(route.request.url)
        await route.fulfill(status=200, body="signed in", content_type="text/plain")

    await page.route("https://lms.example.edu/**", app_callback)
    response = await page.goto(authorize_url(gateway.issuer))
    assert response is not None and response.ok
    headers = await response.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]

    await page.get_by_label("Username").fill("bob")
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("Incorrect username or password").wait_for()

    await page.get_by_label("Password").fill("a long and secret passphrase")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("District LMS").first.wait_for()  # the consent page names the app
    await page.get_by_role("button", name="Allow").click()

    url = await asyncio.wait_for(landed, 10)
    params = parse_qs(urlsplit(url).query)
    assert params["state"] == ["st4te"]
    assert params["iss"] == [gateway.issuer]
    assert params["code"][0]
    await page.close()


async def test_the_sign_in_page_cannot_be_framed(gateway: ServedGateway,
                                                 browser: Browser) -> None:
    """Clickjacking: a page that frames the sign-in form gets an empty frame."""
    page = await browser.new_page()
    framing = (f'<iframe id="f" src="{authorize_url(gateway.issuer)}" '
               'onload="document.body.dataset.framed = \'yes\'"></iframe>')
    await page.route("https://evil.example/**", lambda route: route.fulfill(
        status=200, body=framing, content_type="text/html"))
    await page.goto("https://evil.example/")
    # The iframe's load event fires once the browser is done with the framed page:
    # shown, or (as here) refused and replaced by an error page.
    await page.wait_for_function("document.body.dataset.framed === 'yes'")
    (child,) = page.main_frame.child_frames
    assert not child.url.startswith(gateway.issuer)
    frame = page.frame_locator("#f")
    assert await frame.get_by_label("Username").count() == 0
    await page.close()
