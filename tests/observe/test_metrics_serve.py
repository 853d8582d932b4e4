"""``/metrics`` of a real ``campusgate serve --workers 2``: whichever worker a scrape
lands on, it counts the requests both workers served, and a worker's counters
survive its death (the supervisor restarts it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from campusgate.observe.metrics import METRICS_DIR_ENV
from test_server import start, stop, wait_until


def requests_to_echo(admin: str) -> tuple[float, int]:
    """(requests to the echo route counted, workers alive) in one scrape."""
    response = httpx.get(f"{admin}/metrics", timeout=5)
    assert response.status_code == 200
    count, workers = 0.0, 0
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == "campusgate_http_requests_total" and s.labels["route"] == "echo":
                count += s.value
            if s.name == "campusgate_workers":
                workers = int(s.value)
    return count, workers


def test_a_scrape_counts_every_worker_and_keeps_a_dead_ones_counts(tmp_path: Path) -> None:
    os.environ[METRICS_DIR_ENV] = str(tmp_path / "metrics")  # what the supervisor sets
    try:
        gw = start(tmp_path, workers=2)
    finally:
        del os.environ[METRICS_DIR_ENV]
    try:
        auth = {"Authorization": f"Bearer {gw.token}"}
        pids: set[int] = set()

        def both_workers_answer() -> bool:
            pids.update(httpx.get(f"{gw.admin}/status", headers=auth).json()["pid"]
                        for _ in range(10))
            return len(pids) == 2

        wait_until(both_workers_answer)
        # Fresh connections spread over both workers (SO_REUSEPORT).
        for _ in range(60):
            assert httpx.get(f"{gw.proxy}/echo").status_code == 200
        # Within about a second every scrape, on either worker, counts all 60.
        wait_until(lambda: all(requests_to_echo(gw.admin) == (60, 2) for _ in range(10)))

        victim = pids.pop()
        os.kill(victim, signal.SIGKILL)
        # The supervisor starts another worker; the dead one's counts stay.
        wait_until(lambda: victim not in {
            httpx.get(f"{gw.admin}/status", headers=auth).json()["pid"] for _ in range(10)}
            and requests_to_echo(gw.admin)[1] == 2, 20)
        assert all(requests_to_echo(gw.admin) == (60, 2) for _ in range(10))
    finally:
        assert stop(gw) == 0
