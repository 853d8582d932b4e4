"""The authorization request of campusgate's own OpenID clients
(auth/authorization_request.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from campusgate.auth.authorization_request import authorization_url


@pytest.mark.parametrize(("endpoint", "prefix"), [
    ("https://idp.example.edu/authorize", "https://idp.example.edu/authorize?"),
    ("https://idp.example.edu/authorize?tenant=1", "https://idp.example.edu/authorize?tenant=1&"),
])
def test_the_request_is_a_code_flow_with_state_nonce_and_pkce(endpoint: str,
                                                              prefix: str) -> None:
    url = authorization_url(endpoint, client_id="app", redirect_uri="https://app/cb",
                            scopes=["openid", "roster"], state="st", nonce="no",
                            challenge="ch")
    assert url.startswith(prefix)
    query = parse_qs(urlsplit(url).query)
    query.pop("tenant", None)
    assert query == {"response_type": ["code"], "client_id": ["app"],
                     "redirect_uri": ["https://app/cb"], "scope": ["openid roster"],
                     "state": ["st"], "nonce": ["no"], "code_challenge": ["ch"],
                     "code_challenge_method": ["S256"]}
