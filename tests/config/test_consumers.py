"""The consumer model, sealing, and the data plane's consumer index."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.config.model import Entities
from campusgate.config.sealing import is_sealed, seal
from campusgate.config.writer import dump_yaml
from campusgate.keyring import Keyring
from campusgate.proxy.consumers import ConsumerIndex

RING = Keyring(b"s" * 32)


def entities(*consumers: dict[str, Any], **extra: Any) -> Entities:
    return Entities.model_validate({"consumers": list(consumers), **extra})


def app(**extra: Any) -> dict[str, Any]:
    return {"name": "district-app", "groups": ["partners"], **extra}


ALL_KINDS = [
    {"type": "key-auth", "key": "cg_district-app-key"},
    {"type": "basic-auth", "username": "ada", "password": "correct horse"},
    {"type": "jwt", "key": "https://issuer.example", "secret": "h" * 32},
    {"type": "jwt", "key": "rsa-issuer", "algorithm": "RS256", "public_key": "-----BEGIN..."},
    {"type": "hmac-auth", "key_id": "district-hmac", "secret": "m" * 16},
]


@pytest.mark.parametrize(("cred", "message"), [
    ({"type": "key-auth"}, "exactly one of key or key_hash"),
    ({"type": "key-auth", "key": "short"}, "at least 8"),
    ({"type": "basic-auth", "username": "a:b", "password": "long enough"}, "pattern"),
    ({"type": "jwt", "key": "k", "algorithm": "RS256", "secret": "s" * 32}, "public_key"),
    ({"type": "jwt", "key": "k", "algorithm": "HS256", "public_key": "pem"}, "secret"),
    ({"type": "jwt", "key": "k", "algorithm": "none", "secret": "s" * 32}, "algorithm"),
    ({"type": "telepathy"}, "does not match any of the expected tags"),
])
def test_bad_credentials_are_refused_at_load(cred: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        entities(app(credentials=[cred]))


def test_a_credential_cannot_belong_to_two_consumers() -> None:
    with pytest.raises(ValidationError, match="username 'ada' is defined twice"):
        entities(app(credentials=[ALL_KINDS[1]]),
                 {"name": "other", "credentials": [ALL_KINDS[1]]})


def test_anonymous_must_name_a_consumer() -> None:
    with pytest.raises(ValidationError, match="anonymous consumer 'nobody'"):
        entities(app(), services=[{"name": "s", "url": "http://127.0.0.1:1", "routes": [
                     {"name": "r", "paths": ["/"], "plugins": [
                         {"name": "key-auth", "config": {"anonymous": "nobody"}}]}]}])


def test_sealing_leaves_no_plaintext_and_is_stable() -> None:
    plain = entities(app(credentials=ALL_KINDS))
    assert not is_sealed(plain)
    sealed = seal(plain, RING)
    assert is_sealed(sealed)
    text = sealed.model_dump_json()
    for secret in ("cg_district-app-key", "correct horse", "h" * 32, "m" * 16):
        assert secret not in text
    assert sealed.consumers[0].credentials[0].key_prefix == "cg_d"  # type: ignore[union-attr]
    # sealing the same plaintext against the sealed revision gives the same document
    assert seal(plain, RING, sealed) == sealed
    # and an exported (sealed) config loads and seals to itself
    assert Entities.model_validate(sealed.model_dump(mode="json")) == sealed
    assert seal(sealed, RING) is sealed
    assert "key_hash" in dump_yaml(sealed)


def test_the_index_finds_each_credential_in_one_lookup() -> None:
    index = ConsumerIndex.build(seal(entities(app(custom_id="d-42", credentials=ALL_KINDS)),
                                     RING).consumers, RING)
    consumer, cred_id = index.api_keys[RING.key_digest("cg_district-app-key")]
    assert consumer.name == "district-app" and consumer.groups == ("partners",)
    assert cred_id.startswith("key-")
    assert RING.verify_password(index.basic["ada"][2], "correct horse")
    assert index.jwt["https://issuer.example"].secret == b"h" * 32
    assert index.jwt["rsa-issuer"].public_key == "-----BEGIN..."
    assert index.hmac["district-hmac"][2] == b"m" * 16
    assert index.find("d-42", "custom_id") is consumer
    assert index.find(consumer.id, "id") is consumer
    assert RING.key_digest("cg_wrong-key-value") not in index.api_keys


def test_a_secret_sealed_under_another_key_drops_that_credential_only(
        caplog: pytest.LogCaptureFixture) -> None:
    sealed = seal(entities(app(credentials=ALL_KINDS)), Keyring(b"o" * 32))
    index = ConsumerIndex.build(sealed.consumers, RING)  # not the key it was sealed with
    assert "https://issuer.example" not in index.jwt and "district-hmac" not in index.hmac
    assert "ada" in index.basic and "rsa-issuer" in index.jwt
    assert "credential jwt-https://issuer.example is ignored" in caplog.text
