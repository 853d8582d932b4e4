from __future__ import annotations

import httpx
import pytest


@pytest.fixture
async def two_services(client: httpx.AsyncClient) -> None:
    for name in ("a", "b"):
        response = await client.post("/services", json={
            "name": name, "url": "http://127.0.0.1:9000",
            "routes": [{"name": f"{name}-route", "paths": [f"/{name}"]}],
        })
        assert response.status_code == 201


async def test_list_and_get_show_the_service(
    client: httpx.AsyncClient, two_services: None
) -> None:
    listed = (await client.get("/routes")).json()["data"]
    assert [(r["name"], r["service"]) for r in listed] == [("a-route", "a"), ("b-route", "b")]
    got = await client.get("/routes/b-route")
    assert got.json()["service"] == "b"
    assert got.headers["x-campusgate-revision"] == "2"
    assert (await client.get("/routes/nope")).status_code == 404


async def test_put_replaces_in_place(client: httpx.AsyncClient, two_services: None) -> None:
    response = await client.put("/routes/a-route",
                                json={"name": "a-route", "paths": ["/new"], "methods": ["GET"]})
    assert response.status_code == 200
    assert response.json()["service"] == "a"
    service = (await client.get("/services/a")).json()
    assert service["routes"][0]["paths"] == ["/new"]
    missing = await client.put("/routes/nope", json={"name": "nope", "paths": ["/x"]})
    assert missing.status_code == 404
    nothing = await client.put("/routes/a-route", json={"name": "a-route"})
    assert nothing.status_code == 422
    assert "at least one of" in nothing.json()["error"]["details"][0]["message"]


async def test_delete(client: httpx.AsyncClient, two_services: None) -> None:
    assert (await client.delete("/routes/a-route")).status_code == 204
    assert (await client.get("/services/a")).json()["routes"] == []
    assert (await client.delete("/routes/a-route")).status_code == 404
