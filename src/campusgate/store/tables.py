"""The store's tables (SQLAlchemy Core).  Migrations in ``migrations/versions`` create
them; ``tests/store/test_migrations.py`` checks the two agree.

Times are ``DateTime(timezone=True)`` where people read them, and epoch seconds
(``BigInteger``) where tokens and keys are compared with JWT ``iat``/``exp``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "admin_tokens",
    "config_revisions",
    "identity_consents",
    "identity_grants",
    "identity_refresh_tokens",
    "identity_signing_keys",
    "identity_users",
    "metadata",
    "settings",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: One row per revision of the entities.  ``revision`` is assigned by the writer as
#: latest + 1, so two racing writers collide on the primary key instead of both
#: succeeding: that collision is how optimistic concurrency is enforced.
config_revisions = Table(
    "config_revisions",
    metadata,
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(200), nullable=False),
    Column("entities", Text, nullable=False),
)

#: Small key/value settings of the installation.
settings = Table(
    "settings",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Admin API tokens: only a SHA-256 of each token is kept, plus a short visible prefix
#: so operators can tell tokens apart.  Revoked tokens stay, with ``revoked_at`` set.
admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


# ---------------------------------------------------------------- identity provider
# Users, consents, grants, refresh tokens and signing keys of the built-in OpenID
# provider (``identity/directory.py``).  Its clients are entities (config revisions).

#: Local accounts.  ``username`` is stored lowercased (unique, case-insensitive);
#: ``claims`` is a JSON object of further OIDC claims; ``password_hash`` is argon2id.
identity_users = Table(
    "identity_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("email", String(320), nullable=True, index=True),
    Column("email_verified", Boolean, nullable=False),
    Column("name", String(200), nullable=True),
    Column("given_name", String(200), nullable=True),
    Column("family_name", String(200), nullable=True),
    Column("claims", Text, nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: What a user allowed a client: ``scopes`` space-separated, sorted.
identity_consents = Table(
    "identity_consents",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("client_id", String(128), primary_key=True, index=True),
    Column("scopes", Text, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

#: One authorization (a refresh-token family).  ``auth_time`` is epoch seconds.
identity_grants = Table(
    "identity_grants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("scope", Text, nullable=False),
    Column("auth_time", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_identity_grants_user_id_client_id", "user_id", "client_id"),
)

#: Refresh tokens by SHA-256 (hex) only; times in epoch seconds.  ``used_at`` is set
#: once, atomically, on redemption: a second use is a replay.
identity_refresh_tokens = Table(
    "identity_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", String(36), nullable=False, index=True),
    Column("client_id", String(128), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("scope", Text, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

#: Token-signing keys; the private JWK is encrypted with the installation keyring.
identity_signing_keys = Table(
    "identity_signing_keys",
    metadata,
    Column("kid", String(100), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk_encrypted", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
)
