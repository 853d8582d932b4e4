"""``campusgate top --once`` against a real admin API on 127.0.0.1 holding roll-ups."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from typer.testing import CliRunner

from campusgate.admin import StaticRuntime, create_admin_app
from campusgate.cli import app
from campusgate.config.model import Limits
from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup import RollupStage
from campusgate.observe.rollup_store import open_rollup_store
from campusgate.proxy.app_dispatcher import AppDispatcher
from campusgate.proxy.http1 import ClientConnection, ListenerState
from campusgate.store import ConfigStore


def _record(t: float, route: str, consumer: str, status: int) -> AccessRecord:
    return AccessRecord(
        time=t, request_id="r", trace_id="0" * 32, span_id="0" * 16, parent_span_id=None,
        listener="proxy", worker=1, route=route, service="svc", upstream="127.0.0.1:9000",
        consumer=consumer, credential=None, client_ip="127.0.0.1", method="GET", host="h",
        path="/", status=status, bytes_in=1, bytes_out=2, latency_ms=25.0,
        upstream_latency_ms=24.0, overhead_ms=1.0, retries=0, rate_limit=None, error=None)


async def test_top_once_prints_a_frame(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path}/top.db"
    store = await ConfigStore.open(dsn)
    token = await store.ensure_admin_token()
    now = time.time()
    stage = RollupStage(open_rollup_store(dsn), "node:1:1")
    await stage.write([_record(now - 120 + n, "roster-api" if n % 3 else "grades",
                               "district-app", 500 if n == 7 else 200) for n in range(90)])
    await stage.close()
    loop = asyncio.get_running_loop()
    state = ListenerState(AppDispatcher(create_admin_app(store, StaticRuntime())), Limits())
    server = await loop.create_server(lambda: ClientConnection(state, loop), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["top", "--once", "--admin-url", url, "--token",
                                      str(token)], env={"COLUMNS": "160"})
        refused = await asyncio.to_thread(
            CliRunner().invoke, app, ["top", "--once", "--admin-url", url, "--token", "bad"])
    finally:
        server.close()
        for conn in list(state.connections):
            conn.close()
        await store.close()
    assert result.exit_code == 0, result.output
    out = result.output
    assert "campusgate top" in out and "Top routes" in out and "Top consumers" in out
    assert "roster-api" in out and "grades" in out and "district-app" in out
    assert "90" in out  # requests of the one consumer
    assert refused.exit_code == 1 and "Traceback" not in refused.output
