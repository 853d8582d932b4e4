"""``PUT /config`` with an ``ai:`` section: provider keys are sealed before they are
stored, the same plaintext again is no change, and a change is named in the diff."""

from __future__ import annotations

from typing import Any

import httpx


def ai(key: str, read: float = 120) -> dict[str, Any]:
    return {"ai": {
        "providers": [{"name": "main", "type": "openai", "api_key": key,
                       "timeouts": {"read": read}}],
        "models": [{"name": "gpt-fast", "targets": [{"provider": "main",
                                                     "model": "gpt-4o-mini"}]}]}}


async def test_put_config_seals_provider_keys(client: httpx.AsyncClient) -> None:
    first = await client.put("/config", json=ai("sk-admin-secret"))
    assert first.status_code == 200 and first.json()["changed"] is True
    text = (await client.get("/config")).text
    assert "sk-admin-secret" not in text and "enc1$" in text
    again = await client.put("/config", json=ai("sk-admin-secret"))
    assert again.json()["changed"] is False
    changed = await client.put("/config", json=ai("sk-admin-secret", read=30))
    assert changed.json()["changes"] == [
        {"action": "updated", "kind": "ai_provider", "name": "main"}]
