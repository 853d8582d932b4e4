"""CPU per access record of each stage of the logging pipeline, off the request path.

    .venv/bin/python benchmarks/access_log_profile.py [--records 100000] [--rate 30000]
                                                      [--storage sqlite|postgresql://...]
                                                      [--no-store] [--profile]

Feeds synthetic request contexts shaped like the ``access-log`` scenario's (wrk's
request on the one catch-all route: a Host header, a request id the gateway made,
a W3C trace, an upstream call) through the real pipeline, stage by stage, and prints
the CPU microseconds per record of each (``time.process_time``: this process, the
event loop and the SQLite sink's thread; PostgreSQL's server CPU is not in it):

- in the worker: ``row`` (context -> row, ``Capture.row``: the log phase),
  ``queue.put``, ``encode`` (the shipper's frames, ``_ship.encode_frame``);
- in the log-writer process: ``decode`` (frames -> rows), ``finish`` (rows ->
  :class:`AccessRecord`, ``capture.finish``), then each stage's ``write`` of the
  batches: ``store sink``, ``rollups`` (with its once-a-second store flush, on a
  clock that advances as a worker serving ``--rate`` requests per second would),
  ``metrics``;
- ``writer``: the log-writer process's whole loop (:class:`LogWriter`: frames read
  from a stream, decoded, queued, finished, written to the store sink, roll-ups and
  metrics), with the process's garbage-collector settings;
- ``pipeline``: :class:`ObserveRuntime` inline (``writer: inline``) as a worker
  builds it from the default ``observe:`` config (store sink + roll-ups + metrics),
  queue to sinks.

``--no-store`` leaves the store sink out everywhere (the rest of the pipeline alone).

``--profile`` adds a cProfile of the whole pipeline (top functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import marshal
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from campusgate.config.observe import ObserveConfig
from campusgate.config.observe_sinks import StoreSink
from campusgate.observe import metrics, rollup
from campusgate.observe._ship import encode_frame
from campusgate.observe.capture import Capture, Row, finish_rows
from campusgate.observe.queue import RecordQueue
from campusgate.observe.record import AccessRecord
from campusgate.observe.rollup_store import open_rollup_store
from campusgate.observe.runtime import ObserveRuntime
from campusgate.observe.sinks import store
from campusgate.observe.sinks.base import Sink, SinkEnv
from campusgate.observe.tracing import start_trace
from campusgate.observe.writer_process import LogWriter, tune_collector
from campusgate.proxy.context import RequestContext
from campusgate.proxy.request_ids import new_request_id
from campusgate.store import ConfigStore

BATCH = 5000


@dataclass(frozen=True)
class _Named:
    """Stands in for a compiled route or service: capture reads only the name."""

    name: str


def contexts(count: int, rate: float) -> list[RequestContext]:
    """``count`` finished requests, ``1/rate`` s apart, as the gateway leaves them
    (log-normal latencies: about 0.1 ms before the upstream, 0.6 ms in it, 0.1 after)."""
    route, service = _Named("all"), _Named("bench")
    headers = [(b"host", b"127.0.0.1:8080")]
    start = time.monotonic()
    draw = random.Random(7).lognormvariate  # latencies vary, as a real load's do
    out: list[RequestContext] = []
    for i in range(count):
        made = new_request_id()
        ctx = RequestContext("GET", "/", "", headers, "127.0.0.1", "http", "127.0.0.1:8080",
                             made)
        ctx.trace = start_trace(headers, made)
        ctx.route, ctx.service = cast(Any, route), cast(Any, service)
        ctx.started = start + i / rate
        ctx.upstream_started = ctx.started + 0.00012 * draw(0.0, 0.3)
        ctx.upstream_ended = ctx.upstream_started + 0.0006 * draw(0.0, 0.5)
        ctx.ended = ctx.upstream_ended + 0.0001 * draw(0.0, 0.3)
        ctx.upstream_target = "127.0.0.1:9000"
        ctx.status, ctx.bytes_in, ctx.bytes_out = 200, 40, 168
        out.append(ctx)
    return out


def _cpu(run: Callable[[], object]) -> float:
    began = time.process_time()
    run()
    return time.process_time() - began


async def _acpu(run: Callable[[], Awaitable[object]]) -> float:
    began = time.process_time()
    await run()
    return time.process_time() - began


async def _fresh_storage(storage: str, work: Path) -> str:
    url = storage if storage != "sqlite" else f"sqlite:///{work}/profile.db"
    await (await ConfigStore.open(url)).close()  # every migration: the real tables
    return url


async def _feed(sink: Sink, batches: list[list[AccessRecord]],
                tick: Callable[[], None] = lambda: None) -> float:
    """CPU seconds of writing every batch (and closing: the last flush) into ``sink``."""
    async def run() -> None:
        for batch in batches:
            tick()
            await sink.write(batch)
        await sink.close()
    return await _acpu(run)


async def stages(count: int, rate: float, storage: str, work: Path, *,
                 store_sink: bool = True) -> dict[str, float]:
    """CPU microseconds per record of each stage."""
    url = await _fresh_storage(storage, work)
    env = SinkEnv(url, "profile:1:0")
    ctxs = contexts(count, rate)
    out: dict[str, float] = {}
    capture = Capture("proxy")
    row = capture.row
    rows: list[Row] = []
    out["row"] = _cpu(lambda: rows.extend(row(ctx) for ctx in ctxs))
    queue: RecordQueue[Row] = RecordQueue(count + 1)
    put = queue.put

    def put_all() -> None:
        for item in rows:
            put(item)
    out["queue.put"] = _cpu(put_all)
    chunks = [rows[i:i + BATCH] for i in range(0, count, BATCH)]
    frames: list[bytes] = []
    out["encode"] = _cpu(lambda: frames.extend(encode_frame(c)[0] for c in chunks))
    decoded: list[list[Row]] = []
    out["decode"] = _cpu(lambda: decoded.extend(marshal.loads(f[4:]) for f in frames))
    records: list[list[AccessRecord]] = []
    out["finish"] = _cpu(lambda: records.extend(finish_rows(c) for c in decoded))
    if store_sink:
        out["store sink"] = await _feed(store.build(StoreSink(), env), records)
    now = [time.time()]

    def tick() -> None:  # a worker at ``rate`` req/s hands over a batch every BATCH/rate s
        now[0] += BATCH / rate
    stage = rollup.RollupStage(open_rollup_store(url), env.worker_id, clock=lambda: now[0])
    out["rollups"] = await _feed(stage, records, tick)
    out["metrics"] = await _feed(metrics.build(env), records)
    out["pipeline"] = await pipeline(ctxs, await _fresh_storage(storage, work / "p"),
                                     None if store_sink else [])
    out["writer"] = await in_writer_process(frames, await _fresh_storage(storage, work / "w"),
                                            work / "w", store_sink)
    return {name: seconds / count * 1e6 for name, seconds in out.items()}


async def pipeline(ctxs: list[RequestContext], url: str,
                   sinks: list[Sink] | None = None) -> float:
    """CPU seconds of the default pipeline (queue, capture, every sink and stage);
    ``sinks``: these instead of the configured ones (the stages are added)."""
    runtime = ObserveRuntime(ObserveConfig(), SinkEnv(url, "profile:2:0"), sinks)

    async def run() -> None:
        put = runtime.put
        assert put is not None and runtime.writer is not None
        for i in range(0, len(ctxs), BATCH):
            for ctx in ctxs[i:i + BATCH]:
                put(ctx)
            await runtime.writer.flush()
        await runtime.close()
    return await _acpu(run)


async def in_writer_process(frames: list[bytes], url: str, work: Path,
                            store_sink: bool) -> float:
    """:func:`writer_process` in a new process (a heap like the log writer's, not
    this one's 100,000 contexts: the garbage collector's work depends on it)."""
    path = work / "frames"
    path.write_bytes(b"".join(frames))
    command = [sys.executable, __file__, "--writer-of", str(path), "--storage", url]
    done = await asyncio.create_subprocess_exec(
        *command, *(() if store_sink else ("--no-store",)), stdout=asyncio.subprocess.PIPE)
    out, _ = await done.communicate()
    if done.returncode:
        raise RuntimeError(f"the writer's measurement failed ({done.returncode})")
    return float(out)


def split_frames(path: str) -> list[bytes]:
    """The frames (length prefix included) of a file of them."""
    data = Path(path).read_bytes()
    frames, at = [], 0
    while at < len(data):
        end = at + 4 + int.from_bytes(data[at:at + 4], "big")
        frames.append(data[at:end])
        at = end
    return frames


async def writer_process(frames: list[bytes], url: str, socket_path: str,
                         store_sink: bool) -> float:
    """CPU seconds of the log-writer process's loop over ``frames`` (as the workers'
    shippers wrote them): read, decode, finish, every sink and stage."""
    config = ObserveConfig()
    env = SinkEnv(url, "profile:3:0")
    sinks: list[Sink] = [rollup.build(env), metrics.build(env)]
    if store_sink:
        sinks.insert(0, store.build(StoreSink(), env))
    writer = LogWriter(config, env, socket_path, sinks)
    thresholds = gc.get_threshold()
    tune_collector(config.access_log)

    async def run() -> None:
        for frame in frames:
            stream = asyncio.StreamReader()
            stream.feed_data(frame)
            stream.feed_eof()
            await writer.read(stream)
            await writer.writer.flush()
        await writer.writer.close()
    try:
        return await _acpu(run)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def profile(count: int, rate: float, storage: str, work: Path,
                  store_sink: bool = True) -> pstats.Stats:
    ctxs = contexts(count, rate)
    url = await _fresh_storage(storage, work)
    profiler = cProfile.Profile()
    profiler.enable()
    await pipeline(ctxs, url, None if store_sink else [])
    profiler.disable()
    return pstats.Stats(profiler)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=30_000.0,
                        help="requests/s the records are spread over (roll-up flushes)")
    parser.add_argument("--storage", default="sqlite",
                        help="sqlite (a temporary file) or a postgresql:// URL of an "
                             "empty database")
    parser.add_argument("--no-store", action="store_true",
                        help="leave the store sink out (the other stages alone)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the pipeline")
    parser.add_argument("--writer-of", help=argparse.SUPPRESS)  # in_writer_process's
    args = parser.parse_args()
    if args.writer_of:
        frames = split_frames(args.writer_of)
        print(await writer_process(frames, args.storage, f"{args.writer_of}.sock",
                                   not args.no_store))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "p").mkdir()
        (work / "w").mkdir()
        per_record = await stages(args.records, args.rate, args.storage, work,
                                  store_sink=not args.no_store)
        print(f"{args.records:,} records, {args.storage}, batches of {BATCH}"
              + (", no store sink" if args.no_store else ""))
        print(f"{'stage':<12} {'CPU us/record':>14}")
        for name, us in per_record.items():
            print(f"{name:<12} {us:>14.2f}")
        parts = sum(us for name, us in per_record.items()
                    if name not in ("pipeline", "writer"))
        print(f"{'sum':<12} {parts:>14.2f}  (stages measured one by one)")
        if args.profile:
            (work / "q").mkdir()
            stats = await profile(args.records, args.rate, args.storage, work / "q",
                                  not args.no_store)
            stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    asyncio.run(main())
