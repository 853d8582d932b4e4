from __future__ import annotations

import asyncio

import httpx

from campusgate.admin import StaticRuntime

UPSTREAM = {"name": "pool", "targets": [{"target": "127.0.0.1:9001"}]}


async def test_create_get_list(client: httpx.AsyncClient, runtime: StaticRuntime) -> None:
    created = await client.post("/upstreams", json=UPSTREAM)
    assert created.status_code == 201
    assert created.headers["x-campusgate-revision"] == "1"
    assert created.json()["targets"] == [{"target": "127.0.0.1:9001", "weight": 100}]
    assert runtime.reloads == 1
    assert (await client.get("/upstreams/pool")).json() == created.json()
    assert [u["name"] for u in (await client.get("/upstreams")).json()["data"]] == ["pool"]


async def test_duplicate_is_409_and_missing_is_404(client: httpx.AsyncClient) -> None:
    await client.post("/upstreams", json=UPSTREAM)
    again = await client.post("/upstreams", json=UPSTREAM)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    for response in (await client.get("/upstreams/nope"),
                     await client.delete("/upstreams/nope"),
                     await client.post("/upstreams/nope/targets", json={"target": "a:1"})):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_invalid_target_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/upstreams", json={"name": "pool", "targets": [{"target": "no-port"}]}
    )
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "targets[0].target"
    assert "HOST:PORT" in detail["message"]


async def test_put_replaces_or_creates(client: httpx.AsyncClient) -> None:
    created = await client.put("/upstreams/pool", json=UPSTREAM)
    assert created.status_code == 201
    replaced = await client.put(
        "/upstreams/pool", json={**UPSTREAM, "algorithm": "least-connections"}
    )
    assert replaced.status_code == 200
    assert replaced.headers["x-campusgate-revision"] == "2"
    assert (await client.get("/upstreams/pool")).json()["algorithm"] == "least-connections"
    renamed = await client.put("/upstreams/pool", json={**UPSTREAM, "name": "other"})
    assert renamed.status_code == 422
    assert renamed.json()["error"]["details"][0]["path"] == "name"


async def test_targets(client: httpx.AsyncClient) -> None:
    await client.post("/upstreams", json=UPSTREAM)
    added = await client.post("/upstreams/pool/targets", json={"target": "127.0.0.1:9002",
                                                                "weight": 5})
    assert added.status_code == 201
    dup = await client.post("/upstreams/pool/targets", json={"target": "127.0.0.1:9002"})
    assert dup.status_code == 409
    targets = (await client.get("/upstreams/pool")).json()["targets"]
    assert [t["target"] for t in targets] == ["127.0.0.1:9001", "127.0.0.1:9002"]

    removed = await client.delete("/upstreams/pool/targets/127.0.0.1:9001")
    assert removed.status_code == 204
    assert removed.headers["x-campusgate-revision"] == "3"
    assert (await client.delete("/upstreams/pool/targets/127.0.0.1:9001")).status_code == 404
    last = await client.delete("/upstreams/pool/targets/127.0.0.1:9002")
    assert last.status_code == 422
    assert last.json()["error"]["details"][0]["path"] == "upstreams[0].targets"


async def test_delete(client: httpx.AsyncClient, runtime: StaticRuntime) -> None:
    await client.post("/upstreams", json=UPSTREAM)
    response = await client.delete("/upstreams/pool")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get("/upstreams/pool")).status_code == 404
    assert runtime.reloads == 2


async def test_concurrent_writes_all_land(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(
        client.post("/upstreams", json={"name": f"pool-{i}", "targets": [{"target": "a:1"}]})
        for i in range(4)
    ))
    assert [r.status_code for r in responses] == [201] * 4
    assert sorted(r.headers["x-campusgate-revision"] for r in responses) == ["1", "2", "3", "4"]
    assert len((await client.get("/upstreams")).json()["data"]) == 4
