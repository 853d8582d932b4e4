"""The consumers of one snapshot, indexed the way authentication looks them up.

Built once per config revision from the sealed entities: API-key digests, basic-auth
usernames, JWT keys and HMAC key ids map straight to their consumer, so each lookup
on the request path is one dictionary access.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from campusgate.config.consumers import (
    BasicAuthCredential,
    Consumer,
    Credential,
    HmacAuthCredential,
    JwtCredential,
    KeyAuthCredential,
    consumer_id,
    credential_natural_id,
)
from campusgate.keyring import Keyring, KeyringError

__all__ = ["ConsumerIndex", "ConsumerInfo", "JwtKey"]

log = logging.getLogger("campusgate.consumers")


@dataclass(frozen=True, slots=True, eq=False)
class ConsumerInfo:
    """What the data plane knows of a consumer."""

    id: str
    name: str
    custom_id: str | None
    groups: tuple[str, ...]
    tags: tuple[str, ...]
    #: True for the consumer an ``anonymous`` setting maps unauthenticated calls to.
    anonymous: bool = False

    @classmethod
    def of(cls, consumer: Consumer) -> ConsumerInfo:
        return cls(consumer_id(consumer.name), consumer.name, consumer.custom_id,
                   tuple(consumer.groups), tuple(consumer.tags))


@dataclass(frozen=True, slots=True, eq=False)
class JwtKey:
    """A consumer's JWT verification key: ``secret`` (decrypted) or ``public_key``."""

    consumer: ConsumerInfo
    credential: str
    algorithm: str
    secret: bytes | None
    public_key: str | None


@dataclass(eq=False)
class ConsumerIndex:
    by_name: dict[str, ConsumerInfo] = field(default_factory=dict)
    by_custom_id: dict[str, ConsumerInfo] = field(default_factory=dict)
    #: raw HMAC digest of an API key -> (consumer, credential id)
    api_keys: dict[bytes, tuple[ConsumerInfo, str]] = field(default_factory=dict)
    #: username -> (consumer, credential id, argon2id hash)
    basic: dict[str, tuple[ConsumerInfo, str, str]] = field(default_factory=dict)
    #: JWT credential ``key`` -> its verification key
    jwt: dict[str, JwtKey] = field(default_factory=dict)
    #: hmac-auth key id -> (consumer, credential id, secret)
    hmac: dict[str, tuple[ConsumerInfo, str, bytes]] = field(default_factory=dict)

    @classmethod
    def build(cls, consumers: list[Consumer], keyring: Keyring) -> ConsumerIndex:
        """Index sealed consumers (plaintext credentials are accepted too, for tests
        and for configs compiled straight from a file)."""
        index = cls()
        for consumer in consumers:
            info = ConsumerInfo.of(consumer)
            index.by_name[info.name] = info
            if info.custom_id:
                index.by_custom_id[info.custom_id] = info
            for cred in consumer.credentials:
                cred_id = credential_natural_id(cred)
                try:
                    index._add(info, cred, cred_id, keyring)
                except KeyringError as exc:
                    # one unreadable secret must not take every other consumer down
                    log.error("consumer %s: credential %s is ignored: %s", info.name,
                              cred_id, exc)
        return index

    def _add(self, info: ConsumerInfo, cred: Credential, cred_id: str,
             keyring: Keyring) -> None:
        if isinstance(cred, KeyAuthCredential):
            digest = (keyring.digest_of(cred.key_hash) if cred.key_hash
                      else keyring.key_digest(cred.key or ""))
            self.api_keys[digest] = (info, cred_id)
        elif isinstance(cred, BasicAuthCredential):
            stored = cred.password_hash or keyring.hash_password(cred.password or "")
            self.basic[cred.username] = (info, cred_id, stored)
        elif isinstance(cred, JwtCredential):
            secret = None
            if cred.secret_encrypted is not None:
                secret = keyring.decrypt(cred.secret_encrypted).encode("utf-8")
            elif cred.secret is not None:
                secret = cred.secret.encode("utf-8")
            self.jwt[cred.key] = JwtKey(info, cred_id, cred.algorithm, secret, cred.public_key)
        elif isinstance(cred, HmacAuthCredential):
            secret_text = (keyring.decrypt(cred.secret_encrypted)
                           if cred.secret_encrypted is not None else cred.secret or "")
            self.hmac[cred.key_id] = (info, cred_id, secret_text.encode("utf-8"))

    def find(self, value: str, by: str = "name") -> ConsumerInfo | None:
        """A consumer by ``name``, ``custom_id`` or ``id``."""
        if by == "custom_id":
            return self.by_custom_id.get(value)
        if by == "id":
            return next((c for c in self.by_name.values() if c.id == value), None)
        return self.by_name.get(value)
