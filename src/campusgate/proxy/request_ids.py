"""Request ids: keep a client's valid id, else make one."""

from __future__ import annotations

import random
import re

__all__ = ["is_valid_request_id", "new_request_id"]

_getrandbits = random.getrandbits
_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,200}$")


def is_valid_request_id(value: bytes) -> bool:
    return _VALID.match(value) is not None


def new_request_id() -> str:
    """32 hex characters (128 random bits).

    From the ``random`` module (Mersenne Twister, reseeded from the OS at start and
    after each fork): a request id must be unique, not unguessable, and ``os.urandom``
    costs a system call per request.
    """
    return f"{_getrandbits(128):032x}"
