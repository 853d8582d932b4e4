"""Seal credentials before they are stored: no plaintext secret reaches the store.

API keys become ``key_hash`` + ``key_prefix``; passwords an argon2id ``password_hash``;
JWT and hmac-auth secrets ``secret_encrypted``; identity-provider client secrets
(``identity.clients[*].client_secret``) ``client_secret_hash`` +
``client_secret_prefix``, exactly like API keys: they are high-entropy and checked on
every token request.  Login sources' client secrets (``identity.sources[*]``) are
campusgate's own secrets at ClassLink or an OpenID provider, sent back there on every
sign-in: ``client_secret_encrypted``.  AI providers' API keys (``ai.providers[*]``)
are sent to the provider on every call: ``api_key_encrypted``; their secret options
(``aws_secret_access_key``, ``aws_session_token``) are sealed in place, the option's
value becoming its ``enc1$`` form (``config/ai.py``).  Sealing the same plaintext again
reuses the previous revision's sealed value when it still matches, so applying an
unchanged file does not create a new revision just because a salt or nonce changed.
"""

from __future__ import annotations

from campusgate.config.ai import SECRET_OPTIONS, AiConfig, AiProvider
from campusgate.config.consumers import (
    BasicAuthCredential,
    Credential,
    HmacAuthCredential,
    JwtCredential,
    KeyAuthCredential,
)
from campusgate.config.identity import IdentityClient, IdentityConfig
from campusgate.config.identity_sources import LoginSource
from campusgate.config.model import Entities
from campusgate.keyring import ENCRYPTED_PREFIX, Keyring, KeyringError

__all__ = ["KEY_PREFIX_CHARS", "is_sealed", "key_prefix", "seal"]

KEY_PREFIX_CHARS = 10


def key_prefix(key: str) -> str:
    """The visible start of an API key: up to 10 characters, and never more than a
    quarter of the key, so a short key is not given away."""
    return key[: min(KEY_PREFIX_CHARS, len(key) // 4)]


def is_sealed(entities: Entities) -> bool:
    """Whether no credential carries a plaintext secret."""
    for consumer in entities.consumers:
        for cred in consumer.credentials:
            plain = (cred.key if isinstance(cred, KeyAuthCredential)
                     else cred.password if isinstance(cred, BasicAuthCredential)
                     else cred.secret)
            if plain is not None:
                return False
    if entities.ai is not None and not all(p.sealed() for p in entities.ai.providers):
        return False
    if entities.identity is not None:
        return (all(client.client_secret is None for client in entities.identity.clients)
                and all(source.client_secret is None for source in entities.identity.sources))
    return True


def seal(entities: Entities, keyring: Keyring, previous: Entities | None = None) -> Entities:
    """A copy of ``entities`` with every plaintext secret replaced by its sealed form."""
    if is_sealed(entities):
        return entities
    old = _previous_credentials(previous)
    consumers = []
    for consumer in entities.consumers:
        creds = [_seal_one(cred, keyring, old) for cred in consumer.credentials]
        consumers.append(consumer.model_copy(update={"credentials": creds}))
    identity = _seal_identity(entities.identity, keyring,
                              previous.identity if previous else None)
    ai = _seal_ai(entities.ai, keyring, previous.ai if previous else None)
    return entities.model_copy(update={"consumers": consumers, "identity": identity,
                                       "ai": ai})


def _seal_ai(ai: AiConfig | None, keyring: Keyring,
             previous: AiConfig | None) -> AiConfig | None:
    if ai is None:
        return None
    providers = [_seal_provider(p, keyring, previous.provider(p.name) if previous else None)
                 for p in ai.providers]
    return ai.model_copy(update={"providers": providers})


def _seal_provider(provider: AiProvider, keyring: Keyring,
                   old: AiProvider | None) -> AiProvider:
    if provider.sealed():
        return provider
    update: dict[str, object] = {}
    if provider.api_key is not None:
        stored = old.api_key_encrypted if old else None
        update = {"api_key": None, "api_key_encrypted": _reuse_sealed(
            keyring, stored, provider.api_key)}
    options = dict(provider.options)
    for name in SECRET_OPTIONS:
        value = options.get(name)
        if isinstance(value, str) and not value.startswith(ENCRYPTED_PREFIX):
            stored = old.options.get(name) if old else None
            options[name] = _reuse_sealed(keyring, stored, value)
    update["options"] = options
    return provider.model_copy(update=update)


def _seal_identity(identity: IdentityConfig | None, keyring: Keyring,
                   previous: IdentityConfig | None = None) -> IdentityConfig | None:
    if identity is None:
        return None
    clients = [_seal_client(client, keyring) for client in identity.clients]
    sources = [_seal_source(source, keyring, previous) for source in identity.sources]
    return identity.model_copy(update={"clients": clients, "sources": sources})


def _seal_source(source: LoginSource, keyring: Keyring,
                 previous: IdentityConfig | None) -> LoginSource:
    if source.client_secret is None:
        return source
    old = previous.source(source.name) if previous else None
    sealed = _reuse_sealed(keyring, old.client_secret_encrypted if old else None,
                           source.client_secret)
    return source.model_copy(update={"client_secret": None,
                                     "client_secret_encrypted": sealed})


def _seal_client(client: IdentityClient, keyring: Keyring) -> IdentityClient:
    if client.client_secret is None:
        return client
    return client.model_copy(update={
        "client_secret": None, "client_secret_hash": keyring.hash_key(client.client_secret),
        "client_secret_prefix": key_prefix(client.client_secret)})


def _previous_credentials(previous: Entities | None) -> dict[tuple[str, str], Credential]:
    found: dict[tuple[str, str], Credential] = {}
    for consumer in previous.consumers if previous else []:
        for cred in consumer.credentials:
            if isinstance(cred, BasicAuthCredential):
                found[(cred.type, cred.username)] = cred
            elif isinstance(cred, JwtCredential):
                found[(cred.type, cred.key)] = cred
            elif isinstance(cred, HmacAuthCredential):
                found[(cred.type, cred.key_id)] = cred
    return found


def _reuse_encrypted(keyring: Keyring, old: Credential | None, plain: str) -> str:
    return _reuse_sealed(keyring, getattr(old, "secret_encrypted", None), plain)


def _reuse_sealed(keyring: Keyring, stored: object, plain: str) -> str:
    """``stored`` when it is ``plain`` sealed, else ``plain`` sealed anew."""
    if isinstance(stored, str):
        try:
            if keyring.decrypt(stored) == plain:
                return stored
        except KeyringError:
            pass
    return keyring.encrypt(plain)


def _seal_one(cred: Credential, keyring: Keyring,
              old: dict[tuple[str, str], Credential]) -> Credential:
    if isinstance(cred, KeyAuthCredential) and cred.key is not None:
        return cred.model_copy(update={
            "key": None, "key_hash": keyring.hash_key(cred.key),
            "key_prefix": key_prefix(cred.key)})
    if isinstance(cred, BasicAuthCredential) and cred.password is not None:
        prev = old.get((cred.type, cred.username))
        stored = prev.password_hash if isinstance(prev, BasicAuthCredential) else None
        if stored is None or not keyring.verify_password(stored, cred.password):
            stored = keyring.hash_password(cred.password)
        return cred.model_copy(update={"password": None, "password_hash": stored})
    if isinstance(cred, JwtCredential) and cred.secret is not None:
        sealed = _reuse_encrypted(keyring, old.get((cred.type, cred.key)), cred.secret)
        return cred.model_copy(update={"secret": None, "secret_encrypted": sealed})
    if isinstance(cred, HmacAuthCredential) and cred.secret is not None:
        sealed = _reuse_encrypted(keyring, old.get((cred.type, cred.key_id)), cred.secret)
        return cred.model_copy(update={"secret": None, "secret_encrypted": sealed})
    return cred
