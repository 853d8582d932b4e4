from __future__ import annotations

from typing import Any

import httpx
import pytest

from campusgate.admin import StaticRuntime
from campusgate.config.model import state_problem
from campusgate.store import ConfigStore

CONFIG: dict[str, Any] = {
    "upstreams": [{"name": "roster-pool", "targets": [{"target": "127.0.0.1:9001"}]}],
    "services": [
        {"name": "roster", "url": "http://roster-pool",
         "routes": [{"name": "roster-api", "paths": ["/roster"], "methods": ["get"]}]},
    ],
    "plugins": [{"name": "request-id"}],
}


async def test_status_adds_store_revision(client: httpx.AsyncClient) -> None:
    await client.put("/config", json=CONFIG)
    body = (await client.get("/status")).json()
    assert body["store_revision"] == 1
    assert body["revision"] == 7  # what the runtime reports as applied
    assert {"connections", "upstreams", "uptime_seconds", "pid", "version"} <= body.keys()


async def test_get_config_when_empty(client: httpx.AsyncClient) -> None:
    response = await client.get("/config")
    assert response.json() == {"revision": 0,
                               "config": {"upstreams": [], "services": [], "plugins": [],
                                          "consumers": [], "consumer_groups": [],
                                          "identity": None, "ai": None}}


async def test_put_config_saves_diffs_and_reloads(
    client: httpx.AsyncClient, runtime: StaticRuntime, store: ConfigStore
) -> None:
    response = await client.put("/config", json=CONFIG)
    assert response.status_code == 200
    assert response.headers["x-campusgate-revision"] == "1"
    assert response.json() == {
        "revision": 1,
        "changed": True,
        "changes": [
            {"action": "created", "kind": "upstream", "name": "roster-pool"},
            {"action": "created", "kind": "service", "name": "roster"},
            {"action": "created", "kind": "route", "name": "roster-api"},
            {"action": "created", "kind": "plugin", "name": "request-id"},
        ],
    }
    assert runtime.reloads == 1
    got = (await client.get("/config")).json()
    assert got["revision"] == 1
    assert got["config"]["services"][0]["routes"][0]["methods"] == ["GET"]

    again = (await client.put("/config", json=CONFIG)).json()
    assert again == {"revision": 1, "changed": False, "changes": []}
    assert runtime.reloads == 1

    changed = {**CONFIG, "plugins": []}
    assert (await client.put("/config", json=changed)).json()["changes"] == [
        {"action": "deleted", "kind": "plugin", "name": "request-id"}
    ]
    assert runtime.reloads == 2
    history = (await client.get("/config/revisions")).json()["data"]
    assert [h["revision"] for h in history] == [2, 1]
    assert history[0]["source"] == "admin-api: PUT /config"
    old = (await client.get("/config/revisions/1")).json()
    assert old["config"]["plugins"] == [{"name": "request-id", "enabled": True,
                                         "config": old["config"]["plugins"][0]["config"]}]
    assert (await client.get("/config/revisions/99")).status_code == 404


async def test_dry_run_saves_nothing(
    client: httpx.AsyncClient, runtime: StaticRuntime, store: ConfigStore
) -> None:
    response = await client.put("/config", params={"dry_run": "true"}, json=CONFIG)
    assert response.status_code == 200
    body = response.json()
    assert body["revision"] == 0 and body["changed"] is True
    assert len(body["changes"]) == 4
    assert await store.latest_revision() == 0
    assert runtime.reloads == 0


async def test_expected_revision_conflict(client: httpx.AsyncClient) -> None:
    await client.put("/config", json=CONFIG)
    stale = await client.put("/config", params={"expected_revision": 0}, json={})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "conflict"
    fresh = await client.put("/config", params={"expected_revision": 1}, json={})
    assert fresh.json()["revision"] == 2


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    bad = {"services": [{"name": "s", "url": "http://a:1", "routes": [
        {"name": "ok", "paths": ["/a"]},
        {"name": "bad", "paths": ["no-slash"]},
    ]}]}
    response = await client.put("/config", json=bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["path"].startswith("services[0].routes[1].paths")
    assert "must start with '/'" in error["details"][0]["message"]


async def test_unknown_plugin_and_duplicate_route_are_validation_errors(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.put("/config", json={"plugins": [{"name": "nope"}]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["path"] == "plugins[0]"
    assert "unknown plugin" in unknown.json()["error"]["details"][0]["message"]
    dup = {"services": [
        {"name": "a", "url": "http://a:1", "routes": [{"name": "r", "paths": ["/a"]}]},
        {"name": "b", "url": "http://b:1", "routes": [{"name": "r", "paths": ["/b"]}]},
    ]}
    response = await client.put("/config", json=dup)
    assert response.status_code == 422
    assert "duplicate name in routes: 'r'" in response.json()["error"]["message"]


async def test_bad_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/config", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


async def test_unknown_endpoint_and_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.post("/config", json={})
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_a_redis_backed_plugin_is_refused_when_the_gateway_state_is_memory(
        client: httpx.AsyncClient, runtime: StaticRuntime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "check", lambda entities: state_problem(entities, "memory"))
    body = {"plugins": [{"name": "hmac-auth", "config": {"backend": "redis"}}]}
    for params in ({"dry_run": "true"}, {}):
        response = await client.put("/config", json=body, params=params)
        assert response.status_code == 422
        assert "uses redis, but the state setting is memory" in response.json()["error"]["message"]


async def test_put_config_replaces_the_identity_provider_too(client: httpx.AsyncClient) -> None:
    """``campusgate apply`` of a file with an identity section sets it; of a file
    without one removes it, like every other part of the configuration."""
    identity = {"issuer": "https://id.example.edu", "clients": [
        {"client_id": "app", "token_endpoint_auth_method": "none",
         "redirect_uris": ["https://app.example.edu/cb"]}]}
    first = await client.put("/config", json={**CONFIG, "identity": identity})
    assert {"action": "created", "kind": "identity_client", "name": "app"} in \
        first.json()["changes"]
    stored = (await client.get("/config")).json()["config"]["identity"]
    assert stored["clients"][0]["client_id"] == "app"
    second = await client.put("/config", json=CONFIG)
    assert {"action": "deleted", "kind": "identity", "name": "identity"} in \
        second.json()["changes"]
    assert (await client.get("/config")).json()["config"]["identity"] is None
