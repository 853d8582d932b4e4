"""Login transactions: an authorization request waiting for the user to sign in or
consent.

When the authorization endpoint needs the user (no session, ``prompt=login``,
``max_age`` passed, consent), it keeps the validated request's parameters here
(``ctx.ephemeral`` kind ``"tx"``, under the SHA-256 of a random id, 10 minutes) and
sends the browser to the login or consent page with ``?tx=<id>``.  Those pages resume
the request at ``/oauth2/authorize?tx=<id>``.  The transaction remembers which session
signed in for it, so that the resumed request does not ask for a login again (its
``prompt=login`` or ``max_age`` has just been satisfied), and a failed login's message
for the page the browser is sent back to (303 after every POST).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from campusgate.identity.context import IdentityContext

__all__ = ["LIFETIME", "Transaction", "begin", "finish", "load", "save"]

_KIND = "tx"
#: How long a user has to sign in and consent.
LIFETIME = 600


@dataclass(frozen=True)
class Transaction:
    id: str
    #: The authorization request's parameters (as validated), to resume it.
    params: dict[str, str]
    expires_at: int
    #: The session that signed in for this request.
    sid: str | None = None
    #: What the login page should say (a failed attempt) and the username typed.
    notice: str | None = None
    username: str | None = None


def _key(tx_id: str) -> str:
    return hashlib.sha256(tx_id.encode("utf-8")).hexdigest()


async def begin(ctx: IdentityContext, params: dict[str, str]) -> Transaction:
    tx = Transaction(id=secrets.token_urlsafe(24), params=dict(params),
                     expires_at=ctx.now() + LIFETIME)
    await save(ctx, tx)
    return tx


async def load(ctx: IdentityContext, tx_id: str | None) -> Transaction | None:
    """The live transaction ``tx_id``, or None (unknown, expired, malformed)."""
    if not tx_id or len(tx_id) > 64:
        return None
    record = await ctx.ephemeral.get(_KIND, _key(tx_id))
    if record is None:
        return None
    try:
        tx = Transaction(id=tx_id, params={str(k): str(v) for k, v in record["params"].items()},
                         expires_at=int(record["expires_at"]), sid=_opt(record.get("sid")),
                         notice=_opt(record.get("notice")),
                         username=_opt(record.get("username")))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return tx if tx.expires_at > ctx.now() else None


async def save(ctx: IdentityContext, tx: Transaction) -> None:
    record: dict[str, Any] = dataclasses.asdict(tx)
    del record["id"]
    await ctx.ephemeral.put(_KIND, _key(tx.id), record, max(1, tx.expires_at - ctx.now()))


async def finish(ctx: IdentityContext, tx: Transaction) -> None:
    await ctx.ephemeral.delete(_KIND, _key(tx.id))


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
