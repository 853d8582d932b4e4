"""A worker's connections to its login sources (identity/sources/connections.py): one
long-lived HTTP client per source, its discovery kept with backoff on failures, and
its client closed when a revision removes or changes the source, or the worker
stops -- never under a sign-in that is using it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from campusgate.config.identity import IdentityConfig
from campusgate.config.identity_sources import LoginSource
from campusgate.identity.sources.connections import (
    DISCOVERY_MAX_AGE,
    DISCOVERY_RETRY_AFTER,
    SourceDirectory,
)
from campusgate.identity.sources.errors import SourceError


class LaunchPad(ThreadingHTTPServer):
    """A discovery document on 127.0.0.1 that counts its readers and answers
    ``status`` (404: a document that cannot be used, at once and without retries)."""

    status = 200
    reads = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LaunchPad

    def do_GET(self) -> None:
        self.server.reads += 1
        body = (b'{"jwks_uri": "%s/jwks"}' % self.server.url.encode()
                if self.server.status == 200 else b"{}")
        self.send_response(self.server.status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def launchpad() -> Iterator[LaunchPad]:
    server = LaunchPad(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def classlink(url: str, **changes: Any) -> LoginSource:
    settings = {"type": "classlink", "client_id": "c1", "client_secret": "s" * 20,
                "launchpad_url": url, "api_url": url, **changes}
    (source,) = IdentityConfig.model_validate({"issuer": "https://id.example.edu",
                                               "sources": [settings]}).sources
    return source


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_every_sign_in_of_a_source_shares_one_client(launchpad: LaunchPad) -> None:
    sources = SourceDirectory()
    source = classlink(launchpad.url)
    try:
        async with sources.use(source) as first:
            endpoints = await first.endpoints()
        async with sources.use(source) as second:
            assert await second.endpoints() == endpoints
        assert second is first and not first.http.is_closed
        assert endpoints.jwks_uri == launchpad.url + "/jwks"
        assert first.keys(endpoints.jwks_uri) is second.keys(endpoints.jwks_uri)
        assert launchpad.reads == 1  # the endpoints are kept
    finally:
        await sources.close()
    assert first.http.is_closed  # the worker stopped


async def test_a_failed_discovery_is_not_tried_again_at_once(launchpad: LaunchPad) -> None:
    clock = Clock()
    sources = SourceDirectory(clock)
    source = classlink(launchpad.url)
    launchpad.status = 404
    async with sources.use(source) as connection:
        for _ in range(3):  # one read; the other browsers get its answer
            with pytest.raises(SourceError) as failed:
                await connection.endpoints()
            assert failed.value.step == "discovery" and "404" in failed.value.reason
        assert launchpad.reads == 1
        launchpad.status = 200
        clock.now += DISCOVERY_RETRY_AFTER
        assert (await connection.endpoints()).jwks_uri == launchpad.url + "/jwks"
        assert launchpad.reads == 2
    await sources.close()


async def test_the_last_good_endpoints_serve_while_discovery_fails(
        launchpad: LaunchPad) -> None:
    clock = Clock()
    sources = SourceDirectory(clock)
    async with sources.use(classlink(launchpad.url)) as connection:
        known = await connection.endpoints()
        launchpad.status = 404
        clock.now += DISCOVERY_MAX_AGE
        assert await connection.endpoints() == known
        assert launchpad.reads == 2
    await sources.close()


async def test_a_revision_that_changes_a_source_closes_its_client(
        launchpad: LaunchPad) -> None:
    sources = SourceDirectory()
    source = classlink(launchpad.url)
    async with sources.use(source) as old:
        pass
    sources.update([classlink(launchpad.url, client_secret="t" * 20)])  # a new secret
    await sources.close_retired()
    async with sources.use(source) as same:
        assert same is old and not old.http.is_closed
    changed = classlink(launchpad.url, timeout=9)
    sources.update([changed])
    assert not old.http.is_closed  # retired: closed at the next identity request
    await sources.close_retired()
    assert old.http.is_closed
    async with sources.use(changed) as new:
        assert new is not old and new.http.timeout.read == 9
    await sources.close()


async def test_a_client_in_use_is_closed_when_its_last_sign_in_ends(
        launchpad: LaunchPad) -> None:
    sources = SourceDirectory()
    async with sources.use(classlink(launchpad.url)) as connection:
        sources.update([])  # the source was removed
        await sources.close_retired()
        assert not connection.http.is_closed
        await connection.endpoints()  # the sign-in goes on
    assert connection.http.is_closed
    await sources.close()
