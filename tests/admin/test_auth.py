from __future__ import annotations

import httpx
import pytest

from campusgate.store import ConfigStore


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/status"), ("GET", "/config"), ("PUT", "/config"), ("GET", "/upstreams"),
     ("POST", "/services"), ("DELETE", "/routes/x"), ("GET", "/plugins"),
     ("GET", "/config/revisions")],
)
async def test_endpoints_need_a_token(
    anonymous: httpx.AsyncClient, token: str, method: str, path: str
) -> None:
    response = await anonymous.request(method, path, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


async def test_wrong_token_is_rejected(anonymous: httpx.AsyncClient, token: str) -> None:
    for headers in ({"Authorization": "Bearer cgadm_wrong"},
                    {"Authorization": f"Basic {token}"},
                    {"Campusgate-Admin-Token": token + "x"}):
        response = await anonymous.get("/status", headers=headers)
        assert response.status_code == 401, headers
        assert token not in response.text


async def test_bearer_and_header_tokens_are_accepted(
    anonymous: httpx.AsyncClient, token: str
) -> None:
    bearer = await anonymous.get("/status", headers={"Authorization": f"Bearer {token}"})
    header = await anonymous.get("/status", headers={"Campusgate-Admin-Token": token})
    assert bearer.status_code == header.status_code == 200


async def test_rotated_token_stops_working(
    anonymous: httpx.AsyncClient, store: ConfigStore, token: str
) -> None:
    new = await store.rotate_admin_token()
    old_response = await anonymous.get("/config", headers={"Authorization": f"Bearer {token}"})
    new_response = await anonymous.get("/config", headers={"Authorization": f"Bearer {new}"})
    assert (old_response.status_code, new_response.status_code) == (401, 200)


async def test_open_endpoints(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
    spec = (await anonymous.get("/openapi.json")).json()
    assert (await anonymous.get("/docs")).status_code == 200
    assert {"/upstreams/{name}/targets", "/services/{name}/routes", "/config"} <= set(
        spec["paths"]
    )
    assert spec["paths"]["/upstreams"]["post"]["summary"] == "Create an upstream"
    assert spec["paths"]["/upstreams"]["post"]["tags"] == ["upstreams"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
