"""Calls to an OpenID provider that survive a hiccup: bounded retries with backoff.

Providers seldom publish rate limits (ClassLink publishes none); 429 and 5xx answers,
timeouts and refused connections mean "back off and try again".  :func:`retry_delay`
is the schedule (sans-IO): exponential backoff with full jitter (AWS Architecture
Blog, "Exponential Backoff and Jitter"), a few attempts within a small total budget,
so a person signing in waits seconds, not minutes.  A ``Retry-After`` in seconds is
honoured when it fits the budget; a longer one ends the attempts at once.

:func:`send` is the I/O shell, shared by the identity provider's login sources and
the ``sso`` plugin.  It reads the answer's body as it streams, up to a limit, so a
provider that answers without end costs no more than ``limit`` bytes of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpx

__all__ = ["RETRY_STATUSES", "AnswerTooLarge", "RetryPolicy", "Unavailable", "retry_delay",
           "send"]

#: Answers worth another try.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Largest answer body read unless the caller says otherwise.
DEFAULT_LIMIT = 1024 * 1024


class Unavailable(Exception):
    """No usable answer after the retries; the message says why (never a secret)."""


class AnswerTooLarge(Exception):
    """The answer's body passed the caller's limit (a misbehaving provider)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    #: First backoff ceiling, doubled each attempt...
    base: float = 0.25
    #: ...up to this.
    cap: float = 2.0
    #: Seconds of waiting allowed in all.
    budget: float = 4.0


def retry_delay(policy: RetryPolicy, attempt: int, waited: float, retry_after: str | None,
                rand: Callable[[], float] = random.random) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1), or
    None when there should be no more attempts."""
    if attempt >= policy.attempts:
        return None
    delay = rand() * min(policy.cap, policy.base * float(2 ** (attempt - 1)))
    if retry_after is not None:
        with contextlib.suppress(ValueError):  # an HTTP date: keep our own schedule
            delay = max(delay, float(retry_after.strip()))
    if delay < 0 or waited + delay > policy.budget:
        return None
    return delay


async def _read(client: httpx.AsyncClient, request: httpx.Request,
                limit: int) -> httpx.Response:
    """One attempt: the answer with its body read (at most ``limit`` bytes)."""
    response = await client.send(request, stream=True)
    try:
        if response.status_code in RETRY_STATUSES:
            return response  # the body is not wanted
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise AnswerTooLarge(f"the answer is larger than {limit} bytes")
    finally:
        await response.aclose()
    return httpx.Response(response.status_code, headers=response.headers,
                          content=bytes(body), request=request)


async def send(client: httpx.AsyncClient, request: httpx.Request,
               policy: RetryPolicy = RetryPolicy(), *,
               limit: int = DEFAULT_LIMIT) -> httpx.Response:
    """Send ``request``, retrying what is worth retrying; the first answer that is not
    worth retrying is returned, its body read (the caller judges 4xx).  Unavailable
    when the attempts run out, AnswerTooLarge when the body passes ``limit``."""
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        retry_after = None
        try:
            response = await _read(client, request, limit)
        except httpx.TimeoutException:
            problem = "timed out"
        except (httpx.TransportError, ssl.SSLError) as exc:  # a TLS 1.3 alert comes raw
            problem = f"could not be reached ({type(exc).__name__})"
        else:
            if response.status_code not in RETRY_STATUSES:
                return response
            problem = f"answered {response.status_code}"
            retry_after = response.headers.get("retry-after")
        delay = retry_delay(policy, attempt, waited, retry_after)
        if delay is None:
            raise Unavailable(f"{problem} (after {attempt} attempt"
                              f"{'s' if attempt > 1 else ''})")
        await asyncio.sleep(delay)
        waited += delay
