"""Identity client secrets are sealed like API keys: no plaintext reaches the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from identity_harness import SECRETS, identity_config

from campusgate.config.model import Entities
from campusgate.config.sealing import is_sealed, key_prefix, seal
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


def entities() -> Entities:
    return Entities(identity=identity_config())


def test_client_secrets_become_a_keyed_hash_and_a_prefix(keyring: Keyring) -> None:
    plain = entities()
    assert not is_sealed(plain)
    sealed = seal(plain, keyring)
    assert is_sealed(sealed) and sealed.identity is not None
    lms = sealed.identity.client("lms")
    assert lms is not None and lms.client_secret is None
    assert lms.client_secret_hash == keyring.hash_key(SECRETS["lms"])
    assert lms.client_secret_prefix == key_prefix(SECRETS["lms"])
    assert SECRETS["lms"] not in sealed.model_dump_json()
    public = sealed.identity.client("mobile")
    assert public is not None and public.client_secret_hash is None


def test_sealing_is_idempotent(keyring: Keyring) -> None:
    once = seal(entities(), keyring)
    assert seal(once, keyring) == once
    assert seal(entities(), keyring, previous=once) == once


def test_clients_without_secrets_count_as_sealed(keyring: Keyring) -> None:
    assert is_sealed(Entities())
    no_secrets = identity_config(clients=[{
        "client_id": "spa", "token_endpoint_auth_method": "none",
        "redirect_uris": ["https://spa.example.edu/cb"]}])
    assert is_sealed(Entities(identity=no_secrets))


def database_contents(path: Path) -> tuple[list[str], bytes]:
    """Every stored revision document, and the raw bytes of the database files."""
    with sqlite3.connect(path) as conn:
        rows = [row[0] for row in conn.execute("SELECT entities FROM config_revisions")]
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return rows, raw


async def test_no_plaintext_client_secret_in_the_database(tmp_path: Path,
                                                           keyring: Keyring) -> None:
    path = tmp_path / "cg.db"
    store = await ConfigStore.open(f"sqlite:///{path}", keyring=keyring)
    try:
        revision, changed = await store.save(entities(), "test")
        assert changed
        # the same plaintext again is no new revision: the keyed hash is deterministic
        assert await store.save(entities(), "test") == (revision, False)
        _, latest = await store.latest()
    finally:
        await store.close()
    rows, raw = database_contents(path)
    for secret in SECRETS.values():
        assert all(secret not in row for row in rows)
        assert secret.encode() not in raw
    assert latest.identity is not None
    reports = latest.identity.client("reports")
    assert reports is not None
    assert reports.client_secret_hash == keyring.hash_key(SECRETS["reports"])


async def test_a_store_without_a_keyring_refuses_plaintext_client_secrets(
        tmp_path: Path) -> None:
    store = await ConfigStore.open(f"sqlite:///{tmp_path}/cg.db")
    try:
        with pytest.raises(ValueError, match="cannot seal"):
            await store.save(entities(), "test")
    finally:
        await store.close()
