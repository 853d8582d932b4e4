"""The AI gateway's exact-match response cache (``ai.cache``): a whole (non-streaming)
chat answer kept in the worker's state backend, served again for the same request.

The key is the SHA-256 of a canonical JSON (sorted keys) of the model name the client
used, the canonical request (``chat.completion`` form) without the fields that do not
change what the answer says (``stream``, ``stream_options``, ``user``, ``metadata``),
and the scope: the consumer's name (``scope: consumer``, the default, so one student's
answers never reach another) or ``"*"`` (``scope: global``).  Exact match means
exactly that: a request with ``temperature`` > 0 is cached too, and its repeat gets
the same answer, not a new sample; a client that wants a fresh one sends
``cache-control: no-cache`` (the cache is not read, the answer is still stored) or
``no-store`` (neither).

What is stored is the canonical ``chat.completion``, so one cached answer serves the
three chat APIs; answers larger than ``max_bytes`` are not stored.  A state backend
that cannot answer makes the cache a miss, never an error (a warning at most every
30 s).  The key derivation is pure (:func:`cache_key`, :func:`directives`); the
:class:`ResponseCache` adds the state I/O.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from campusgate.ai.types import Json
from campusgate.config.ai import AiCache
from campusgate.state.base import StateBackend, StateUnavailable, WarningThrottle

__all__ = ["IGNORED", "ResponseCache", "cache_key", "directives"]

log = logging.getLogger("campusgate.ai")

#: Request fields that do not change the answer's content: left out of the key.
IGNORED = frozenset({"stream", "stream_options", "user", "metadata"})


def cache_key(alias: str, chat: dict[str, Any], consumer: str | None,
              scope: str) -> str:
    """The state key of a call's answer: ``aic:<sha256 hex>``."""
    who = "*" if scope == "global" else (consumer or "")
    request = {k: v for k, v in chat.items() if k not in IGNORED and k != "model"}
    canonical = json.dumps([alias, request, who], sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=str)
    return "aic:" + hashlib.sha256(canonical.encode()).hexdigest()


def directives(cache_control: bytes | None) -> tuple[bool, bool]:
    """``(read, write)`` from the request's ``cache-control`` header."""
    if not cache_control:
        return True, True
    words = {w.strip().lower() for w in cache_control.decode("latin-1").split(",")}
    if "no-store" in words:
        return False, False
    return "no-cache" not in words, True


class ResponseCache:
    """Reads and writes cached answers over the state backend ``state()`` returns
    (looked up per call, like the budgets')."""

    def __init__(self, state: Callable[[], StateBackend]) -> None:
        self.state = state
        self._warning = WarningThrottle(30.0)

    async def get(self, key: str) -> Json | None:
        """The cached ``chat.completion``, or None (missing, unreadable, state down)."""
        try:
            raw = await self.state().get(key)
            value = None if raw is None else json.loads(raw)
        except StateUnavailable as exc:
            self._warn("read", exc)
            return None
        except ValueError:  # not an answer this cache wrote
            return None
        except Exception:  # a cache must never fail a call
            log.exception("AI cache: reading an answer failed")
            return None
        return value if isinstance(value, dict) else None

    async def put(self, config: AiCache, key: str, response: Json) -> bool:
        """Store ``response`` unless it is over ``max_bytes``; never raises."""
        raw = json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode()
        if len(raw) > config.max_bytes:
            return False
        try:
            await self.state().set(key, raw, float(config.ttl))
        except StateUnavailable as exc:
            self._warn("written", exc)
            return False
        except Exception:  # the answer is already given: the cache must not break it
            log.exception("AI cache: storing an answer failed")
            return False
        return True

    def _warn(self, what: str, exc: Exception) -> None:
        held = self._warning.due()
        if held is not None:
            log.warning("AI cache cannot be %s: %s (%d more like this held back)",
                        what, exc, held)
