"""A pending sign-in at a login source: claimed once, by the browser that began it."""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from campusgate.identity.context import IdentityContext
from campusgate.identity.sources import flow


def browser(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{flow.BROWSER_COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


async def test_the_browser_that_began_it_claims_it_once(identity_ctx: IdentityContext) -> None:
    binding, fresh = flow.bind_browser(browser(None))
    assert fresh
    state, pending = await flow.begin(identity_ctx, "classlink", binding, tx="tx-1")
    claimed = await flow.claim(identity_ctx, browser(binding), "classlink", state)
    assert claimed == pending and claimed.tx == "tx-1"
    assert await flow.claim(identity_ctx, browser(binding), "classlink", state) == "unknown"


async def test_another_browser_or_source_spends_it_without_getting_it(
        identity_ctx: IdentityContext) -> None:
    binding = flow.bind_browser(browser(None))[0]
    assert flow.bind_browser(browser(binding)) == (binding, False)
    state, _ = await flow.begin(identity_ctx, "classlink", binding)
    other = flow.bind_browser(browser(None))[0]
    assert await flow.claim(identity_ctx, browser(other), "classlink", state) == "foreign"
    assert await flow.claim(identity_ctx, browser(binding), "classlink", state) == "unknown"
    state, _ = await flow.begin(identity_ctx, "classlink", binding)
    assert await flow.claim(identity_ctx, browser(binding), "google", state) == "foreign"


async def test_no_state_or_a_made_up_one_is_unknown(identity_ctx: IdentityContext) -> None:
    for state in (None, "", "made-up", "x" * 500):
        assert await flow.claim(identity_ctx, browser("b" * 43), "classlink", state) == \
            "unknown"


async def test_the_state_is_kept_only_as_its_hash(identity_ctx: IdentityContext) -> None:
    binding = "c" * 43
    state, _ = await flow.begin(identity_ctx, "classlink", binding)
    digest = hashlib.sha256(state.encode()).hexdigest()
    record = await identity_ctx.ephemeral.state.get(f"idp:source:{digest}")
    assert record is not None
    assert state.encode() not in record and binding.encode() not in record
