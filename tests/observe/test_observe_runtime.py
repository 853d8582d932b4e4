"""The worker's access-record machinery, in process and in a real ``campusgate serve``."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from access_samples import stored_records

from campusgate.config.observe import ObserveConfig
from campusgate.observe._ship import RowQueue
from campusgate.observe._speedups import NO_EXTENSIONS_ENV
from campusgate.observe.packed import PackedQueue
from campusgate.observe.record import AccessRecord
from campusgate.observe.runtime import ObserveRuntime, worker_id
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.writer_process import SOCKET_ENV
from campusgate.proxy.context import RequestContext
from test_server import start, stop


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        self.records.extend(batch)

    async def close(self) -> None:
        return None


def test_worker_id_names_host_process_and_start() -> None:
    host, pid, started = worker_id().rsplit(":", 2)
    assert host == socket.gethostname() and int(pid) == os.getpid() and int(started) > 0


async def test_close_writes_what_the_proxy_put() -> None:
    sink = ListSink()
    runtime = ObserveRuntime(ObserveConfig(), SinkEnv("sqlite:///unused", "w"), [sink],
                             internal=False)
    runtime.start()
    put = runtime.put
    assert put is not None
    for i in range(3):
        put(RequestContext("GET", f"/{i}", "", [], "127.0.0.1", "http", "h", f"id{i}"))
    await runtime.close()
    assert [r.request_id for r in sink.records] == ["id0", "id1", "id2"]
    assert runtime.counters()["sinks"]["list"]["written"] == 3


def test_access_records_off_means_nothing_is_queued() -> None:
    config = ObserveConfig.model_validate({"access_log": {"enabled": False}})
    runtime = ObserveRuntime(config, SinkEnv("sqlite:///unused", "w"))
    assert runtime.put is None and runtime.sinks == []


@pytest.mark.parametrize("rows", ["packed", "tuples"])
def test_sigterm_flushes_every_record_to_the_store(tmp_path: Path, rows: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ``campusgate serve``; SIGTERM right after the last answer: every request
    of the run is in the store's access segments when the process has exited -- rows
    packed in C, or (``CAMPUSGATE_NO_EXTENSIONS=1``) tuples shipped with marshal."""
    if rows == "tuples":
        monkeypatch.setenv(NO_EXTENSIONS_ENV, "1")
    gw = start(tmp_path)
    try:
        ids = []
        with httpx.Client(base_url=gw.proxy, timeout=5) as client:
            for i in range(40):
                answer = client.get(f"/echo/{i}")
                assert answer.status_code == 200
                ids.append(answer.headers["x-request-id"])
    finally:
        assert stop(gw) == 0
    records = stored_records(tmp_path / "data" / "cg.db")
    assert sorted(r["request_id"] for r in records) == sorted(ids)
    assert {(r["route"], r["status"]) for r in records} == {("echo", 200)}


def test_a_serving_worker_ships_to_the_node_writer_or_writes_inline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = SinkEnv("sqlite:///unused", "w")
    embedded = ObserveRuntime.serving(ObserveConfig(), env, separate=False)
    assert embedded.writer is not None and embedded.shipper is None  # tests, in-process
    monkeypatch.setenv(SOCKET_ENV, "/run/cg/writer.sock")  # the supervisor's writer
    shipping = ObserveRuntime.serving(ObserveConfig(), env, separate=True)
    assert shipping.shipper is not None and shipping.shipper.path == "/run/cg/writer.sock"
    assert isinstance(shipping.queue, PackedQueue) and shipping.put == shipping.queue.record
    monkeypatch.setenv(NO_EXTENSIONS_ENV, "1")
    pure = ObserveRuntime.serving(ObserveConfig(), env, separate=True)
    assert isinstance(pure.queue, RowQueue) and pure.put is not None
    monkeypatch.delenv(NO_EXTENSIONS_ENV)
    assert shipping.child is None and shipping.sinks == []
    assert shipping.counters()["writer"] == "process"
    inline = ObserveConfig.model_validate({"access_log": {"writer": "inline"}})
    assert ObserveRuntime.serving(inline, env, separate=True).shipper is None
    monkeypatch.delenv(SOCKET_ENV)
    alone = ObserveRuntime.serving(ObserveConfig(), env, separate=True)  # one worker
    assert alone.child is not None and alone.child.directory is not None
    assert alone.shipper is not None
    assert alone.shipper.path == str(alone.child.directory / "writer.sock")
    alone.child.directory.rmdir()
