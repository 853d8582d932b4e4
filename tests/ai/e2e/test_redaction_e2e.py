"""``ai.redaction`` end to end: httpx -> campusgate's proxy (the real request path)
-> a scripted OpenAI-wire provider, with the directory's names read in the
background from a real SQLite store holding an imported OneRoster bundle and an
identity user.  The provider receives the redacted request, the client gets its
answer, and the access record's ``ctx.vars["ai"]["redactions"]`` has the counts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ai_shell_kit import AiGateway, FakeProvider, Seen, completion, start_ai_gateway
from roster_bundles import BUNDLE_12, zip_bundle

from campusgate.config.model import Entities
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.store import RosterStore
from campusgate.keyring import Keyring
from campusgate.proxy.gateway import Gateway
from campusgate.store import ConfigStore

EMBEDDING = json.dumps({"object": "list", "data": [{"index": 0, "embedding": [0.5]}],
                        "usage": {"prompt_tokens": 3, "total_tokens": 3}}).encode()


def answer(seen: Seen) -> tuple[int, dict[str, str], list[bytes | float | None]]:
    body = EMBEDDING if seen.path.endswith("/embeddings") else completion("Noted.")
    return 200, {"content-type": "application/json"}, [body]


async def directory_store(path: Path) -> str:
    """A migrated SQLite store with the 1.2 test roster (Ana "Annie" Rivera, Sam Lee,
    Dee Adams) and an identity user, Tara Patel."""
    dsn = f"sqlite:///{path}"
    await (await ConfigStore.open(dsn)).close()
    directory = await IdentityDirectory.open(dsn, Keyring(b"k" * 32))
    try:
        roster = RosterStore(directory.engine)
        tenant = await roster.create_tenant("lakeside")
        await roster.apply(tenant.id, read_bundle(zip_bundle(dict(BUNDLE_12))))
        await directory.create_user("tpatel", given_name="Tara", family_name="Patel")
    finally:
        await directory.close()
    return dsn


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``ctx.vars["ai"]`` of each request, as the log phase (access records) sees it."""
    seen: list[dict[str, Any]] = []
    finish = Gateway._finish

    def log_phase(self: Gateway, conn: Any, req: Any, ctx: Any, plugins: Any) -> None:
        seen.append(ctx.vars["ai"])
        finish(self, conn, req, ctx, plugins)

    monkeypatch.setattr(Gateway, "_finish", log_phase)
    return seen


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FakeProvider, AiGateway]]:
    provider = await FakeProvider(answer).start()
    target = {"provider": "p0", "model": "m0"}
    entities = {"ai": {
        "providers": [{"name": "p0", "type": "openai", "base_url": provider.url,
                       "api_key": "sk-test-0"}],
        "models": [{"name": "gpt-fast", "targets": [target]},
                   {"name": "open", "targets": [target]}],
        "cache": {"enabled": True},
        "redaction": {"enabled": True, "models": ["gpt-fast"],
                      "patterns": [{"name": "student_id", "regex": r"\bS\d{7}\b"}]}}}
    gateway = await start_ai_gateway(entities)
    try:
        gateway.runtime.storage = await directory_store(tmp_path / "cg.db")
        gateway.runtime.update(Entities.model_validate(entities).ai)  # the worker's way
        for _ in range(500):
            names = gateway.runtime.names
            if names is not None and names.index is not None:
                break
            await asyncio.sleep(0.01)
        yield provider, gateway
    finally:
        await gateway.close()
        await provider.close()


PROMPT = ("Annie Rivera (S1234567, annie@lakeside.example, 415-555-2671) and "
          "Lee, Sam asked Tara Patel about May's essay.")
SENT = ("[name] ([student_id], [email], [phone]) and [name] asked [name] about "
        "May's essay.")


async def test_the_provider_gets_the_redacted_request_and_the_record_the_counts(
        served: tuple[FakeProvider, AiGateway], records: list[dict[str, Any]]) -> None:
    provider, gateway = served
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        answered = await client.post("/v1/chat/completions", json={
            "model": "gpt-fast", "messages": [
                {"role": "system", "content": "Help Dee Adams's class."},
                {"role": "user", "content": PROMPT}]})
        again = await client.post("/v1/chat/completions", json={
            "model": "gpt-fast", "messages": [
                {"role": "system", "content": "Help Dee Adams's class."},
                {"role": "user", "content": PROMPT.replace("annie@", "ana@")}]})
    assert answered.status_code == 200
    assert answered.json()["choices"][0]["message"]["content"] == "Noted."
    sent = provider.seen[0].json()["messages"]
    assert sent == [{"role": "system", "content": "Help [name]'s class."},
                    {"role": "user", "content": SENT}]
    assert records[0]["redactions"] == {"name": 4, "student_id": 1, "email": 1,
                                        "phone": 1}
    # The cache keys on the redacted request: another address, the same question.
    assert again.headers["x-cache"] == "hit" and len(provider.seen) == 1


async def test_every_chat_api_and_embeddings_are_redacted(
        served: tuple[FakeProvider, AiGateway], records: list[dict[str, Any]]) -> None:
    provider, gateway = served
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        message = await client.post("/v1/messages", json={
            "model": "gpt-fast", "max_tokens": 20, "system": "Teacher: Ana Rivera",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Grade Sam Lee, sam.lee@lakeside.example"}]}]})
        embedded = await client.post("/v1/embeddings", json={
            "model": "gpt-fast", "input": ["Dee Adams", "no one"]})
        other = await client.post("/v1/chat/completions", json={
            "model": "open", "messages": [{"role": "user", "content": "Sam Lee"}]})
    assert message.status_code == 200 and message.json()["content"][0]["text"] == "Noted."
    assert provider.seen[0].json()["messages"] == [
        {"role": "system", "content": "Teacher: [name]"},
        {"role": "user", "content": [{"type": "text", "text": "Grade [name], [email]"}]}]
    assert embedded.status_code == 200
    assert provider.seen[1].json()["input"] == ["[name]", "no one"]
    assert other.status_code == 200  # a model redaction does not cover
    assert provider.seen[2].json()["messages"][0]["content"] == "Sam Lee"
    assert [r.get("redactions") for r in records] == [
        {"name": 2, "email": 1}, {"name": 1}, None]


async def test_too_much_text_is_refused_before_any_provider_call(
        served: tuple[FakeProvider, AiGateway]) -> None:
    provider, gateway = served
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        refused = await client.post("/v1/chat/completions", json={
            "model": "gpt-fast", "messages": [{"role": "user", "content": "x" * 1_000_001}]})
    assert refused.status_code == 413
    assert "ai.redaction.max_chars" in refused.json()["error"]["message"]
    assert provider.seen == []
