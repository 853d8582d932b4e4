"""rate-limit across a cluster: `campusgate serve --workers 2` sharing Redis.

- Concurrent requests well over a limit of N per hour, over many connections spread
  across both workers: exactly N are admitted, for both algorithms.
- Redis killed under load: the fail-open route keeps answering 200, the fail-closed
  route 503 (never a 500, never a hang), the workers stay up; once Redis is back the
  limits apply again.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis_servers import SHARED_REDIS, RedisServer

from campusgate.state.resp import RespClient
from test_server import CAMPUSGATE, Gateway, free_port, stop, wait_until

N = 50  # the limit, per hour: a test cannot straddle the window
CONNECTIONS = 40
REQUESTS = 300


def serve(workdir: Path, state: str, services: str) -> Gateway:
    """Two workers with ``state``; the admin token from the first start's log."""
    proxy_port, admin_port = free_port(), free_port()
    config = workdir / "campusgate.yaml"
    config.write_text(
        f"listeners:\n"
        f"  proxy: {{address: 127.0.0.1:{proxy_port}}}\n"
        f"  admin: {{address: 127.0.0.1:{admin_port}}}\n"
        f"storage: sqlite:///{workdir / 'data' / 'cg.db'}\n"
        f"state: {state}\n"
        f"limits: {{shutdown_timeout: 10}}\n"
        f"services:\n{services}")
    stderr = (workdir / "stderr.log").open("w")
    proc = subprocess.Popen(
        [*CAMPUSGATE, "serve", "-c", str(config), "--workers", "2"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        env={**os.environ, "CAMPUSGATE_LOG_LEVEL": "INFO"})
    proxy, admin = f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{admin_port}"
    wait_until(lambda: httpx.get(f"{admin}/healthz", timeout=1).status_code == 200, 20)
    log = (workdir / "stderr.log").read_text()
    tokens = [w for w in log.split() if w.startswith("cgadm_") and len(w) > 40]
    return Gateway(proc, proxy, admin, tokens[0] if tokens else "", workdir, config)


def route(name: str, config: str) -> str:
    """A service on the echo builtin with one route at /NAME carrying a rate-limit."""
    return (f"  - name: {name}\n    url: builtin://echo\n    routes:\n"
            f"      - name: {name}\n        paths: [/{name}]\n        plugins:\n"
            f"          - name: rate-limit\n            config: {config}\n")


def worker_pids(gw: Gateway) -> set[int]:
    """The pids answering the admin API: fresh connections reach either worker."""
    auth = {"Authorization": f"Bearer {gw.token}"}
    return {httpx.get(f"{gw.admin}/status", headers=auth, timeout=5).json()["pid"]
            for _ in range(30)}


@dataclass
class Answer:
    path: str
    status: int
    retry_after: str | None
    ratelimit: str | None
    started: float
    seconds: float


async def fire(proxy: str, plan: list[list[str]], hang: float = 5.0,
               until: asyncio.Event | None = None) -> list[Answer]:
    """Each inner list of paths goes over a connection of its own, all concurrently;
    with ``until``, each connection repeats its list until the event is set.  A
    request that takes longer than ``hang`` seconds fails the test."""

    async def one_connection(paths: list[str]) -> list[Answer]:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        answers = []
        async with httpx.AsyncClient(base_url=proxy, timeout=hang, limits=limits) as client:
            while True:
                for path in paths:
                    started = time.monotonic()
                    response = await client.get(path)
                    answers.append(Answer(path, response.status_code,
                                          response.headers.get("retry-after"),
                                          response.headers.get("ratelimit"),
                                          started, time.monotonic() - started))
                if until is None or until.is_set():
                    return answers

    results = await asyncio.gather(*(one_connection(paths) for paths in plan))
    return [answer for answers in results for answer in answers]


def spread(paths: list[str], connections: int) -> list[list[str]]:
    return [paths[i::connections] for i in range(connections)]


@pytest.fixture
def shared_keys() -> Iterator[list[str]]:
    """Route names whose rate-limit keys are deleted from the shared Redis afterwards."""
    names: list[str] = []
    yield names

    async def delete() -> None:
        client = RespClient.from_url(SHARED_REDIS)
        try:
            for name in names:
                keys = await client.execute(b"KEYS", f"cg:rl:route:{name}|*")
                if isinstance(keys, list) and keys:
                    await client.execute(b"DEL", *[k for k in keys if isinstance(k, bytes)])
        finally:
            await client.close()

    asyncio.run(delete())


@pytest.mark.timeout(180)  # two worker processes start: slow on a busy 2-core box
def test_two_workers_sharing_redis_admit_exactly_the_limit(
        tmp_path: Path, shared_keys: list[str]) -> None:
    run = secrets.token_hex(4)
    sliding, bucket, witness = f"sw-{run}", f"tb-{run}", f"mem-{run}"
    shared_keys += [sliding, bucket]
    limit = f"{{by: ip, limits: [{{window: 1h, limit: {N}}}]"
    services = (route(sliding, limit + ", algorithm: sliding-window}")
                + route(bucket, limit + ", algorithm: token-bucket}")
                # each worker counts this one itself: it tells the workers apart
                + route(witness, "{by: ip, backend: memory, limits: [{window: 1h, limit: 1000}]}"))
    gw = serve(tmp_path, SHARED_REDIS, services)
    try:
        paths = [f"/{sliding}", f"/{bucket}"] * REQUESTS
        plan = [[f"/{witness}", *chunk] for chunk in spread(paths, CONNECTIONS)]
        answers = asyncio.run(fire(gw.proxy, plan))

        for name in (sliding, bucket):
            mine = [a for a in answers if a.path == f"/{name}"]
            assert len(mine) == REQUESTS
            statuses = sorted(a.status for a in mine)
            assert statuses.count(200) == N, f"{name}: {statuses.count(200)} admitted, not {N}"
            assert statuses.count(429) == REQUESTS - N, f"{name}: {set(statuses)}"
            for refused in (a for a in mine if a.status == 429):
                assert refused.retry_after is not None and int(refused.retry_after) >= 1
                assert refused.ratelimit is not None and ";r=0;" in refused.ratelimit

        # The witness route's counter is per worker: with both workers serving these
        # connections, some "remaining" values repeat (each worker counts from 999).
        remaining = [a.ratelimit for a in answers if a.path == f"/{witness}"]
        assert len(remaining) == CONNECTIONS
        assert len(set(remaining)) < CONNECTIONS, "one worker served every connection"
    finally:
        assert stop(gw) == 0


@pytest.mark.timeout(180)
def test_redis_outage_fails_open_and_closed_and_recovers(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    limit = "{by: ip, limits: [{window: 1h, limit: 20}], on_error: %s}"
    services = route("open", limit % "allow") + route("closed", limit % "deny")
    gw = serve(tmp_path, redis.url, services)
    try:
        pids = worker_pids(gw)
        assert len(pids) == 2
        # Redis up: the limits hold.
        answers = asyncio.run(fire(gw.proxy, spread(["/open", "/closed"] * 30, 10)))
        for path in ("/open", "/closed"):
            statuses = [a.status for a in answers if a.path == path]
            assert sorted(statuses) == [200] * 20 + [429] * 10, path

        # Redis killed under load.
        killed: list[float] = []

        async def outage() -> list[Answer]:
            done = asyncio.Event()
            load = asyncio.ensure_future(
                fire(gw.proxy, spread(["/open", "/closed"] * 8, 8), until=done))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(redis.kill)
            killed.append(time.monotonic())
            await asyncio.sleep(1.5)
            done.set()
            return await load

        answers = asyncio.run(outage())
        down_since = killed[0]
        assert {a.status for a in answers} <= {200, 429, 503}, "never a 500"
        assert max(a.seconds for a in answers) < 3, "every request answered promptly"
        after = [a for a in answers if a.started > down_since + 0.2]
        assert len(after) > 50, "the load should go on after the kill"
        assert {a.status for a in after if a.path == "/open"} == {200}  # fail open
        closed_after = [a for a in after if a.path == "/closed"]
        assert {a.status for a in closed_after} == {503}  # fail closed
        assert all(a.retry_after == "1" for a in closed_after)
        # The workers stayed up (none was restarted).
        assert gw.proc.poll() is None
        assert worker_pids(gw) == pids

        # Redis back (empty, on the same port): the limits apply again.
        redis.start()

        def recovered() -> bool:
            answers = asyncio.run(fire(gw.proxy, [["/closed"]] * 20))
            return all(a.status != 503 for a in answers)

        wait_until(recovered, 15)
        outage_seconds = time.monotonic() - down_since
        answers = asyncio.run(fire(gw.proxy, spread(["/open"] * 30, 10)))
        assert sorted(a.status for a in answers) == [200] * 20 + [429] * 10

        # Warned, but not per request: once per 10 s per plugin per worker at most.
        log = (tmp_path / "stderr.log").read_text()
        for name in ("open", "closed"):
            warnings = re.findall(rf"rate-limit \(route:{name}\): the redis state is "
                                  r"unavailable", log)
            assert 1 <= len(warnings) <= 2 * (1 + int(outage_seconds // 10)), (name, warnings)
        assert "restarting" not in log
    finally:
        stop(gw)
        redis.kill()
