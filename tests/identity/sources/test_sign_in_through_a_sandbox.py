"""campusgate federating to campusgate: one gateway's ClassLink source pointed at
another gateway's ClassLink-shaped sandbox (its two base URLs), the whole way through
real ``campusgate serve`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from identity_harness import ServedGateway, pkce, serve_gateway
from sources_harness import APP_CALLBACK, APP_LAUNCH, APP_SECRET, browse

DOWNSTREAM_SECRET = "downstream-secret-0123456789abcdef"

DISTRICT = """\
  clients:
    - client_id: downstream
      client_secret: {secret}
      token_endpoint_auth_method: client_secret_post
      redirect_uris: [http://127.0.0.1:1/placeholder]
      scopes: [openid, profile, email, roster]
      require_consent: false
  classlink_sandbox:
    default_tenant_id: 77
    default_tenant_name: Shelbyville Schools
"""

APPS = """\
  clients:
    - client_id: quiz
      client_secret: {app_secret}
      redirect_uris: [{callback}]
      initiate_login_uri: {launch}
      scopes: [openid, profile, email, offline_access, roster]
      require_consent: false
  sources:
    - type: classlink
      client_id: downstream
      client_secret: {secret}
      launchpad_url: {district}
      api_url: {district}
"""


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[tuple[ServedGateway, ServedGateway]]:
    (tmp_path / "district").mkdir()
    (tmp_path / "apps").mkdir()
    district = serve_gateway(tmp_path / "district",
                             DISTRICT.format(secret=DOWNSTREAM_SECRET))
    try:
        apps = serve_gateway(tmp_path / "apps", APPS.format(
            app_secret=APP_SECRET, callback=APP_CALLBACK, launch=APP_LAUNCH,
            secret=DOWNSTREAM_SECRET, district=district.issuer))
    except BaseException:
        district.stop()
        raise
    with district.admin_client() as admin:
        changed = admin.patch("/identity/clients/downstream", json={
            "redirect_uris": [f"{apps.issuer}/oauth2/sources/classlink/callback"]})
    assert changed.status_code == 200, changed.text
    yield district, apps
    apps.stop()
    district.stop()


def test_a_district_sandbox_is_a_classlink_for_another_gateway(
        gateways: tuple[ServedGateway, ServedGateway]) -> None:
    district, apps = gateways
    district.create_user("mkrabappel", "a-district-password-1", name="Edna Krabappel",
                         email="edna@shelbyville.k12.us", claims={"role": "teacher"})
    verifier, challenge = pkce()
    query = httpx.QueryParams(response_type="code", client_id="quiz",
                              redirect_uri=APP_CALLBACK, state="s", nonce="n",
                              scope="openid profile roster offline_access",
                              code_challenge=challenge, code_challenge_method="S256")
    with httpx.Client() as browser:
        landing = browse(browser, f"{apps.issuer}/oauth2/authorize?{query}",
                         password=("mkrabappel", "a-district-password-1"))
    assert str(landing).startswith(APP_CALLBACK), landing
    tokens = httpx.post(f"{apps.issuer}/oauth2/token", auth=("quiz", APP_SECRET), data={
        "grant_type": "authorization_code", "code": landing.params["code"],
        "redirect_uri": APP_CALLBACK, "code_verifier": verifier}).json()
    assert tokens["refresh_token"]
    claims = httpx.get(f"{apps.issuer}/oauth2/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert claims["name"] == "Edna Krabappel"
    assert claims["role"] == "teacher"
    assert claims["tenant_id"] == "77"
    assert claims["district"] == "Shelbyville Schools"
