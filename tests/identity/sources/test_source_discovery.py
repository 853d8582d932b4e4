"""A login source's endpoints: ClassLink's preset, an OpenID provider's discovery."""

from __future__ import annotations

from typing import Any

import pytest

from campusgate.auth.pkce import challenge
from campusgate.config.identity_sources import ClassLinkSource, OidcSource
from campusgate.identity.sources.flow import authorization_url
from campusgate.identity.sources.provider import endpoints_from_discovery

CLASSLINK = ClassLinkSource(type="classlink", client_id="c", client_secret="s")
OIDC = OidcSource(type="oidc", name="idp", issuer="https://idp.example.edu", client_id="c",
                  client_secret="s")
DOCUMENT = {"issuer": "https://idp.example.edu",
            "authorization_endpoint": "https://idp.example.edu/authorize",
            "token_endpoint": "https://idp.example.edu/token",
            "userinfo_endpoint": "https://idp.example.edu/userinfo",
            "jwks_uri": "https://idp.example.edu/keys"}


def test_classlink_endpoints_are_built_in_and_only_its_keys_are_discovered() -> None:
    found = endpoints_from_discovery(CLASSLINK, {"jwks_uri": "https://launchpad.classlink.com/k",
                                                 "authorization_endpoint": "https://x/y"})
    assert found.authorization == "https://launchpad.classlink.com/oauth2/v2/auth"
    assert found.token == "https://launchpad.classlink.com/oauth2/v2/token"
    assert found.userinfo == "https://nodeapi.classlink.com/v2/my/info"
    assert found.jwks_uri == "https://launchpad.classlink.com/k"
    assert found.client_auth == "client_secret_post"  # as ClassLink's libraries send it


def test_an_openid_provider_is_read_from_its_document() -> None:
    found = endpoints_from_discovery(OIDC, DOCUMENT)
    assert (found.authorization, found.token, found.client_auth) == (
        "https://idp.example.edu/authorize", "https://idp.example.edu/token",
        "client_secret_basic")
    post_only = {**DOCUMENT, "token_endpoint_auth_methods_supported": ["client_secret_post"]}
    assert endpoints_from_discovery(OIDC, post_only).client_auth == "client_secret_post"


@pytest.mark.parametrize(("document", "complaint"), [
    ({**DOCUMENT, "issuer": "https://evil.example.com"}, "names issuer"),
    ({**DOCUMENT, "jwks_uri": None}, "jwks_uri"),
    ({**DOCUMENT, "token_endpoint": "ftp://x"}, "token_endpoint"),
    ([], "JSON object"),
])
def test_a_document_that_cannot_be_used_is_refused(document: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        endpoints_from_discovery(OIDC, document)


def test_the_authorization_request_carries_state_nonce_and_pkce() -> None:
    url = authorization_url("https://idp.example.edu/authorize?tenant=1", client_id="c",
                            redirect_uri="https://id.example.edu/cb", scopes=["openid", "email"],
                            state="st", nonce="no", verifier="v" * 43)
    assert url.startswith("https://idp.example.edu/authorize?tenant=1&response_type=code&")
    assert "scope=openid+email" in url and "state=st" in url and "nonce=no" in url
    assert f"code_challenge={challenge('v' * 43)}&code_challenge_method=S256" in url
