from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from campusgate.keyring import ENV_VAR, Keyring, KeyringError, load_keyring


def test_api_key_hash_is_keyed_deterministic_and_not_the_plain_sha256() -> None:
    ring = Keyring(b"k" * 32)
    assert ring.hash_key("cg_secret") == ring.hash_key("cg_secret")
    assert ring.hash_key("cg_secret") != Keyring(b"j" * 32).hash_key("cg_secret")
    assert "cg_secret" not in ring.hash_key("cg_secret")
    assert Keyring.digest_of(ring.hash_key("cg_secret")) == ring.key_digest("cg_secret")


def test_encryption_round_trips_and_fails_clearly_under_another_key() -> None:
    ring = Keyring(b"k" * 32)
    sealed = ring.encrypt("hs256-secret")
    assert "hs256-secret" not in sealed
    assert sealed != ring.encrypt("hs256-secret")  # fresh nonce each time
    assert ring.decrypt(sealed) == "hs256-secret"
    with pytest.raises(KeyringError, match="another secret key"):
        Keyring(b"x" * 32).decrypt(sealed)
    with pytest.raises(KeyringError):
        ring.decrypt(sealed[:-4] + "AAAA")  # tampered


def test_passwords_are_argon2id() -> None:
    ring = Keyring(b"k" * 32)
    stored = ring.hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert ring.verify_password(stored, "correct horse")
    assert not ring.verify_password(stored, "wrong horse")
    assert not ring.verify_password("not a hash", "correct horse")


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = tmp_path / "data" / "secret.key"
    first = load_keyring(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_keyring(path).key_id == first.key_id
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(tmp_path / "missing.key", create=False)


def test_environment_key_wins_and_must_be_long_enough(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "a passphrase that is long enough to use!")
    ring = load_keyring(tmp_path / "unused.key")
    assert not (tmp_path / "unused.key").exists()
    assert ring.key_id == load_keyring(tmp_path / "other.key").key_id
    monkeypatch.setenv(ENV_VAR, "short")
    with pytest.raises(KeyringError, match="at least 32"):
        load_keyring(tmp_path / "unused.key")


def test_subkeys_are_separate_from_each_other_and_from_key_hashes() -> None:
    keyring = Keyring(b"m" * 32)
    assert keyring.subkey("a") != keyring.subkey("b")
    assert keyring.subkey("a") == Keyring(b"m" * 32).subkey("a")
    assert keyring.subkey("a") != Keyring(b"n" * 32).subkey("a")
    # an API key that happens to be the label does not hash to the subkey
    assert keyring.key_digest("identity csrf v1") != keyring.subkey("identity csrf v1")
