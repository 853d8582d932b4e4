"""``basic-auth``: a username and password in ``Authorization: Basic`` (RFC 7617).

Passwords are stored as argon2id hashes, whose check takes tens of milliseconds by
design.  It runs in a worker thread, never on the event loop, and its outcome is
remembered in a bounded cache keyed by (stored hash, keyed hash of the presented
password): a client that sends the same credentials again is answered without
waiting (on the proxy's fast path), and nothing in memory reveals a password.
Failures are remembered too, for a shorter time, so hammering with one wrong
password costs one argon2 check, not one per request.

An unknown username is checked against a dummy hash, so it takes as long and gets the
same answer as a wrong password: the response does not tell which usernames exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import Field

from campusgate.keyring import Keyring
from campusgate.plugins.authentication import AuthAnswer, AuthConfig, AuthPlugin, Identity
from campusgate.plugins.base import WAIT, PluginEnv, Wait
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = ["BasicAuthConfig", "BasicAuthPlugin", "VerificationCache", "parse_basic"]

#: One message for every refusal: a wrong password and an unknown user look alike.
INVALID = "invalid username or password"

#: What the consumer index holds for a username: (consumer, credential id, hash).
_Entry = tuple[ConsumerInfo, str, str]


class BasicAuthConfig(AuthConfig):
    cache_ttl: float = Field(
        default=300.0, ge=0, le=86400,
        description="Seconds a successful password check is remembered (0: check every "
                    "request; each check takes tens of milliseconds).")
    failure_cache_ttl: float = Field(
        default=30.0, ge=0, le=3600,
        description="Seconds a failed check of one username and password is remembered.")
    cache_size: int = Field(
        default=10000, ge=1, le=1_000_000,
        description="Most checks remembered per worker (successes and failures each); "
                    "the least recently used are forgotten first.")


def parse_basic(value: bytes) -> tuple[str, str] | None:
    """``(user-id, password)`` from the token of a Basic ``Authorization`` value
    (what follows ``Basic ``), or None when it is not base64 of ``user:password``
    in UTF-8 (RFC 7617 section 2)."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return user, password


class VerificationCache:
    """Outcomes of password checks: ``key -> (ok, expires)``, least recently used
    forgotten first.  Keys are ``stored-hash\\0HMAC(password)`` under a random key
    made for this cache, so the cache holds no password nor anything to brute-force."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._passed: OrderedDict[bytes, float] = OrderedDict()
        self._failed: OrderedDict[bytes, float] = OrderedDict()

    def key(self, stored: str, password: str) -> bytes:
        mac = hmac.digest(self._key, password.encode("utf-8"), "sha256")
        return stored.encode("utf-8") + b"\0" + mac

    def lookup(self, key: bytes) -> bool | None:
        """True (passed), False (failed) or None (not known)."""
        now = self.clock()
        for table, outcome in ((self._passed, True), (self._failed, False)):
            expires = table.get(key)
            if expires is not None:
                if expires > now:
                    table.move_to_end(key)
                    return outcome
                del table[key]
        return None

    def remember(self, key: bytes, ok: bool, ttl: float) -> None:
        if ttl <= 0:
            return
        table = self._passed if ok else self._failed
        table[key] = self.clock() + ttl
        table.move_to_end(key)
        while len(table) > self.size:
            table.popitem(last=False)


class _DummyHash:
    """An argon2id hash of a random password, made on first need (in a thread)."""

    def __init__(self) -> None:
        self.value: str | None = None

    def get(self, keyring: Keyring) -> str:
        if self.value is None:
            self.value = keyring.hash_password(secrets.token_urlsafe(16))
        return self.value


class BasicAuthPlugin(AuthPlugin):
    name = "basic-auth"
    priority = 1100
    config_model = BasicAuthConfig
    scheme = "Basic"

    def __init__(self, config: BasicAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.cfg = config
        # Worker-lifetime: a reload does not make every client wait for a check again
        # (the key holds the stored hash, so a changed password is a different entry).
        self.cache: VerificationCache = env.resources.cache(
            f"basic-auth.verified.{config.cache_size}",
            lambda: VerificationCache(config.cache_size))
        self.dummy: _DummyHash = env.resources.cache("basic-auth.dummy-hash", _DummyHash)
        #: Checks under way, so a burst of requests with new credentials costs one check.
        self.inflight: dict[bytes, asyncio.Future[bool]] = {}

    def challenge(self, error: str | None = None, description: str | None = None) -> bytes:
        """RFC 7617 section 2.1: the realm, and that credentials are UTF-8."""
        return super().challenge() + b', charset="UTF-8"'

    def _credentials(self, ctx: RequestContext
                     ) -> tuple[str, str, _Entry | None] | LocalResponse | None:
        """(username, password, index entry) from the request, a refusal when the
        Basic credentials are malformed, or None when there are none."""
        value = ctx.header(b"authorization")
        if value is None:
            return None
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        parsed = parse_basic(token)
        if parsed is None:
            return self.reject(ctx, "malformed Basic credentials")
        user, password = parsed
        consumers = self.env.consumers
        return user, password, consumers.basic.get(user) if consumers is not None else None

    def _key(self, user: str, password: str,
             entry: _Entry | None) -> bytes:
        # unknown users get their own entries, so a cached failure of one unknown name
        # says nothing about another
        return self.cache.key(entry[2] if entry else "unknown:" + user, password)

    def _answer(self, ctx: RequestContext, ok: bool,
                entry: _Entry | None) -> Identity | LocalResponse:
        if not ok or entry is None:
            return self.reject(ctx, INVALID)
        self.strip(ctx, b"authorization")
        return Identity(entry[0], entry[1])

    def authenticate_now(self, ctx: RequestContext) -> AuthAnswer | Wait:
        found = self._credentials(ctx)
        if found is None or isinstance(found, LocalResponse):
            return found
        user, password, entry = found
        known = self.cache.lookup(self._key(user, password, entry))
        if known is None:
            return WAIT
        return self._answer(ctx, known, entry)

    async def authenticate(self, ctx: RequestContext) -> AuthAnswer:
        found = self._credentials(ctx)
        if found is None or isinstance(found, LocalResponse):
            return found
        user, password, entry = found
        key = self._key(user, password, entry)
        ok = self.cache.lookup(key)
        if ok is None:
            ok = await self._check(key, entry, password)
        return self._answer(ctx, ok, entry)

    async def _check(self, key: bytes, entry: _Entry | None, password: str) -> bool:
        """The outcome of one check, shared by every request that waits for it (and
        remembered even if the request that started it goes away)."""
        task = self.inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._verify_and_remember(key, entry, password))
            self.inflight[key] = task
            task.add_done_callback(lambda _: self.inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _verify_and_remember(self, key: bytes, entry: _Entry | None,
                                   password: str) -> bool:
        stored = entry[2] if entry is not None else None
        ok = await asyncio.to_thread(self._verify, stored, password)
        ok = ok and entry is not None
        self.cache.remember(key, ok, self.cfg.cache_ttl if ok else self.cfg.failure_cache_ttl)
        return ok

    def _verify(self, stored: str | None, password: str) -> bool:
        """The argon2id check (in a worker thread); a dummy hash for unknown users."""
        keyring = self.env.keyring
        if stored is None:
            keyring.verify_password(self.dummy.get(keyring), password)
            return False
        return keyring.verify_password(stored, password)


PLUGIN = BasicAuthPlugin
