"""POSTing a batch to a collector, for the http and otlp sinks: one keep-alive
``httpx.AsyncClient`` per sink, gzip for large bodies, bounded retries.

An attempt that fails with a connection error or timeout, or is answered with a
status the sink calls retryable (5xx and 429 for the http sink; 429, 502, 503 and
504 for OTLP, as its specification says), is tried again after a wait: the
``Retry-After`` of the answer when it has one (seconds or an HTTP date), else an
exponential backoff with jitter; no wait is longer than ``max_retry_wait``.  After
the last attempt -- or at once for any other status: a 4xx will not get better --
:class:`DeliveryError` is raised and the batch is the writer's to count as failed.
The error names the endpoint without its query string or credentials, and never a
header (they hold tokens).
"""

from __future__ import annotations

import asyncio
import gzip
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from campusgate.config.observe_sinks import DeliverySettings, client_context

__all__ = ["DeliveryError", "Poster", "RetryPolicy", "poster_for", "public_url",
           "retry_after", "retry_wait"]

Sleep = Callable[[float], Awaitable[None]]


class DeliveryError(Exception):
    """A batch the collector did not take, after the retries it deserved."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Further attempts after the first.
    retries: int
    backoff: float
    max_wait: float
    #: Statuses worth another attempt.
    statuses: Collection[int]


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: safe for logs and names."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds asked by a ``Retry-After`` value (RFC 9110 section 10.2.3), or None
    when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        return None
    return max(0.0, when.timestamp() - now)


def retry_wait(policy: RetryPolicy, attempt: int, asked: float | None) -> float:
    """The wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    if asked is not None:
        return min(asked, policy.max_wait)
    base = min(policy.backoff * 2.0 ** (attempt - 1), policy.max_wait)
    jitter: float = random.uniform(0.5, 1.0)
    return base * jitter


class Poster:
    """One collector connection pool and the retry loop around a POST."""

    def __init__(self, *, headers: Mapping[str, str], timeout: float, policy: RetryPolicy,
                 gzip_above: int | None, sleep: Sleep = asyncio.sleep,
                 tls: ssl.SSLContext | None = None) -> None:
        """``tls``: the context for an https receiver (None: the system's CAs)."""
        self.policy = policy
        self.gzip_above = gzip_above
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            headers=dict(headers), timeout=timeout, follow_redirects=False,
            verify=True if tls is None else tls,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def post(self, url: str, body: bytes, content_type: str) -> None:
        headers = {"content-type": content_type}
        if self.gzip_above is not None and len(body) >= self.gzip_above:
            body = await asyncio.to_thread(gzip.compress, body, 1, mtime=0)
            headers["content-encoding"] = "gzip"
        policy = self.policy
        attempts = policy.retries + 1
        for attempt in range(1, attempts + 1):
            asked: float | None = None
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except (httpx.TransportError, ssl.SSLError) as exc:
                # ssl.SSLError: with TLS 1.3 a receiver refuses a client certificate
                # after the handshake, and httpx lets that alert through unwrapped
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if status < 300:
                    return
                failure = f"HTTP {status}"
                if status not in policy.statuses:
                    raise DeliveryError(f"{public_url(url)} refused the batch: {failure}")
                asked = retry_after(response.headers.get("retry-after"), time.time())
            if attempt == attempts:
                raise DeliveryError(f"{public_url(url)} did not take the batch after "
                                    f"{attempts} attempt(s): {failure}")
            await self._sleep(retry_wait(policy, attempt, asked))

    async def close(self) -> None:
        await self._client.aclose()


def poster_for(spec: DeliverySettings, statuses: Collection[int],
               sleep: Sleep | None = None) -> Poster:
    """The :class:`Poster` of an http or otlp sink's settings."""
    policy = RetryPolicy(spec.retries, spec.retry_backoff, spec.max_retry_wait, statuses)
    return Poster(headers=spec.headers, timeout=spec.timeout, policy=policy,
                  gzip_above=spec.gzip_above, sleep=sleep or asyncio.sleep,
                  tls=client_context(spec.tls))
