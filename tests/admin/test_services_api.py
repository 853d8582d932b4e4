from __future__ import annotations

from typing import Any

import httpx

SERVICE: dict[str, Any] = {
    "name": "roster",
    "url": "http://127.0.0.1:9000/v1",
    "routes": [{"name": "roster-api", "paths": ["/roster"]}],
}


async def test_create_and_get(client: httpx.AsyncClient) -> None:
    created = await client.post("/services", json=SERVICE)
    assert created.status_code == 201
    assert created.json()["path"] == "/v1"
    got = (await client.get("/services/roster")).json()
    assert got["routes"][0]["name"] == "roster-api"
    assert [s["name"] for s in (await client.get("/services")).json()["data"]] == ["roster"]


async def test_conflicts(client: httpx.AsyncClient) -> None:
    await client.post("/services", json=SERVICE)
    assert (await client.post("/services", json=SERVICE)).status_code == 409
    other = {"name": "other", "url": "http://a:1",
             "routes": [{"name": "roster-api", "paths": ["/x"]}]}
    response = await client.post("/services", json=other)
    assert response.status_code == 409
    assert "roster-api" in response.json()["error"]["message"]


async def test_invalid_service_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/services", json={**SERVICE, "routes": [
        {"name": "r", "paths": ["/a"], "methods": ["FETCH"]}]})
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "routes[0].methods"
    assert "FETCH" in detail["message"]


async def test_put_replaces_routes_too(client: httpx.AsyncClient) -> None:
    await client.post("/services", json=SERVICE)
    response = await client.put("/services/roster", json={"name": "roster", "url": "http://b:2"})
    assert response.status_code == 200
    assert (await client.get("/services/roster")).json()["routes"] == []
    assert (await client.put("/services/new", json={"name": "new", "url": "http://b:2"})
            ).status_code == 201


async def test_patch_merges_top_level_fields(client: httpx.AsyncClient) -> None:
    await client.post("/services", json=SERVICE)
    response = await client.patch("/services/roster", json={"tags": ["v2"]})
    assert response.status_code == 200
    body = response.json()
    assert body["tags"] == ["v2"]
    assert body["routes"][0]["name"] == "roster-api"  # untouched
    switched = await client.patch(
        "/services/roster", json={"url": None, "upstream": {"targets": [{"target": "c:3"}]}}
    )
    assert switched.status_code == 200
    assert switched.json()["upstream"]["name"] == "roster-upstream"
    bad = await client.patch("/services/roster", json={"timeouts": {"read": -1}})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["path"] == "timeouts.read"
    assert (await client.patch("/services/nope", json={})).status_code == 404


async def test_nested_routes(client: httpx.AsyncClient) -> None:
    await client.post("/services", json=SERVICE)
    created = await client.post("/services/roster/routes",
                                json={"name": "roster-admin", "paths": ["/admin"]})
    assert created.status_code == 201
    listed = (await client.get("/services/roster/routes")).json()["data"]
    assert [r["name"] for r in listed] == ["roster-api", "roster-admin"]
    dup = await client.post("/services/roster/routes",
                            json={"name": "roster-admin", "paths": ["/x"]})
    assert dup.status_code == 409
    missing = await client.post("/services/nope/routes", json={"name": "z", "paths": ["/z"]})
    assert missing.status_code == 404


async def test_delete_removes_its_routes(client: httpx.AsyncClient) -> None:
    await client.post("/services", json=SERVICE)
    assert (await client.delete("/services/roster")).status_code == 204
    assert (await client.get("/routes/roster-api")).status_code == 404
    assert (await client.delete("/services/roster")).status_code == 404
