from __future__ import annotations

from typing import Any

import httpx

from campusgate.admin import RuntimeInfo, StaticRuntime, create_admin_app
from campusgate.store import ConfigStore


class BrokenRuntime(StaticRuntime):
    async def reload(self) -> None:
        raise RuntimeError("secret internal detail")


def test_static_runtime_satisfies_the_protocol() -> None:
    assert isinstance(StaticRuntime(), RuntimeInfo)


async def test_crash_is_a_json_500_without_stack_trace(store: ConfigStore) -> None:
    token = await store.ensure_admin_token()
    app = create_admin_app(store, BrokenRuntime())
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/plugins", json={"name": "request-id"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


async def test_admin_api_over_postgresql(pg_dsn: str) -> None:
    store = await ConfigStore.open(pg_dsn)
    try:
        token = await store.ensure_admin_token()
        runtime = StaticRuntime()
        app = create_admin_app(store, runtime)
        headers = {"Campusgate-Admin-Token": str(token)}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t",
                                     headers=headers) as client:
            service: dict[str, Any] = {"name": "s", "url": "http://a:1",
                                       "routes": [{"name": "r", "paths": ["/r"]}]}
            assert (await client.post("/services", json=service)).status_code == 201
            assert (await client.post("/services", json=service)).status_code == 409
            assert (await client.get("/routes/r")).json()["service"] == "s"
            assert (await client.delete("/services/s")).status_code == 204
            assert (await client.get("/config")).json()["revision"] == 2
        assert runtime.reloads == 2
    finally:
        await store.close()
