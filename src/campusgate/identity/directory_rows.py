"""How the identity models map to and from the identity tables, and the queries the
directory's methods share (revoking grant families, reading a refresh token with its
grant's state)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from campusgate.identity.models import RefreshToken, User
from campusgate.store.tables import identity_grants, identity_refresh_tokens

__all__ = ["aware", "now", "read_refresh_token", "revoke_grants", "token_hash", "user",
           "user_row"]

_grants = identity_grants.c
_tokens = identity_refresh_tokens.c


def token_hash(token: str) -> str:
    """How a refresh token is stored and found: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now() -> datetime:
    """The time stamps people read (created, granted, revoked): aware UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp is written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def user_row(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "email": user.email,
            "email_verified": user.email_verified, "name": user.name,
            "given_name": user.given_name, "family_name": user.family_name,
            "claims": json.dumps(user.claims), "password_hash": user.password_hash,
            "disabled": user.disabled, "created_at": user.created_at,
            "updated_at": user.updated_at}


def user(row: Row[Any]) -> User:
    return User(id=row.id, username=row.username, email=row.email,
                email_verified=bool(row.email_verified), name=row.name,
                given_name=row.given_name, family_name=row.family_name,
                claims=json.loads(row.claims), disabled=bool(row.disabled),
                created_at=aware(row.created_at), updated_at=aware(row.updated_at),
                password_hash=row.password_hash)


async def read_refresh_token(conn: AsyncConnection, digest: str) -> RefreshToken | None:
    row = (await conn.execute(
        select(identity_refresh_tokens, _grants.revoked_at.label("grant_revoked_at"),
               _grants.id.label("grant_found"))
        .outerjoin(identity_grants, _grants.id == _tokens.grant_id)
        .where(_tokens.token_hash == digest))).first()
    if row is None:
        return None
    revoked = (row.revoked_at is not None or row.grant_revoked_at is not None
               or row.grant_found is None)
    return RefreshToken(token_hash=row.token_hash, grant_id=row.grant_id,
                        client_id=row.client_id, user_id=row.user_id, scope=row.scope,
                        issued_at=row.issued_at, expires_at=row.expires_at,
                        used_at=row.used_at, revoked=revoked)


async def revoke_grants(conn: AsyncConnection, which: Any) -> None:
    """Revoke the grants matching ``which`` and every refresh token of theirs."""
    await conn.execute(update(identity_grants)
                       .where(which, _grants.revoked_at.is_(None)).values(revoked_at=now()))
    family = select(_grants.id).where(which)
    await conn.execute(
        update(identity_refresh_tokens)
        .where(_tokens.grant_id.in_(family), _tokens.revoked_at.is_(None))
        .values(revoked_at=int(time.time())))
