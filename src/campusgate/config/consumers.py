"""Consumers, their credentials, and consumer groups.

A consumer is whoever calls the APIs: an app, a team, a district integration.
Credentials belong to a consumer.  Secrets arrive in plaintext (``key``,
``password``, ``secret``) from YAML or the admin API and are *sealed* before they are
stored (see ``config/sealing.py``): API keys become a keyed hash plus a short visible
prefix, passwords an argon2id hash, and secrets the gateway must read back (JWT HMAC
secrets, hmac-auth secrets) are encrypted.  Each credential type accepts either form,
so an exported config can be applied again.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from campusgate.config.common import Name, PluginSpec, StrictModel

__all__ = [
    "JWT_ALGORITHMS",
    "BasicAuthCredential",
    "Consumer",
    "ConsumerGroup",
    "Credential",
    "HmacAuthCredential",
    "JwtCredential",
    "KeyAuthCredential",
    "consumer_id",
]

CONSUMER_NAMESPACE = uuid.UUID("5f0c5a52-3c8e-4f6e-9a43-6b1f0e0c2a77")

JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                  "PS512", "ES256", "ES384", "ES512", "EdDSA")


def consumer_id(name: str) -> str:
    """A consumer's stable id (a UUID derived from its name)."""
    return str(uuid.uuid5(CONSUMER_NAMESPACE, name))


def _exactly_one(model: BaseModel, plain: str, sealed: str) -> None:
    if (getattr(model, plain) is None) == (getattr(model, sealed) is None):
        raise ValueError(f"give exactly one of {plain} or {sealed}")


class KeyAuthCredential(StrictModel):
    """An API key.  Stored as ``key_hash`` (HMAC-SHA256) with ``key_prefix`` visible."""

    type: Literal["key-auth"] = "key-auth"
    id: str | None = Field(default=None, max_length=128)
    key: str | None = Field(default=None, min_length=8, max_length=512)
    key_hash: str | None = Field(default=None, pattern=r"^hk1\$[A-Za-z0-9_-]{43}$")
    key_prefix: str | None = Field(default=None, max_length=16)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> KeyAuthCredential:
        _exactly_one(self, "key", "key_hash")
        return self


class BasicAuthCredential(StrictModel):
    """A username and password (stored as an argon2id hash)."""

    type: Literal["basic-auth"] = "basic-auth"
    id: str | None = Field(default=None, max_length=128)
    username: str = Field(min_length=1, max_length=128, pattern=r"^[^:\s]+$")
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    password_hash: str | None = Field(default=None, pattern=r"^\$argon2id\$")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> BasicAuthCredential:
        _exactly_one(self, "password", "password_hash")
        return self


class JwtCredential(StrictModel):
    """A key that signs JWTs for this consumer.

    ``key`` is matched against the token's key claim (``iss`` by default) or its
    ``kid``; HMAC algorithms use ``secret`` (stored encrypted), the others
    ``public_key`` (PEM, or a JWK as JSON).
    """

    type: Literal["jwt"] = "jwt"
    id: str | None = Field(default=None, max_length=128)
    key: str = Field(min_length=1, max_length=512)
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                       "PS512", "ES256", "ES384", "ES512", "EdDSA"] = "HS256"
    secret: str | None = Field(default=None, min_length=32, max_length=4096)
    secret_encrypted: str | None = Field(default=None, pattern=r"^enc1\$")
    public_key: str | None = Field(default=None, max_length=16384)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _key_material(self) -> JwtCredential:
        if self.algorithm.startswith("HS"):
            if self.public_key is not None:
                raise ValueError(f"{self.algorithm} uses secret, not public_key")
            _exactly_one(self, "secret", "secret_encrypted")
        else:
            if self.secret is not None or self.secret_encrypted is not None:
                raise ValueError(f"{self.algorithm} uses public_key, not secret")
            if not self.public_key:
                raise ValueError(f"{self.algorithm} needs public_key (PEM or JWK JSON)")
        return self


class HmacAuthCredential(StrictModel):
    """A key id and shared secret for signed requests (secret stored encrypted)."""

    type: Literal["hmac-auth"] = "hmac-auth"
    id: str | None = Field(default=None, max_length=128)
    key_id: str = Field(min_length=1, max_length=256, pattern=r'^[^",\s]+$')
    secret: str | None = Field(default=None, min_length=16, max_length=4096)
    secret_encrypted: str | None = Field(default=None, pattern=r"^enc1\$")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> HmacAuthCredential:
        _exactly_one(self, "secret", "secret_encrypted")
        return self


Credential = Annotated[
    KeyAuthCredential | BasicAuthCredential | JwtCredential | HmacAuthCredential,
    Field(discriminator="type"),
]


def credential_natural_id(cred: Credential) -> str:
    """An id for a credential without one: derived from what identifies it."""
    if cred.id:
        return cred.id
    if isinstance(cred, KeyAuthCredential):
        return f"key-{(cred.key_hash or '')[4:14] or 'unsealed'}"
    if isinstance(cred, BasicAuthCredential):
        return f"basic-{cred.username}"
    if isinstance(cred, JwtCredential):
        return f"jwt-{cred.key}"
    return f"hmac-{cred.key_id}"


class _Scoped(StrictModel):
    """Plugins attached to a consumer or group run after authentication."""

    plugins: list[PluginSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consumer_scoped_plugins(self) -> _Scoped:
        from campusgate.plugins.registry import plugin_classes

        classes = plugin_classes()
        for spec in self.plugins:
            cls = classes.get(spec.name)
            if cls is not None and not cls.attaches_to_consumers():
                raise ValueError(f"plugin {spec.name!r} cannot be attached to a consumer or "
                                 "consumer group: it runs before the consumer is known")
        return self


class Consumer(_Scoped):
    """An API consumer: its credentials, groups and consumer-scoped plugins."""

    name: Name
    custom_id: str | None = Field(default=None, max_length=256)
    groups: list[Name] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    credentials: list[Credential] = Field(default_factory=list)


class ConsumerGroup(_Scoped):
    """A named group of consumers; plugins attached here apply to every member."""

    name: Name
    tags: list[str] = Field(default_factory=list)
