"""Helpers of the page tests (import by name: ``from pages_harness import ...``)."""

from __future__ import annotations

import httpx
from identity_harness import ISSUER, html_forms

from campusgate.identity.pages.transaction import Transaction

__all__ = ["CALLBACK", "PASSWORD", "form_of", "sign_in"]

PASSWORD = "correct horse battery staple"
CALLBACK = "https://lms.example.edu/callback"


def form_of(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and fields of the page's (first) POST form."""
    forms = [f for f in html_forms(page.text) if f.method == "post"]
    assert forms, page.text
    return forms[0].action, dict(forms[0].fields)


async def sign_in(client: httpx.AsyncClient, tx: Transaction, username: str = "alice",
                  password: str = PASSWORD) -> httpx.Response:
    """Load the login form of ``tx`` and post it; the POST's answer."""
    page = await client.get(f"/oauth2/login?tx={tx.id}")
    assert page.status_code == 200, page.text
    action, fields = form_of(page)
    assert action.startswith(ISSUER)
    return await client.post(action, data={**fields, "username": username,
                                           "password": password})
