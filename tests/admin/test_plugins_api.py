from __future__ import annotations

import httpx


async def test_global_plugin_crud(client: httpx.AsyncClient) -> None:
    created = await client.post("/plugins", json={"name": "request-id",
                                                  "config": {"header_name": "X-Corr"}})
    assert created.status_code == 201
    assert created.json()["config"]["header_name"] == "X-Corr"
    assert created.json()["config"]["trust_incoming"] is True  # defaults filled in
    assert (await client.post("/plugins", json={"name": "request-id"})).status_code == 409
    assert [p["name"] for p in (await client.get("/plugins")).json()["data"]] == ["request-id"]
    assert (await client.get("/plugins/request-id")).status_code == 200
    assert (await client.delete("/plugins/request-id")).status_code == 204
    assert (await client.delete("/plugins/request-id")).status_code == 404
    assert (await client.get("/plugins")).json()["data"] == []


async def test_bad_plugin_config_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/plugins", json={"name": "request-termination",
                                                   "config": {"status_code": 99}})
    assert response.status_code == 422
    assert "status_code" in response.json()["error"]["message"]
