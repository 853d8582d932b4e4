from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from campusgate.config.model import Entities
from campusgate.store import ConfigStore, RevisionConflict
from campusgate.store.tables import admin_tokens


def one_service(path: str = "/a", name: str = "svc") -> Entities:
    return Entities.model_validate(
        {"services": [{"name": name, "url": "http://127.0.0.1:9000",
                       "routes": [{"name": f"{name}-route", "paths": [path]}],
                       "plugins": [{"name": "request-id", "config": {"header_name": "X-C"}}]}]}
    )


async def test_empty_store(store: ConfigStore) -> None:
    assert await store.latest_revision() == 0
    assert await store.latest() == (0, Entities())
    assert await store.get_revision(1) is None
    assert await store.history() == []


async def test_saving_the_empty_config_to_an_empty_store_is_no_change(store: ConfigStore) -> None:
    assert await store.save(Entities(), "test") == (0, False)


async def test_revisions_increase_and_round_trip(store: ConfigStore) -> None:
    first, second = one_service("/a"), one_service("/b")
    assert await store.save(first, "apply") == (1, True)
    assert await store.save(second, "admin") == (2, True)
    assert await store.latest_revision() == 2
    assert await store.latest() == (2, second)
    assert await store.get_revision(1) == first
    history = await store.history()
    assert [(h.revision, h.source) for h in history] == [(2, "admin"), (1, "apply")]
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=5) < h.created_at <= now for h in history)
    assert [h.revision for h in await store.history(limit=1)] == [2]


async def test_unchanged_save_does_not_bump(store: ConfigStore) -> None:
    await store.save(one_service(), "a")
    # Same content built independently (different dict order in the input) is equal.
    assert await store.save(one_service(), "b") == (1, False)
    assert await store.latest_revision() == 1


async def test_save_if_conflict(store: ConfigStore) -> None:
    await store.save(one_service("/a"), "a")
    assert await store.save_if(one_service("/b"), "b", expected_revision=1) == (2, True)
    with pytest.raises(RevisionConflict) as info:
        await store.save_if(one_service("/c"), "c", expected_revision=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert await store.latest() == (2, one_service("/b"))


async def test_concurrent_conditional_saves_one_wins(store: ConfigStore) -> None:
    results = await asyncio.gather(
        *(store.save_if(one_service(f"/{i}"), "race", 0) for i in range(4)),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    assert wins == [(1, True)]
    assert all(isinstance(r, RevisionConflict) for r in results if r not in wins)
    assert await store.latest_revision() == 1


async def test_concurrent_plain_saves_all_land(store: ConfigStore) -> None:
    results = await asyncio.gather(*(store.save(one_service(f"/{i}"), "x") for i in range(4)))
    assert sorted(r for r, _ in results) == [1, 2, 3, 4]
    assert await store.latest_revision() == 4


async def test_settings(store: ConfigStore) -> None:
    assert await store.get_setting("cluster.name") is None
    await store.set_setting("cluster.name", "east")
    await store.set_setting("cluster.name", "west")
    await store.set_setting("other", "")
    assert await store.get_setting("cluster.name") == "west"
    assert await store.get_setting("other") == ""


async def stored_token_rows(store: ConfigStore) -> list[Any]:
    async with store._engine.connect() as conn:
        return list((await conn.execute(select(admin_tokens))).all())


async def test_admin_token_lifecycle(store: ConfigStore) -> None:
    token = await store.ensure_admin_token()
    assert token is not None and token.startswith("cgadm_") and len(token) == 6 + 43
    assert await store.ensure_admin_token() is None
    assert await store.verify_admin_token(token)
    assert not await store.verify_admin_token(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not await store.verify_admin_token("")
    assert not await store.verify_admin_token("Bearer " + token)

    rotated = await store.rotate_admin_token()
    assert rotated != token
    assert await store.verify_admin_token(rotated)
    assert not await store.verify_admin_token(token)
    assert await store.ensure_admin_token() is None


async def test_plaintext_token_is_never_stored(store: ConfigStore) -> None:
    token = await store.ensure_admin_token()
    assert token is not None
    rows = await stored_token_rows(store)
    assert len(rows) == 1
    for value in rows[0]:
        assert token[6:] not in str(value)  # not even the random part
    assert rows[0].prefix == token[:10]


async def test_two_stores_on_one_database_see_each_other(store_dsn: str) -> None:
    a, b = await asyncio.gather(ConfigStore.open(store_dsn), ConfigStore.open(store_dsn))
    try:
        assert await a.save(one_service(), "a") == (1, True)
        assert await b.latest_revision() == 1
        assert await b.latest() == (1, one_service())
        with pytest.raises(RevisionConflict):
            await b.save_if(one_service("/z"), "b", expected_revision=0)
        tokens = await asyncio.gather(a.ensure_admin_token(), b.ensure_admin_token())
        assert len([t for t in tokens if t is not None]) == 1
    finally:
        await a.close()
        await b.close()
