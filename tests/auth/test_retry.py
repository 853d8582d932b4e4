"""Calls to an OpenID provider with bounded, jittered retries (auth/retry.py): the
schedule, and the shell against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from gateway_harness import HttpUpstream, UpstreamRequest, ok_response

from campusgate.auth.retry import (
    AnswerTooLarge,
    RetryPolicy,
    Unavailable,
    retry_delay,
    send,
)

POLICY = RetryPolicy(attempts=3, base=0.25, cap=2.0, budget=4.0)


@pytest.mark.parametrize(("attempt", "waited", "retry_after", "rand", "expected"), [
    (1, 0.0, None, 1.0, 0.25),        # first backoff ceiling
    (2, 0.25, None, 1.0, 0.5),        # doubled
    (2, 0.25, None, 0.5, 0.25),       # full jitter: anywhere below the ceiling
    (1, 0.0, "2", 0.0, 2.0),          # Retry-After in seconds is honoured
    (1, 0.0, "Wed, 21 Oct 2026 07:28:00 GMT", 1.0, 0.25),  # a date: our own schedule
    (1, 0.0, "30", 1.0, None),        # longer than the budget: stop now
    (2, 3.9, None, 1.0, None),        # the budget is spent
    (3, 0.0, None, 1.0, None),        # the last attempt
])
def test_the_next_delay(attempt: int, waited: float, retry_after: str | None, rand: float,
                        expected: float | None) -> None:
    assert retry_delay(POLICY, attempt, waited, retry_after, lambda: rand) == expected


def test_the_backoff_never_passes_its_cap() -> None:
    policy = RetryPolicy(attempts=10, base=1.0, cap=2.0, budget=100.0)
    assert retry_delay(policy, 8, 0.0, None, lambda: 1.0) == 2.0


#: path -> (status, body); ``/busy-then-ok`` answers 429 to its first request only.
ANSWERS = {"/busy": (503, b"{}"), "/big": (200, b"x" * 2048),
           "/refused": (400, b'{"error":"invalid_request"}')}


def count(upstream: HttpUpstream, path: str) -> int:
    return sum(1 for request in upstream.requests if request.target == path)


@pytest.fixture
async def provider() -> AsyncIterator[HttpUpstream]:
    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        status, body = ANSWERS.get(request.target, (200, b'{"ok": true}'))
        if request.target == "/busy-then-ok" and count(upstream, request.target) == 1:
            status = 429
        writer.write(ok_response(body, status, [(b"retry-after", b"0")]))

    upstream = await HttpUpstream(answer).start()
    yield upstream
    await upstream.close()


QUICK = RetryPolicy(attempts=3, base=0.01, cap=0.02, budget=1.0)


async def get(url: str, limit: int = 1024) -> httpx.Response:
    if not url.startswith("http"):
        url = "http://" + url
    async with httpx.AsyncClient(timeout=2.0) as client:
        return await send(client, client.build_request("GET", url), QUICK, limit=limit)


async def test_a_429_is_tried_again_and_the_answer_read(provider: HttpUpstream) -> None:
    answer = await get(provider.address + "/busy-then-ok")
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    assert count(provider, "/busy-then-ok") == 2


async def test_a_provider_that_keeps_failing_is_unavailable_after_the_attempts(
        provider: HttpUpstream) -> None:
    with pytest.raises(Unavailable, match=r"answered 503 \(after 3 attempts\)"):
        await get(provider.address + "/busy")
    assert count(provider, "/busy") == 3


async def test_a_refusal_is_the_callers_to_judge_and_not_tried_again(
        provider: HttpUpstream) -> None:
    assert (await get(provider.address + "/refused")).status_code == 400
    assert count(provider, "/refused") == 1


async def test_an_answer_past_the_limit_is_refused(provider: HttpUpstream) -> None:
    with pytest.raises(AnswerTooLarge):
        await get(provider.address + "/big", limit=1024)
    assert len((await get(provider.address + "/big", limit=4096)).content) == 2048


async def test_a_tls_alert_after_the_handshake_could_not_be_reached() -> None:
    """A TLS 1.3 alert read after the handshake reaches us as a raw ``ssl.SSLError``
    (httpx does not wrap it): tried again, then Unavailable like any transport error."""
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]")
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(Unavailable, match=r"could not be reached \(SSLError\)"):
            await send(client, client.build_request("GET", "https://op.example/"), QUICK)
    assert len(calls) == QUICK.attempts


async def test_a_closed_port_could_not_be_reached(unused_tcp_port: int) -> None:
    with pytest.raises(Unavailable, match="could not be reached"):
        await get(f"127.0.0.1:{unused_tcp_port}/")
