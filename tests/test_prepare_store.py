"""``serve``'s first step: the file is applied once -- and again under a new secret key."""

from __future__ import annotations

from pathlib import Path

import pytest

from campusgate.config.consumers import JwtCredential
from campusgate.config.model import Config
from campusgate.keyring import ENV_VAR, Keyring, load_keyring
from campusgate.server import prepare_store
from campusgate.store import ConfigStore

SECRET = "h" * 32


def config(tmp_path: Path) -> Config:
    return Config.model_validate({
        "storage": f"sqlite:///{tmp_path}/data/cg.db",
        "secret_key_file": str(tmp_path / "data" / "secret.key"),
        "consumers": [{"name": "app", "credentials": [
            {"type": "jwt", "key": "iss", "secret": SECRET}]}]})


async def stored_secret(cfg: Config, ring: Keyring) -> tuple[int, str]:
    store = await ConfigStore.open(cfg.storage, migrate=False)
    try:
        revision, entities = await store.latest()
    finally:
        await store.close()
    cred = entities.consumers[0].credentials[0]
    assert isinstance(cred, JwtCredential) and cred.secret_encrypted is not None
    return revision, ring.decrypt(cred.secret_encrypted)


async def test_the_file_is_sealed_once_and_resealed_after_a_key_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert await prepare_store(cfg, "file:test") is not None  # first start: a token
    first = load_keyring(cfg.secret_key_file, create=False)
    assert await stored_secret(cfg, first) == (1, SECRET)
    await prepare_store(cfg, "file:test")  # unchanged file, same key: nothing new
    assert (await stored_secret(cfg, first))[0] == 1

    new_key = "a brand new installation secret key, 32+ chars"
    monkeypatch.setenv(ENV_VAR, new_key)
    await prepare_store(cfg, "file:test")
    revision, secret = await stored_secret(cfg, load_keyring(cfg.secret_key_file))
    assert (revision, secret) == (2, SECRET)  # re-sealed under the new key
