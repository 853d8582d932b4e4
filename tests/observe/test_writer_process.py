"""The node's log-writer process: workers ship frames of rows over a Unix socket, the
writer finishes the records and runs the sinks.  Real sockets, real processes: a
writer killed with SIGKILL is restarted and later records arrive; SIGTERM drains.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from access_samples import stored_records

from campusgate.config.observe import ObserveConfig
from campusgate.observe._ship import RowQueue, Shipper, ShipQueue, encode_frame
from campusgate.observe._speedups import speedups
from campusgate.observe._writer_child import WriterChild
from campusgate.observe.capture import Capture
from campusgate.observe.packed import PackedQueue
from campusgate.observe.record import FIELDS, AccessRecord
from campusgate.observe.runtime import ObserveRuntime
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.tracing import start_trace
from campusgate.observe.writer_process import MALLOC_SETTINGS, LogWriter, writer_environment
from campusgate.proxy.context import RequestContext
from campusgate.store import ConfigStore
from test_server import ECHO_SERVICE, start, stop, wait_until

REQUEST_ID = FIELDS.index("request_id")


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.records: list[AccessRecord] = []
        self.arrived = asyncio.Event()

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        self.records.extend(batch)
        self.arrived.set()

    async def close(self) -> None:
        return None


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


def context(i: int, *, ai: bool = False) -> RequestContext:
    headers = [(b"host", b"gw"), (b"user-agent", b"curl/8.5")]
    ctx = RequestContext("POST" if ai else "GET", f"/r/{i}", "q=1", headers, "10.0.0.7",
                         "http", "gw", f"req-{i:04d}")
    ctx.route, ctx.service = cast(Any, _Named("r")), cast(Any, _Named("s"))
    ctx.consumer, ctx.credential = cast(Any, _Named("ann")), "cred-1"
    ctx.trace = start_trace(headers, None)
    ctx.started = 1000.0 + i
    ctx.upstream_started, ctx.upstream_ended, ctx.ended = 1000.1 + i, 1000.3 + i, 1000.4 + i
    ctx.upstream_target, ctx.status = "127.0.0.1:9", 502 if i % 3 == 0 else 200
    ctx.bytes_in, ctx.bytes_out, ctx.retries, ctx.rate_limit = 10, 99, 1, "allowed"
    if ai:
        ctx.vars["ai"] = {"provider": "openai", "model": "m", "provider_model": "gpt",
                          "usage": {"prompt_tokens": 5, "completion_tokens": 7,
                                    "prompt_tokens_details": {"cached_tokens": 2}},
                          "cost": "0.0012", "redactions": {"email": 2}}
        ctx.vars["log.bodies"] = {"request": "{}", "response": "[]"}
    return ctx


async def until(check: Callable[[], bool]) -> None:
    """Polls what only a file or another process can tell (no event to await)."""
    async with asyncio.timeout(20.0):
        while not check():  # noqa: ASYNC110 -- a file's content is no event
            await asyncio.sleep(0.05)


async def started_writer(tmp_path: Path) -> tuple[str, ListSink, LogWriter]:
    """A log writer listening in ``tmp_path`` into a list: its socket, sink, writer."""
    path = str(tmp_path / "w.sock")
    sink = ListSink()
    writer = LogWriter(ObserveConfig(), SinkEnv("sqlite:///unused", "w"), path, [sink])
    await writer.start()
    return path, sink, writer


def shipping_queue(rows: str, capture: Capture, size: int,
                   ) -> tuple[ShipQueue, Callable[[RequestContext], None]]:
    """A worker's queue of ``rows`` (``packed`` or ``tuples``) and its recorder."""
    if rows == "packed":
        module = speedups()
        assert module is not None
        packed = PackedQueue(size, 5000, capture, module)
        return packed, packed.record
    tuples = RowQueue(size, 5000)
    return tuples, capture.recorder(tuples)


@pytest.mark.parametrize("rows", ["packed", "tuples"])
async def test_shipped_rows_become_the_records_an_inline_worker_builds(
        tmp_path: Path, rows: str) -> None:
    path, sink, writer = await started_writer(tmp_path)
    contexts = [context(i, ai=i % 2 == 1) for i in range(7)]
    capture = Capture("proxy", worker=4242)
    queue, record = shipping_queue(rows, capture, 100)
    shipper = Shipper(queue, path)
    shipper.start()
    for ctx in contexts:
        record(ctx)
    await shipper.close()
    await writer.close(5.0)
    assert sink.records == capture.records(contexts)  # the same fields, every one
    ai = sink.records[1]
    assert (ai.ai_input_tokens, ai.ai_cached_tokens, ai.ai_redactions, ai.response_body) \
        == (5, 2, {"email": 2}, "[]")
    assert sink.records[0].worker == 4242 and sink.records[0].error == "upstream_status"
    assert shipper.counters()["shipped"] == 7 and writer.frames == 1


@pytest.mark.parametrize("rows", ["packed", "tuples"])
async def test_records_with_large_captured_bodies_go_in_frames_the_writer_takes(
        tmp_path: Path, rows: str) -> None:
    # 40 records of two 1 MiB bodies once made one 80 MiB frame, over the writer's
    # MAX_FRAME: it was refused and every record in it lost.
    path, sink, writer = await started_writer(tmp_path)
    capture = Capture("proxy")
    queue, record = shipping_queue(rows, capture, 1000)
    shipper = Shipper(queue, path)
    bodies = [f"{i:04d}".ljust(1 << 20, "b") for i in range(40)]  # distinct: no sharing
    for i, body in enumerate(bodies):
        ctx = context(i)
        ctx.vars["log.bodies"] = {"request": body, "response": body[::-1]}
        record(ctx)
    await shipper.close()
    await writer.close(10.0)
    assert writer.bad_frames == 0 and writer.frames >= 10  # cut at FRAME_BYTES (8 MiB)
    assert [r.request_id for r in sink.records] == [f"req-{i:04d}" for i in range(40)]
    assert [r.request_body for r in sink.records] == bodies
    assert shipper.counters()["lost"] == 0


async def test_a_broken_frame_closes_only_its_own_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "w.sock")
    sink = ListSink()
    config = ObserveConfig.model_validate({"access_log": {"flush_interval": 0.05}})
    writer = LogWriter(config, SinkEnv("sqlite:///unused", "w"), path, [sink])
    await writer.start()
    reader, bad = await asyncio.open_unix_connection(path)
    bad.write((5).to_bytes(4, "big") + b"\xffnope")  # not marshal
    assert await reader.read() == b""  # the writer hung up on it
    reader, huge = await asyncio.open_unix_connection(path)
    huge.write((1 << 30).to_bytes(4, "big"))
    assert await reader.read() == b""
    frame, bad_rows = encode_frame([Capture("proxy").row(context(1))])
    _, good = await asyncio.open_unix_connection(path)
    good.write(frame)
    await good.drain()
    await sink.arrived.wait()  # the good connection was not disturbed by the bad ones
    good.close()
    await writer.close(5.0)
    assert writer.bad_frames == 2 and bad_rows == 0
    assert [r.request_id for r in sink.records] == ["req-0001"]


async def test_records_wait_in_the_queue_while_no_writer_listens(tmp_path: Path) -> None:
    path = str(tmp_path / "w.sock")
    queue = RowQueue(100, 5000)
    shipper = Shipper(queue, path)
    for i in range(3):
        queue.put(Capture("proxy").row(context(i)))
    assert await shipper.ship() == 0 and queue.depth == 3 and not shipper.connected
    sink = ListSink()
    writer = LogWriter(ObserveConfig(), SinkEnv("sqlite:///unused", "w"), path, [sink])
    await writer.start()
    await shipper.close()  # reconnects (after its backoff) and ships what waited
    await writer.close(5.0)
    assert [r.request_id for r in sink.records] == ["req-0000", "req-0001", "req-0002"]


async def test_the_worker_keeps_serving_while_a_full_batch_waits_for_no_writer(
        tmp_path: Path) -> None:
    # A full batch waiting while the writer is down once made the shipper loop
    # without ever yielding: the worker stopped serving until the writer came back.
    path = str(tmp_path / "w.sock")
    queue = RowQueue(100, 2)
    shipper = Shipper(queue, path, batch_size=2)
    for i in range(5):
        queue.put(Capture("proxy").row(context(i)))
    shipper.start()
    ticks = 0
    for _ in range(20):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 20 and queue.depth == 5 and not shipper.connected
    sink = ListSink()
    writer = LogWriter(ObserveConfig(), SinkEnv("sqlite:///unused", "w"), path, [sink])
    await writer.start()
    await until(lambda: queue.depth == 0)  # the next try, after the backoff, ships
    await shipper.close()
    await writer.close(5.0)
    assert [r.request_id for r in sink.records] == [f"req-{i:04d}" for i in range(5)]


async def test_closing_gives_up_on_a_writer_that_takes_no_more_within_the_deadline(
        tmp_path: Path) -> None:
    # A writer alive but not reading (stopped, hung) once held the worker's shutdown
    # for as long as it stayed so.
    path = str(tmp_path / "w.sock")
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_unix_server(never_read, path)
    queue = RowQueue(100_000, 500)
    shipper = Shipper(queue, path, batch_size=500)
    big = context(1)
    big.path = "/" + "p" * 20_000  # 10,000 such rows fill any socket buffer
    for _ in range(10_000):
        queue.put(Capture("proxy").row(big))
    shipper.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await shipper.close(deadline=0.5)
    assert loop.time() - started < 3.0
    counters = shipper.counters()
    assert counters["shipped"] + counters["lost"] == 10_000 and counters["lost"] > 0
    assert queue.depth == 0 and not shipper.connected
    server.close()
    for writer in accepted:
        writer.close()


async def test_a_writer_that_ignores_sigterm_is_killed_after_its_stop_timeout(
        tmp_path: Path) -> None:
    child = WriterChild({}, tmp_path, stop_timeout=0.5)
    child.process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
        "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
        stdout=asyncio.subprocess.PIPE)
    assert child.process.stdout is not None
    assert await child.process.stdout.readline() == b"ready\n"  # SIGTERM is ignored now
    loop = asyncio.get_running_loop()
    started = loop.time()
    await child.close()
    assert loop.time() - started < 5.0
    assert child.process.returncode == -signal.SIGKILL


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_writer_keeps_what_malloc_freed_unless_its_environment_says_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    env = writer_environment(ObserveConfig(), "sqlite://", "w.sock", 1.0)
    assert {name: env[name] for name in MALLOC_SETTINGS} == MALLOC_SETTINGS
    assert int(env["MALLOC_TRIM_THRESHOLD_"]) == 64 << 20
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # an operator's own choice
    env = writer_environment(ObserveConfig(), "sqlite://", "w.sock", 1.0)
    assert env["MALLOC_TRIM_THRESHOLD_"] == "131072"
    assert env["MALLOC_TOP_PAD_"] == MALLOC_SETTINGS["MALLOC_TOP_PAD_"]


async def test_a_killed_writer_process_is_restarted_and_sigterm_drains_it(
        tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/cg.db"
    store = await ConfigStore.open(storage)  # the roll-ups stage writes to the store
    await store.close()
    log_file = tmp_path / "access.jsonl"
    config = ObserveConfig.model_validate(
        {"access_log": {"flush_interval": 0.1, "writer_cpus": [0]},
         "sinks": [{"type": "file", "path": str(log_file)}]})
    path = str(tmp_path / "w.sock")
    child = WriterChild(writer_environment(config, storage, path, 10.0), stop_timeout=15.0)
    runtime = ObserveRuntime(config, SinkEnv(storage, "w"), ship_to=path, child=child)
    runtime.start()
    put = runtime.put
    assert put is not None
    for i in range(5):
        put(context(i))
    await until(lambda: len(_lines(log_file)) == 5)
    first = child.process
    assert first is not None
    assert os.sched_getaffinity(first.pid) == {0}  # observe.access_log.writer_cpus
    with open(f"/proc/{first.pid}/environ", "rb") as environ:  # noqa: ASYNC230 (procfs)
        assert (f"MALLOC_TRIM_THRESHOLD_={MALLOC_SETTINGS['MALLOC_TRIM_THRESHOLD_']}".encode()
                in environ.read().split(b"\0"))
    os.kill(first.pid, signal.SIGKILL)
    await until(lambda: child.process is not first and child.restarts == 1)
    for i in range(5, 25):
        put(context(i))
    await until(lambda: {f"req-{i:04d}" for i in range(5, 25)}
                <= {line["request_id"] for line in _lines(log_file)})
    for i in range(25, 40):  # shipped at close, written by the writer's drain
        put(context(i))
    await runtime.close()
    assert child.process is not None and child.process.returncode == 0
    ids = [line["request_id"] for line in _lines(log_file)]
    assert sorted(ids) == [f"req-{i:04d}" for i in range(40)]
    assert runtime.counters()["writer"] == "process"
    assert runtime.counters()["lost"] == 0


def _writer_pids(stderr: Path) -> list[int]:
    return [int(m) for m in re.findall(r"\[(\d+)\] campusgate\.observe: log writer listening",
                                        stderr.read_text())]


def test_serve_with_workers_runs_one_writer_and_loses_nothing_on_sigterm(
        tmp_path: Path) -> None:
    """``campusgate serve --workers 2``: the supervisor's log writer survives a
    SIGKILL (restarted); SIGTERM: every request answered after the restart is in the
    store when the server has exited."""
    gw = start(tmp_path, ECHO_SERVICE, workers=2)
    stderr = tmp_path / "stderr.log"
    try:
        wait_until(lambda: len(_writer_pids(stderr)) == 1)
        os.kill(_writer_pids(stderr)[0], signal.SIGKILL)
        wait_until(lambda: len(_writer_pids(stderr)) == 2)
        ids = []
        for _ in range(30):  # fresh connections: both workers serve
            answer = httpx.get(f"{gw.proxy}/echo/x", timeout=5)
            assert answer.status_code == 200
            ids.append(answer.headers["x-request-id"])
    finally:
        assert stop(gw) == 0
    stored = {r["request_id"] for r in stored_records(tmp_path / "data" / "cg.db")}
    assert set(ids) <= stored
    assert "the log writer (pid" in stderr.read_text()  # its restart was logged
