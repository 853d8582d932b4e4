"""Secrets at rest: keyed hashes for API keys, argon2id for passwords, AES-GCM for
secrets the gateway must read back (JWT HMAC secrets, hmac-auth secrets).

One 256-bit secret key per installation; two sub-keys are derived from it with
HKDF-SHA256 (RFC 5869): one keys the API-key hash, one encrypts.  The key lives
outside the database -- in ``CAMPUSGATE_SECRET_KEY`` or in a file (created with mode
0600 on first start) -- so a copy of the database alone reveals no credential.  Every
node of a cluster must have the same key.

- API keys are high-entropy and looked up on every request: HMAC-SHA256 with the
  derived key gives an O(1) dictionary lookup and nothing to brute-force offline.
- Passwords (basic-auth) are low-entropy: argon2id (RFC 9106), verified off the event
  loop and remembered briefly by the plugin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ENV_VAR", "Keyring", "KeyringError", "load_keyring"]

ENV_VAR = "CAMPUSGATE_SECRET_KEY"
KEY_HASH_PREFIX = "hk1$"
ENCRYPTED_PREFIX = "enc1$"
PASSWORD_PREFIX = "$argon2id$"


class KeyringError(Exception):
    """A secret cannot be decrypted (wrong key) or the key source is unusable."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"campusgate " + label).derive(master)


class Keyring:
    """Hashing and encryption under one installation secret."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise KeyringError("the secret key must be at least 32 bytes")
        self._hash_key = _derive(master, b"api-key-hash")
        self._subkeys = _derive(master, b"subkeys")
        self._aead = AESGCM(_derive(master, b"encryption"))
        self._passwords = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        #: Identifies the key (not secret): lets an operator check two nodes agree.
        self.key_id = _b64(_derive(master, b"key-id")[:6])

    @classmethod
    def generate(cls) -> Keyring:
        return cls(secrets.token_bytes(32))

    def subkey(self, label: str) -> bytes:
        """A 256-bit key of its own for one purpose (HKDF with ``label``): never equal
        to anything the keyring hashes or encrypts, whatever the label."""
        return _derive(self._subkeys, label.encode("utf-8"))

    # ------------------------------------------------------------ API keys
    def hash_key(self, key: str | bytes) -> str:
        """The stored form of an API key: ``hk1$`` + base64url(HMAC-SHA256)."""
        return KEY_HASH_PREFIX + _b64(self.key_digest(key))

    def key_digest(self, key: str | bytes) -> bytes:
        """The raw HMAC of a presented key (the hot-path lookup key)."""
        raw = key.encode("utf-8") if isinstance(key, str) else key
        return hmac.digest(self._hash_key, raw, "sha256")

    @staticmethod
    def digest_of(stored: str) -> bytes:
        """The raw digest inside a stored ``hk1$`` hash."""
        return _unb64(stored[len(KEY_HASH_PREFIX):])

    @staticmethod
    def is_key_hash(value: str) -> bool:
        return value.startswith(KEY_HASH_PREFIX)

    # ------------------------------------------------------------ encryption
    def encrypt(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), b"campusgate")
        return ENCRYPTED_PREFIX + _b64(nonce + sealed)

    def decrypt(self, token: str) -> str:
        if not token.startswith(ENCRYPTED_PREFIX):
            raise KeyringError("not an encrypted secret")
        try:
            blob = _unb64(token[len(ENCRYPTED_PREFIX):])
            return self._aead.decrypt(blob[:12], blob[12:], b"campusgate").decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise KeyringError(
                "a stored secret cannot be decrypted: was it written with another "
                f"secret key? (this node's key id is {self.key_id})") from exc

    @staticmethod
    def is_encrypted(value: str) -> bool:
        return value.startswith(ENCRYPTED_PREFIX)

    # ------------------------------------------------------------ passwords
    def hash_password(self, password: str) -> str:
        return self._passwords.hash(password)

    def verify_password(self, stored: str, password: str) -> bool:
        """Constant-time argon2id check (slow by design: call it off the event loop)."""
        try:
            return self._passwords.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    @staticmethod
    def is_password_hash(value: str) -> bool:
        return value.startswith(PASSWORD_PREFIX)


def _parse_key(text: str) -> bytes:
    text = text.strip()
    try:
        raw = _unb64(text)
        if len(raw) >= 32:
            return raw
    except ValueError:
        pass
    if len(text) < 32:
        raise KeyringError(f"{ENV_VAR} must be at least 32 characters (or 32 bytes in base64)")
    return hashlib.sha256(text.encode("utf-8")).digest()


def load_keyring(key_file: str | os.PathLike[str], *, create: bool = True) -> Keyring:
    """The installation's keyring: from ``CAMPUSGATE_SECRET_KEY`` if set, else from
    ``key_file`` (a new random key is written there, mode 0600, if it does not exist
    and ``create`` is true)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Keyring(_parse_key(env))
    path = Path(key_file)
    if not path.exists():
        if not create:
            raise KeyringError(f"secret key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(_b64(secrets.token_bytes(32)) + "\n")
    try:
        return Keyring(_parse_key(path.read_text()))
    except OSError as exc:
        raise KeyringError(f"cannot read secret key file {path}: {exc.strerror}") from exc
