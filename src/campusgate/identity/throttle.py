"""Brute-force protection for the login page (RFC 9700 is silent; OWASP Authentication
Cheat Sheet, NIST SP 800-63B 5.2.2 "rate limiting").

Failed sign-ins are counted twice: per account (the login as typed, lowercased --
whether or not such an account exists, so a refusal tells nothing about it) and per
client address.  When either count reaches its limit (``identity.login_throttle``)
within the window, sign-in for that account, or from that address, is refused for
``lockout`` seconds without the password being checked.  A successful sign-in clears
the account's count, never the address's (one valid account must not reset an
attacker's budget).

The counts live in the state backend, so every worker shares them, and are exact under
concurrency without a read-modify-write race: each failure claims the next free slot
``1, 2, 3 ...`` of the current fixed window with ``SET NX`` (one caller wins a slot),
starting from a hint of the last claimed one, so the slot won is the window's count.
The count over the trailing window is the sliding-window estimate of
:mod:`campusgate.state.ratelimit`: the previous fixed window weighted by how much of
it still overlaps, plus the current one.  Time is the
identity clock (``ctx.clock``), not the backend's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from campusgate.identity.context import IdentityContext

__all__ = ["Lockout", "check", "clear_account", "record_failure"]

_LOCK = "login-lock"
_SLOT = "login-slot"
_HINT = "login-count"
_GENERATION = "login-gen"


@dataclass(frozen=True)
class Lockout:
    """Sign-in is refused for ``retry_after`` more seconds."""

    retry_after: int


def _name(scope: str, value: str) -> str:
    return hashlib.sha256(f"{scope}\0{value}".encode()).hexdigest()


def _subjects(login: str, address: str | None) -> list[tuple[str, str]]:
    """``(kind, hashed name)`` of the account and the address counters."""
    subjects = [("account", _name("account", login.strip().lower()))]
    if address:
        subjects.append(("ip", _name("ip", address)))
    return subjects


async def check(ctx: IdentityContext, login: str, address: str | None) -> Lockout | None:
    """Whether sign-in as ``login`` from ``address`` is refused now."""
    now = ctx.now()
    wait = 0
    for _, name in _subjects(login, address):
        lock = await ctx.ephemeral.get(_LOCK, name)
        if lock is not None:
            wait = max(wait, int(lock.get("until", 0)) - now)
    return Lockout(wait) if wait > 0 else None


async def record_failure(ctx: IdentityContext, login: str, address: str | None
                         ) -> Lockout | None:
    """Count one failed sign-in; the lockout it triggers, if it reached a limit."""
    settings = ctx.config.login_throttle
    now = ctx.now()
    limits = {"account": settings.per_account, "ip": settings.per_ip}
    locked = False
    for kind, name in _subjects(login, address):
        counter = name
        if kind == "account":
            counter = f"{name}:{await _generation(ctx, name)}"
        if await _count(ctx, counter, now, settings.window) >= limits[kind]:
            await ctx.ephemeral.put(_LOCK, name, {"until": now + settings.lockout},
                                    settings.lockout)
            locked = True
    return Lockout(settings.lockout) if locked else None


async def clear_account(ctx: IdentityContext, login: str) -> None:
    """A successful sign-in: the account's failures are forgotten (a new counter
    generation; the old slots expire on their own)."""
    (_, name), *_ = _subjects(login, None)
    await ctx.ephemeral.put(_GENERATION, name, {"g": secrets.token_hex(8)},
                            _generation_ttl(ctx))


def _generation_ttl(ctx: IdentityContext) -> int:
    return 2 * ctx.config.login_throttle.window + ctx.config.login_throttle.lockout


async def _generation(ctx: IdentityContext, name: str) -> str:
    record = await ctx.ephemeral.get(_GENERATION, name)
    if record is None:
        await ctx.ephemeral.claim(_GENERATION, name, _generation_ttl(ctx),
                                  {"g": secrets.token_hex(8)})
        record = await ctx.ephemeral.get(_GENERATION, name)
    return str((record or {}).get("g", "0"))


async def _count(ctx: IdentityContext, name: str, now: int, window: int) -> float:
    """Count a failure for ``name``; the failures in the trailing window, this one
    included (sliding-window estimate)."""
    bucket, offset = divmod(now, window)
    ttl = 2 * window
    hint_key = f"{name}:{bucket}"
    hint = await ctx.ephemeral.get(_HINT, hint_key)
    slot = int((hint or {}).get("n", 0)) + 1
    while not await ctx.ephemeral.claim(_SLOT, f"{hint_key}:{slot}", ttl):
        slot += 1
    await ctx.ephemeral.put(_HINT, hint_key, {"n": slot}, ttl)
    previous = await ctx.ephemeral.get(_HINT, f"{name}:{bucket - 1}")
    before = int((previous or {}).get("n", 0))
    return before * ((window - offset) / window) + slot
