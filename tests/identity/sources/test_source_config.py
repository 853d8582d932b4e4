"""``identity.sources``: what a login source's configuration accepts, and its client
secret sealed (encrypted: campusgate sends it back to the source)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.config.identity import IdentityConfig
from campusgate.config.identity_sources import ClassLinkSource, OidcSource
from campusgate.config.model import Entities
from campusgate.config.sealing import is_sealed, seal
from campusgate.keyring import Keyring

CLASSLINK = {"type": "classlink", "client_id": "c1", "client_secret": "s" * 20}
OIDC = {"type": "oidc", "name": "google", "issuer": "https://accounts.google.com",
        "client_id": "g1", "client_secret": "g" * 20}


def config(*sources: dict[str, Any]) -> IdentityConfig:
    return IdentityConfig.model_validate({"issuer": "https://id.example.edu",
                                          "sources": list(sources)})


def test_a_classlink_source_needs_only_its_client_id_and_secret() -> None:
    (source,) = config(CLASSLINK).sources
    assert isinstance(source, ClassLinkSource)
    assert source.name == "classlink" and source.button == "ClassLink"
    assert source.launchpad_url == "https://launchpad.classlink.com"
    assert source.api_url == "https://nodeapi.classlink.com"
    assert source.scopes == ["openid", "profile", "oneroster"]
    assert source.provision == "auto"


def test_an_openid_source_finds_its_discovery_document_under_its_issuer() -> None:
    (source,) = config(OIDC).sources
    assert isinstance(source, OidcSource)
    assert source.discovery == "https://accounts.google.com/.well-known/openid-configuration"


@pytest.mark.parametrize(("change", "complaint"), [
    ({"client_secret": None}, "exactly one of client_secret"),
    ({"client_secret_encrypted": "enc1$abc"}, "exactly one of client_secret"),
    ({"launchpad_url": "http://launchpad.example.com"}, "https"),
    ({"scopes": ["roster"]}, "scopes"),
    ({"name": "Class Link"}, "name"),
])
def test_a_bad_classlink_source_is_refused_with_a_reason(change: dict[str, Any],
                                                         complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        config({**CLASSLINK, **change})


def test_an_openid_source_must_ask_for_openid() -> None:
    with pytest.raises(ValidationError, match="must include openid"):
        config({**OIDC, "scopes": ["profile"]})


def test_two_sources_may_not_share_a_name() -> None:
    with pytest.raises(ValidationError, match="duplicate login source name: classlink"):
        config(CLASSLINK, {**OIDC, "name": "classlink"})


def test_a_local_stand_in_may_use_http_on_loopback() -> None:
    (source,) = config({**CLASSLINK, "launchpad_url": "http://127.0.0.1:9000/"}).sources
    assert isinstance(source, ClassLinkSource)
    assert source.issuer == "http://127.0.0.1:9000"


def test_the_client_secret_is_stored_encrypted_and_reads_back() -> None:
    keyring = Keyring(b"k" * 32)
    entities = Entities(identity=config(CLASSLINK, OIDC))
    assert not is_sealed(entities)
    sealed = seal(entities, keyring)
    assert is_sealed(sealed) and sealed.identity is not None
    stored = sealed.identity.sources[0]
    assert stored.client_secret is None
    assert stored.client_secret_encrypted and stored.client_secret_encrypted.startswith("enc1$")
    assert "s" * 20 not in sealed.model_dump_json()
    assert keyring.decrypt(stored.client_secret_encrypted) == "s" * 20
    # applying the same file again keeps the same sealed value (no new revision)
    again = seal(entities, keyring, previous=sealed)
    assert again.identity is not None
    assert again.identity.sources[0].client_secret_encrypted == \
        stored.client_secret_encrypted


def test_an_app_may_name_where_a_sign_in_started_elsewhere_lands() -> None:
    client = {"client_id": "quiz", "client_secret": "q" * 20,
              "redirect_uris": ["https://quiz.example.edu/cb"]}
    ok = IdentityConfig.model_validate({
        "issuer": "https://id.example.edu",
        "clients": [{**client, "initiate_login_uri": "https://quiz.example.edu/login"}]})
    assert ok.clients[0].initiate_login_uri == "https://quiz.example.edu/login"
    with pytest.raises(ValidationError, match="initiate_login_uri"):
        IdentityConfig.model_validate({
            "issuer": "https://id.example.edu",
            "clients": [{**client, "initiate_login_uri": "http://quiz.example.edu/login"}]})
