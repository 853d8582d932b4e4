"""``/consumer-groups``: CRUD, members, and deleting a group consumers still name."""

from __future__ import annotations

import httpx

GROUP = {"name": "partners", "tags": ["external"],
         "plugins": [{"name": "request-termination", "config": {"status_code": 403}}]}


async def test_create_get_and_list(client: httpx.AsyncClient) -> None:
    created = await client.post("/consumer-groups", json=GROUP)
    assert created.status_code == 201
    assert created.headers["X-Campusgate-Revision"] == "1"
    got = (await client.get("/consumer-groups/partners")).json()
    assert got["tags"] == ["external"]
    assert got["plugins"][0]["config"]["status_code"] == 403
    listed = (await client.get("/consumer-groups")).json()["data"]
    assert [g["name"] for g in listed] == ["partners"]
    assert (await client.get("/consumer-groups/nope")).status_code == 404


async def test_duplicate_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post("/consumer-groups", json=GROUP)
    assert (await client.post("/consumer-groups", json=GROUP)).status_code == 409


async def test_plugins_that_run_before_authentication_are_refused(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/consumer-groups", json={
        "name": "g", "plugins": [{"name": "cors", "config": {"origins": ["*"]}}]})
    assert response.status_code == 422
    assert "runs before the consumer is known" in response.json()["error"]["message"]


async def test_put_creates_then_replaces(client: httpx.AsyncClient) -> None:
    created = await client.put("/consumer-groups/staff", json={"name": "staff"})
    assert created.status_code == 201
    replaced = await client.put("/consumer-groups/staff", json={"name": "staff", "tags": ["t"]})
    assert replaced.status_code == 200
    assert (await client.get("/consumer-groups/staff")).json()["tags"] == ["t"]
    mismatch = await client.put("/consumer-groups/staff", json={"name": "other"})
    assert mismatch.status_code == 422


async def test_members_are_the_consumers_naming_the_group(client: httpx.AsyncClient) -> None:
    await client.post("/consumer-groups", json=GROUP)
    await client.post("/consumers", json={"name": "a", "groups": ["partners"]})
    await client.post("/consumers", json={"name": "b"})
    await client.post("/consumers", json={"name": "c", "groups": ["staff", "partners"]})
    members = (await client.get("/consumer-groups/partners/consumers")).json()["data"]
    assert [m["name"] for m in members] == ["a", "c"]
    assert (await client.get("/consumer-groups/staff/consumers")).status_code == 404


async def test_deleting_a_group_in_use_keeps_the_members_label(
        client: httpx.AsyncClient) -> None:
    await client.post("/consumer-groups", json=GROUP)
    await client.post("/consumers", json={"name": "a", "groups": ["partners"]})
    deleted = await client.delete("/consumer-groups/partners")
    assert deleted.status_code == 204
    assert (await client.get("/consumer-groups/partners")).status_code == 404
    assert (await client.get("/consumers/a")).json()["groups"] == ["partners"]
    assert (await client.delete("/consumer-groups/partners")).status_code == 404
