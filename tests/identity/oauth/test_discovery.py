"""The discovery documents and the JWKS, as a relying party fetches them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.oauth2.rfc8414 import (  # type: ignore[import-untyped]
    AuthorizationServerMetadata,
)
from authlib.oidc.discovery import OpenIDProviderMetadata  # type: ignore[import-untyped]
from authlib.oidc.rpinitiated import (  # type: ignore[import-untyped]
    OpenIDProviderMetadata as LogoutMetadata,
)
from identity_harness import ISSUER, Clock, identity_config, sealed
from starlette.routing import BaseRoute

from campusgate.identity import discovery
from campusgate.identity.context import IdentityContext
from campusgate.identity.tokens import mint_access_token, mint_id_token
from campusgate.keyring import Keyring

AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]

HTTPS_ISSUER = "https://id.example.edu/idp"


@pytest.fixture
def behind_path(identity_ctx: IdentityContext, keyring: Keyring) -> IdentityContext:
    """The provider at an https issuer with a path, as deployed behind a mount."""
    identity_ctx.update(sealed(identity_config(issuer=HTTPS_ISSUER), keyring))
    return identity_ctx


async def get_json(identity_client: AppClient, issuer_path: str, path: str) -> Any:
    http = identity_client(discovery.routes(issuer_path))
    response = await http.get(path)
    assert response.status_code == 200, response.text
    assert "max-age=300" in response.headers["cache-control"]
    return response.json()


async def test_openid_configuration_validates_and_derives_from_the_issuer(
        behind_path: IdentityContext, identity_client: AppClient) -> None:
    doc = await get_json(identity_client, "/idp", "/idp/.well-known/openid-configuration")
    OpenIDProviderMetadata(doc).validate(metadata_classes=[LogoutMetadata])
    assert doc["issuer"] == HTTPS_ISSUER
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint",
                 "jwks_uri", "revocation_endpoint", "introspection_endpoint",
                 "end_session_endpoint"):
        assert doc[name].startswith(HTTPS_ISSUER + "/oauth2/"), name
    assert doc["token_endpoint"] == HTTPS_ISSUER + "/oauth2/token"
    assert doc["jwks_uri"] == HTTPS_ISSUER + "/oauth2/jwks"


async def test_rfc8414_metadata_sits_before_the_issuer_path(
        behind_path: IdentityContext, identity_client: AppClient) -> None:
    doc = await get_json(identity_client, "/idp",
                         "/.well-known/oauth-authorization-server/idp")
    AuthorizationServerMetadata(doc).validate()
    assert doc["issuer"] == HTTPS_ISSUER
    http = identity_client(discovery.routes("/idp"))
    assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 404


async def test_document_advertises_only_what_is_supported(
        identity_ctx: IdentityContext, identity_client: AppClient) -> None:
    doc = await get_json(identity_client, "", "/.well-known/openid-configuration")
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert set(doc["grant_types_supported"]) == {"authorization_code", "refresh_token",
                                                 "client_credentials"}
    assert doc["code_challenge_methods_supported"] == ["S256"]  # no plain
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_parameter_supported"] is False
    assert doc["request_uri_parameter_supported"] is False
    assert doc["claims_parameter_supported"] is False
    assert set(doc["prompt_values_supported"]) == {"none", "login", "consent"}
    assert doc["ui_locales_supported"]
    assert {"sub", "email", "preferred_username", "updated_at"} <= set(doc["claims_supported"])
    assert doc["issuer"] == ISSUER


async def test_operator_scopes_and_claims_are_listed(
        identity_ctx: IdentityContext, identity_client: AppClient, keyring: Keyring) -> None:
    identity_ctx.update(sealed(identity_config(scopes=[
        {"name": "roster.read", "claims": ["grade", "school_id"]}]), keyring))
    doc = await get_json(identity_client, "", "/.well-known/openid-configuration")
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "address",
                                            "phone", "offline_access", "roster",
                                            "roster.read"}
    assert {"grade", "school_id"} <= set(doc["claims_supported"])


async def test_jwks_verifies_id_and_access_tokens(
        identity_ctx: IdentityContext, identity_client: AppClient) -> None:
    jwks = await get_json(identity_client, "", "/oauth2/jwks")
    assert {key["alg"] for key in jwks["keys"]} >= {"RS256", "ES256"}
    for key in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private member published"
    keys = pyjwt.PyJWKSet.from_dict(jwks)
    lms = identity_ctx.client("lms")
    assert lms is not None
    user = await identity_ctx.directory.create_user("ada")
    access, _ = mint_access_token(identity_ctx, lms, user_id=user.id, scope="openid",
                                  grant_id=None, auth_time=None)
    id_token = mint_id_token(identity_ctx, lms, user, nonce=None, auth_time=None,
                             session_id=None, scopes=["openid"])
    for token in (access, id_token):
        kid = pyjwt.get_unverified_header(token)["kid"]
        pyjwt.decode(token, keys[kid].key, algorithms=["RS256"], audience="lms",
                     options={"verify_exp": False, "verify_iat": False})


async def test_jwks_media_type_follows_accept(identity_client: AppClient) -> None:
    http = identity_client(discovery.routes(""))
    plain = await http.get("/oauth2/jwks")
    assert plain.headers["content-type"].startswith("application/json")
    typed = await http.get("/oauth2/jwks", headers={"accept": "application/jwk-set+json"})
    assert typed.headers["content-type"].startswith("application/jwk-set+json")


async def test_jwks_keeps_retired_keys_for_the_overlap(
        identity_ctx: IdentityContext, identity_client: AppClient, clock: Clock) -> None:
    before = {key["kid"] for key in (await get_json(identity_client, "", "/oauth2/jwks"))["keys"]}
    new = await identity_ctx.keys.rotate(overlap=600)
    during = {key["kid"] for key in (await get_json(identity_client, "", "/oauth2/jwks"))["keys"]}
    assert during == before | set(new)
    clock.advance(601)
    after = {key["kid"] for key in (await get_json(identity_client, "", "/oauth2/jwks"))["keys"]}
    assert after == set(new)
