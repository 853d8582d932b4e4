"""The provider's signing keys: one RS256 and one ES256 key sign, older ones linger in
the JWKS until what they signed has expired.

Keys are generated on first start (:meth:`KeyManager.ensure`), stored encrypted in the
directory and shared by every worker, which reloads them every few seconds
(:meth:`KeyManager.refresh`).  ``kid`` is the key's RFC 7638 thumbprint.  Rotation
(:meth:`KeyManager.rotate`) adds new keys first, then retires the old ones with an
overlap: a relying party that cached the JWKS, or holds a token signed a minute ago,
still finds the old public key (OIDC Core 10.1.1).  Workers racing on first start may
both create a key; the newest unretired key of an algorithm signs, the other is
published all the same, so nothing breaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from joserfc.jwk import ECKey, Key, KeyParameters, KeySet, RSAKey, import_key

from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.models import SigningKey

__all__ = ["ALGORITHMS", "KeyManager", "NoSigningKey"]

#: Signing algorithms the provider keeps a key for (RS256 is OIDC's mandatory one).
ALGORITHMS = ("RS256", "ES256")
#: Members a public JWK may carry in the JWKS (RFC 7517 4, RFC 7518 6.2.1 and 6.3.1).
_PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")


class NoSigningKey(LookupError):
    """No key signs with this algorithm (``ensure`` was not run, or alg unknown)."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        super().__init__(f"no signing key for {alg}: run KeyManager.ensure() first")


def generate_key(alg: str) -> Key:
    """A new private key for ``alg`` (RSA 2048 or P-256) with kid = its thumbprint."""
    parameters: KeyParameters = {"alg": alg, "use": "sig"}
    key: Key
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=parameters, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=parameters, private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    key.ensure_kid()
    return key


def public_jwk(key: Key) -> dict[str, Any]:
    """The public members of ``key``, nothing private whatever the key holds."""
    data = key.as_dict(private=False)
    return {name: data[name] for name in _PUBLIC_MEMBERS if name in data}


class KeyManager:
    """The signing keys of one worker, as last loaded from the directory."""

    def __init__(self, directory: IdentityDirectory,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock
        self._stored: list[SigningKey] = []
        self._private: dict[str, Key] = {}
        self._public: dict[str, Key] = {}
        self._loaded_at: float | None = None
        #: When the first stored key's publication ends (None: no key's does), worked
        #: out once per load so the per-request staleness check reads one number.
        self._next_expiry: float | None = None
        #: One reload at a time: the requests that find the keys stale together wait
        #: for one read instead of each reading (and importing) them.
        self._reloading = asyncio.Lock()

    # ------------------------------------------------------------ loading

    async def ensure(self) -> None:
        """Load the keys, creating one for each algorithm that has no active key."""
        await self._load()
        active = {key.alg for key in self._stored if key.retired_at is None}
        missing = [alg for alg in ALGORITHMS if alg not in active]
        for alg in missing:
            await self._add(alg)
        if missing:
            await self._load()

    def _stale(self, now: float, max_age: float) -> tuple[bool, bool]:
        """(reload needed, some key's publication ended)."""
        expired = self._next_expiry is not None and self._next_expiry <= now
        fresh = self._loaded_at is not None and 0 <= now - self._loaded_at < max_age
        return expired or not fresh, expired

    async def refresh(self, max_age: float = 5.0) -> None:
        """Reload from the store if the last load is older than ``max_age`` seconds
        (another worker may have rotated); forget keys whose publication ended."""
        if not self._stale(self.clock(), max_age)[0]:
            return
        async with self._reloading:
            now = self.clock()
            stale, expired = self._stale(now, max_age)
            if not stale:  # another request reloaded them while this one waited
                return
            if expired:
                await self.directory.delete_expired_keys(int(now))
            await self._load()

    async def rotate(self, overlap: int) -> list[str]:
        """New keys for every algorithm; the old ones stop signing now and leave the
        JWKS ``overlap`` seconds later.  Returns the new kids."""
        await self._load()
        old = [key for key in self._stored if key.retired_at is None]
        kids = [await self._add(alg) for alg in ALGORITHMS]
        now = int(self.clock())
        for key in old:
            await self.directory.retire_signing_key(key.kid, now, now + max(overlap, 0))
        await self._load()
        return kids

    async def _add(self, alg: str) -> str:
        key = await asyncio.to_thread(generate_key, alg)
        assert key.kid is not None
        await self.directory.add_signing_key(SigningKey(
            kid=key.kid, alg=alg, private_jwk=dict(key.as_dict(private=True)),
            created_at=int(self.clock()), retired_at=None, expires_at=None))
        return key.kid

    async def _load(self) -> None:
        stored = await self.directory.signing_keys()
        # A kid names one key for good: keep the ones already imported (importing an
        # RSA private key checks it, which costs milliseconds).
        private = {key.kid: self._private.get(key.kid) or import_key(key.private_jwk)
                   for key in stored}
        self._stored = stored
        self._next_expiry = min((key.expires_at for key in stored
                                 if key.expires_at is not None), default=None)
        self._private = private
        self._public = {kid: self._public.get(kid) or import_key(public_jwk(key))
                        for kid, key in private.items()}
        self._loaded_at = self.clock()

    # ------------------------------------------------------------ use (sync)

    def signing_key(self, alg: str) -> Key:
        """The key to sign with for ``alg``: the newest active one (``kid`` set)."""
        active = [key for key in self._stored if key.alg == alg and key.retired_at is None]
        if not active:
            raise NoSigningKey(alg)
        newest = max(active, key=lambda key: (key.created_at, key.kid))
        return self._private[newest.kid]

    def _published(self) -> list[str]:
        now = self.clock()
        return [key.kid for key in self._stored
                if key.expires_at is None or key.expires_at > now]

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: active keys and retired ones not yet expired."""
        return {"keys": [public_jwk(self._public[kid]) for kid in self._published()]}

    def key_set(self) -> KeySet:
        """The published keys (public parts), to verify tokens this provider signed."""
        return KeySet([self._public[kid] for kid in self._published()])
