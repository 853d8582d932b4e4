"""The identity provider on several workers: codes, sessions and sign-in
transactions live in Redis and users, grants and keys in PostgreSQL, so a sign-in
works whichever worker each request lands on; without Redis, ``serve`` refuses."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from identity_harness import (
    CALLBACK,
    CAMPUSGATE,
    IDENTITY,
    LMS_SECRET,
    authorize_url,
    gateway_config,
    pkce,
    serve_gateway,
    sign_in,
)
from redis_servers import RedisServer

# No keep-alive: every request opens a connection, which SO_REUSEPORT hands to either
# worker, so one sign-in crosses workers many times.
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


def flows(issuer: str, count: int) -> list[dict[str, str]]:
    tokens = []
    for n in range(count):
        verifier, challenge = pkce()
        with httpx.Client(base_url=issuer, limits=FRESH_CONNECTIONS) as browser:
            landing = sign_in(browser, authorize_url(issuer, challenge, f"s{n}", "nonce"),
                              "carol", "a long and secret passphrase")
        code = parse_qs(urlsplit(str(landing)).query)["code"][0]
        answer = httpx.post(f"{issuer}/oauth2/token", auth=("lms", LMS_SECRET), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "code_verifier": verifier})
        assert answer.status_code == 200, answer.text
        tokens.append(answer.json())
    return tokens


@pytest.mark.timeout(240)  # two worker processes start: slow on a busy 2-core box
async def test_sign_ins_cross_workers_sharing_redis_and_postgresql(
        tmp_path: Path, pg_dsn: str) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        gateway = await asyncio.to_thread(
            serve_gateway, tmp_path, IDENTITY, storage=pg_dsn, state=redis.url, workers=2)
        try:
            await asyncio.to_thread(gateway.create_user, "carol",
                                    "a long and secret passphrase")
            tokens = await asyncio.to_thread(flows, gateway.issuer, 4)
            refresh = tokens[0]["refresh_token"]
            for _ in range(4):  # rotation across workers: each answer a new token
                answer = await asyncio.to_thread(
                    httpx.post, f"{gateway.issuer}/oauth2/token", auth=("lms", LMS_SECRET),
                    data={"grant_type": "refresh_token", "refresh_token": refresh})
                assert answer.status_code == 200, answer.text
                refresh = answer.json()["refresh_token"]
        finally:
            assert await asyncio.to_thread(gateway.stop) == 0
    finally:
        redis.kill()


def test_several_workers_without_redis_are_refused(tmp_path: Path) -> None:
    config, _, _ = gateway_config(tmp_path, IDENTITY)
    done = subprocess.run([CAMPUSGATE, "serve", "-c", str(config), "--workers", "2"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert "state: redis://" in done.stderr
