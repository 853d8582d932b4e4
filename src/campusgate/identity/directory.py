"""The identity provider's durable data: users, consents, grants, refresh tokens and
signing keys, in the same SQL database as the config store (SQLite or PostgreSQL).

Secrets are kept so that a copy of the database gives nothing away: passwords as
argon2id hashes, refresh tokens as their SHA-256 (256 random bits need no slow hash,
see ``store/tokens.py``), private signing keys encrypted with the installation keyring.
Refresh-token rotation relies on one conditional ``UPDATE`` (``used_at`` set only if
still null), so exactly one of several racing workers redeems a token; the others see
a reuse (RFC 9700 4.14.2).

The schema is migrated by :meth:`ConfigStore.open <campusgate.store.ConfigStore.open>`;
:meth:`IdentityDirectory.open` only connects.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.identity import directory_rows as db
from campusgate.identity.directory_rows import token_hash
from campusgate.identity.models import Consent, Grant, RefreshToken, SigningKey, User
from campusgate.keyring import Keyring
from campusgate.store.dsn import async_url, sqlite_path
from campusgate.store.engine import create_engine, enable_sqlite_wal, writer
from campusgate.store.tables import (
    identity_consents,
    identity_grants,
    identity_refresh_tokens,
    identity_signing_keys,
    identity_users,
)

__all__ = ["USER_FIELDS", "IdentityDirectory", "UserExists", "token_hash"]

#: What :meth:`IdentityDirectory.update_user` may change (``password``: see
#: :meth:`~IdentityDirectory.set_password`).
USER_FIELDS = frozenset({"username", "email", "email_verified", "name", "given_name",
                         "family_name", "claims", "disabled"})

_users = identity_users.c
_consents = identity_consents.c
_grants = identity_grants.c
_tokens = identity_refresh_tokens.c
_keys = identity_signing_keys.c


class UserExists(Exception):
    """Another user already has this username."""

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"a user named {username!r} already exists")


def _normal_username(username: str) -> str:
    value = username.strip().lower()
    if not value:
        raise ValueError("a username must not be empty")
    return value


def _normal_email(email: str | None) -> str | None:
    # Stored lowercased: found case-insensitively, through the index.
    return (email.strip().lower() or None) if email is not None else None


def _scope_text(scopes: Iterable[str]) -> str:
    return " ".join(sorted(set(scopes)))


class IdentityDirectory:
    """Async access to the identity tables (one per worker; owns its engine)."""

    @classmethod
    async def open(cls, dsn: str, keyring: Keyring) -> IdentityDirectory:
        """Connect to an already migrated store."""
        url = async_url(dsn)
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            await enable_sqlite_wal(path)
        return cls(create_engine(url), keyring)

    def __init__(self, engine: AsyncEngine, keyring: Keyring) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self.keyring = keyring
        self._dummy_hash: str | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine (and pool) shared with the stores on the same database, such as
        the roster (``identity/roster/store.py``)."""
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    # ------------------------------------------------------------ users

    async def create_user(self, username: str, password: str | None = None, *,
                          email: str | None = None, email_verified: bool = False,
                          name: str | None = None, given_name: str | None = None,
                          family_name: str | None = None,
                          claims: dict[str, Any] | None = None) -> User:
        """A new user (``UserExists`` when the username is taken, in any case)."""
        stamp = db.now()
        password_hash = (await asyncio.to_thread(self.keyring.hash_password, password)
                         if password is not None else None)
        user = User(id=str(uuid.uuid4()), username=_normal_username(username),
                    email=_normal_email(email), email_verified=email_verified, name=name,
                    given_name=given_name, family_name=family_name,
                    claims=dict(claims or {}), disabled=False, created_at=stamp,
                    updated_at=stamp, password_hash=password_hash)
        try:
            async with self._writer.begin() as conn:
                await conn.execute(insert(identity_users).values(db.user_row(user)))
        except IntegrityError:
            raise UserExists(user.username) from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(identity_users).where(_users.id == user_id))).first()
        return db.user(row) if row is not None else None

    async def find_user(self, login: str) -> User | None:
        """The user whose username is ``login`` or, failing that, the one user whose
        email it is (None when several users share that email)."""
        value = login.strip().lower()
        if not value:
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(identity_users).where(_users.username == value))).first()
            if row is None and "@" in value:
                rows = (await conn.execute(
                    select(identity_users).where(_users.email == value).limit(2))).all()
                row = rows[0] if len(rows) == 1 else None
        return db.user(row) if row is not None else None

    async def list_users(self, *, offset: int = 0, limit: int = 100,
                         search: str | None = None) -> list[User]:
        """Users by username; ``search`` matches part of the username, email or name."""
        query = select(identity_users).order_by(_users.username)
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace(
                "%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(_users.username.like(pattern, escape="\\"),
                                    _users.email.like(pattern, escape="\\"),
                                    _users.name.ilike(pattern, escape="\\")))
        query = query.offset(max(offset, 0)).limit(max(limit, 0))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [db.user(row) for row in rows]

    async def update_user(self, user_id: str, **changes: Any) -> User | None:
        """Change some of :data:`USER_FIELDS`; None when there is no such user.

        Raises ``UserExists`` when renaming to a taken username, ``TypeError`` for a
        field that cannot be changed this way.
        """
        unknown = set(changes) - USER_FIELDS
        if unknown:
            raise TypeError(f"cannot change user field(s): {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "username" in values:
            values["username"] = _normal_username(values["username"])
        if "email" in values:
            values["email"] = _normal_email(values["email"])
        if "claims" in values:
            values["claims"] = json.dumps(dict(values["claims"] or {}))
        values["updated_at"] = db.now()
        try:
            async with self._writer.begin() as conn:
                result = await conn.execute(
                    update(identity_users).where(_users.id == user_id).values(values))
        except IntegrityError:
            raise UserExists(str(values.get("username"))) from None
        return await self.get_user(user_id) if result.rowcount else None

    async def set_password(self, user_id: str, password: str) -> bool:
        """Replace the user's password; False when there is no such user."""
        stored = await asyncio.to_thread(self.keyring.hash_password, password)
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(identity_users).where(_users.id == user_id)
                .values(password_hash=stored, updated_at=db.now()))
        return bool(result.rowcount)

    async def delete_user(self, user_id: str) -> bool:
        """Remove the user with their consents, revoking their grants and tokens."""
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(identity_users).where(_users.id == user_id))
            await conn.execute(delete(identity_consents).where(_consents.user_id == user_id))
            await db.revoke_grants(conn, _grants.user_id == user_id)
        return bool(result.rowcount)

    async def verify_password(self, user: User, password: str) -> bool:
        """Whether ``password`` is the user's (argon2id, off the event loop).

        A user without a password costs the same time (a dummy hash is checked), so
        the answer's timing does not tell which accounts have one.  Whether the user
        is ``disabled`` is for the caller to check.
        """
        stored = user.password_hash
        if stored is None:
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(
                    self.keyring.hash_password, uuid.uuid4().hex)
            await asyncio.to_thread(self.keyring.verify_password, self._dummy_hash, password)
            return False
        return await asyncio.to_thread(self.keyring.verify_password, stored, password)

    # ------------------------------------------------------------ consents

    async def consent_covers(self, user_id: str, client_id: str,
                             scopes: Iterable[str]) -> bool:
        """Whether the user already allowed the client every one of ``scopes``."""
        async with self._engine.connect() as conn:
            stored = await conn.scalar(select(_consents.scopes).where(
                _consents.user_id == user_id, _consents.client_id == client_id))
        return stored is not None and set(scopes) <= set(stored.split())

    async def save_consent(self, user_id: str, client_id: str, scopes: Iterable[str]) -> None:
        """Remember that the user allowed ``scopes`` (added to what they allowed before)."""
        wanted = set(scopes)
        where = and_(_consents.user_id == user_id, _consents.client_id == client_id)
        for attempt in range(3):
            try:
                async with self._writer.begin() as conn:
                    # FOR UPDATE: a concurrent save waits, then merges with ours
                    # (SQLite: the writer transaction's lock does the same).
                    stored = await conn.scalar(
                        select(_consents.scopes).where(where).with_for_update())
                    if stored is None:
                        await conn.execute(insert(identity_consents).values(
                            user_id=user_id, client_id=client_id,
                            scopes=_scope_text(wanted), granted_at=db.now()))
                    else:
                        await conn.execute(update(identity_consents).where(where).values(
                            scopes=_scope_text(wanted | set(stored.split())),
                            granted_at=db.now()))
                return
            except IntegrityError:  # a concurrent first consent: merge with it
                if attempt == 2:
                    raise

    async def list_consents(self, *, user_id: str | None = None,
                            client_id: str | None = None) -> list[Consent]:
        query = select(identity_consents).order_by(_consents.user_id, _consents.client_id)
        if user_id is not None:
            query = query.where(_consents.user_id == user_id)
        if client_id is not None:
            query = query.where(_consents.client_id == client_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Consent(user_id=row.user_id, client_id=row.client_id,
                        scopes=frozenset(row.scopes.split()),
                        granted_at=db.aware(row.granted_at)) for row in rows]

    async def revoke_consent(self, user_id: str, client_id: str) -> bool:
        """Forget the consent and revoke the grants (refresh tokens) it led to; False
        when there was no consent."""
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(identity_consents).where(
                _consents.user_id == user_id, _consents.client_id == client_id))
            await db.revoke_grants(conn, and_(_grants.user_id == user_id,
                                            _grants.client_id == client_id))
        return bool(result.rowcount)

    # ------------------------------------------------------------ grants and refresh tokens

    async def create_grant(self, client_id: str, user_id: str | None, scope: str,
                           auth_time: int | None) -> Grant:
        grant = Grant(id=str(uuid.uuid4()), client_id=client_id, user_id=user_id,
                      scope=scope, auth_time=auth_time, created_at=db.now(), revoked_at=None)
        async with self._writer.begin() as conn:
            await conn.execute(insert(identity_grants).values(
                id=grant.id, client_id=client_id, user_id=user_id, scope=scope,
                auth_time=auth_time, created_at=grant.created_at, revoked_at=None))
        return grant

    async def get_grant(self, grant_id: str) -> Grant | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(identity_grants).where(_grants.id == grant_id))).first()
        if row is None:
            return None
        return Grant(id=row.id, client_id=row.client_id, user_id=row.user_id,
                     scope=row.scope, auth_time=row.auth_time,
                     created_at=db.aware(row.created_at),
                     revoked_at=db.aware(row.revoked_at) if row.revoked_at else None)

    async def revoke_grant(self, grant_id: str) -> None:
        """Revoke the grant and every refresh token of its family."""
        async with self._writer.begin() as conn:
            await db.revoke_grants(conn, _grants.id == grant_id)

    async def save_refresh_token(self, token: str, grant: Grant, issued_at: int,
                                 expires_at: int) -> None:
        """Keep a new refresh token of ``grant``'s family (by hash only)."""
        async with self._writer.begin() as conn:
            await conn.execute(insert(identity_refresh_tokens).values(
                token_hash=token_hash(token), grant_id=grant.id, client_id=grant.client_id,
                user_id=grant.user_id, scope=grant.scope, issued_at=issued_at,
                expires_at=expires_at, used_at=None, revoked_at=None))

    async def find_refresh_token(self, token: str) -> RefreshToken | None:
        """The token's record, used or not, expired or not (the caller decides)."""
        async with self._engine.connect() as conn:
            return await db.read_refresh_token(conn, token_hash(token))

    async def use_refresh_token(self, token: str, now: int) -> tuple[RefreshToken, bool] | None:
        """Mark the token used, atomically across workers: ``(record, True)`` for the
        one first use, ``(record, False)`` for any later one (a replay: revoke the
        family).  None for an unknown token."""
        digest = token_hash(token)
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(identity_refresh_tokens)
                .where(_tokens.token_hash == digest, _tokens.used_at.is_(None))
                .values(used_at=now))
            record = await db.read_refresh_token(conn, digest)
        return (record, result.rowcount == 1) if record is not None else None

    async def revoke_refresh_token(self, token: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                update(identity_refresh_tokens)
                .where(_tokens.token_hash == token_hash(token), _tokens.revoked_at.is_(None))
                .values(revoked_at=int(time.time())))

    async def delete_expired_refresh_tokens(self, now: int) -> int:
        """Forget refresh tokens past their expiry (housekeeping); how many."""
        async with self._writer.begin() as conn:
            result = await conn.execute(
                delete(identity_refresh_tokens).where(_tokens.expires_at <= now))
        return int(result.rowcount)

    # ------------------------------------------------------------ signing keys

    async def signing_keys(self) -> list[SigningKey]:
        """Every stored key, oldest first, decrypted (``KeyringError`` with the wrong
        installation key)."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(identity_signing_keys).order_by(_keys.created_at, _keys.kid))).all()
        return [SigningKey(kid=row.kid, alg=row.alg,
                           private_jwk=json.loads(self.keyring.decrypt(
                               row.private_jwk_encrypted)),
                           created_at=row.created_at, retired_at=row.retired_at,
                           expires_at=row.expires_at) for row in rows]

    async def add_signing_key(self, key: SigningKey) -> None:
        sealed = self.keyring.encrypt(json.dumps(key.private_jwk, sort_keys=True))
        async with self._writer.begin() as conn:
            await conn.execute(insert(identity_signing_keys).values(
                kid=key.kid, alg=key.alg, private_jwk_encrypted=sealed,
                created_at=key.created_at, retired_at=key.retired_at,
                expires_at=key.expires_at))

    async def retire_signing_key(self, kid: str, retired_at: int, expires_at: int) -> None:
        """Stop signing with ``kid``; publish it until ``expires_at`` (a key already
        retired keeps its dates)."""
        async with self._writer.begin() as conn:
            await conn.execute(
                update(identity_signing_keys)
                .where(_keys.kid == kid, _keys.retired_at.is_(None))
                .values(retired_at=retired_at, expires_at=expires_at))

    async def delete_expired_keys(self, now: int) -> int:
        """Forget keys whose publication ended; how many."""
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(identity_signing_keys).where(
                _keys.expires_at.is_not(None), _keys.expires_at <= now))
        return int(result.rowcount)
