"""The store never holds a plaintext secret, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from campusgate.config.model import Entities
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore
from campusgate.store.tables import config_revisions

PLAIN = Entities.model_validate({"consumers": [{"name": "app", "credentials": [
    {"type": "key-auth", "key": "cg_plaintext-key"},
    {"type": "basic-auth", "username": "ada", "password": "plaintext-password"},
    {"type": "hmac-auth", "key_id": "k1", "secret": "plaintext-hmac-secret"},
]}]})


@pytest.fixture
async def sealed_store(store_dsn: str) -> AsyncIterator[ConfigStore]:
    opened = await ConfigStore.open(store_dsn, keyring=Keyring(b"q" * 32))
    yield opened
    await opened.close()


async def test_saved_credentials_are_sealed_in_the_database(sealed_store: ConfigStore) -> None:
    revision, changed = await sealed_store.save(PLAIN, "test")
    assert changed
    async with sealed_store._engine.connect() as conn:  # the raw row, as a dump would show
        raw = await conn.scalar(select(config_revisions.c.entities))
    for secret in ("cg_plaintext-key", "plaintext-password", "plaintext-hmac-secret"):
        assert secret not in raw
    # saving the same plaintext again is not a change (sealed values are reused)
    assert await sealed_store.save(PLAIN, "test") == (revision, False)


async def test_a_store_without_a_keyring_refuses_plaintext(store: ConfigStore) -> None:
    with pytest.raises(ValueError, match="cannot seal"):
        await store.save(PLAIN, "test")
