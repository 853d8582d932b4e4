"""The cheap revision probe that workers poll sees every save, on both backends."""

from __future__ import annotations

from campusgate.config.model import Entities
from campusgate.store import ConfigStore


async def test_probe_follows_saves_from_another_store(store: ConfigStore, store_dsn: str) -> None:
    probe = store.revision_reader()
    try:
        assert await probe.read() == 0
        other = await ConfigStore.open(store_dsn, migrate=False)
        try:
            entities = Entities.model_validate({"plugins": [{"name": "request-id"}]})
            revision, _ = await other.save(entities, "test")
        finally:
            await other.close()
        assert await probe.read() == revision == await store.latest_revision()
    finally:
        await probe.close()
