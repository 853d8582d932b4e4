"""A worker process: ``python -m campusgate.worker``, started by ``campusgate serve``.

Workers are fresh interpreters (exec'd for one worker, spawned for several), not
forks of the process that parsed the config file: parsing a large YAML file leaves
tens of megabytes of freed but fragmented heap behind, which a fork would carry
into every worker.  A worker gets its bootstrap settings (listeners, storage,
limits; no entities, which it reads from the store) as JSON in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvloop

from campusgate.config.model import Config, Entities
from campusgate.logsetup import setup_logging
from campusgate.runtime import Worker

__all__ = ["BOOT_ENV", "boot_environment", "main", "serve_worker"]

BOOT_ENV = "CAMPUSGATE_WORKER_BOOT"

log = logging.getLogger("campusgate")


def boot_environment(config: Config, config_path: Path | None, reuse_port: bool,
                     watch_file: bool) -> dict[str, str]:
    """The environment that starts a worker with these settings."""
    bootstrap = config.model_dump(mode="json", exclude=set(Entities.model_fields))
    boot = {"config": bootstrap, "config_path": str(config_path) if config_path else None,
            "reuse_port": reuse_port, "watch_file": watch_file}
    return {**os.environ, BOOT_ENV: json.dumps(boot)}


async def serve_worker(config: Config, config_path: Path | None, reuse_port: bool,
                       watch_file: bool) -> int:
    loop = asyncio.get_running_loop()
    worker = Worker(config, reuse_port=reuse_port, config_path=config_path,
                    watch_file=watch_file, log_writer=True)
    try:
        await worker.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        await worker.observe.close()
        await worker.reader.close()
        return 1
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining requests in flight (up to %.0f s)",
             config.limits.shutdown_timeout)
    await worker.shutdown(config.limits.shutdown_timeout)
    return 0


def main() -> int:
    setup_logging()
    raw = os.environ.get(BOOT_ENV)
    if not raw:
        sys.stderr.write("campusgate.worker is started by `campusgate serve`\n")
        return 2
    boot = json.loads(raw)
    config = Config.model_validate(boot["config"])
    path = Path(boot["config_path"]) if boot["config_path"] else None
    with _node_metrics_dir(config):
        return uvloop.run(serve_worker(config, path, boot["reuse_port"],
                                       boot["watch_file"]))


@contextlib.contextmanager
def _node_metrics_dir(config: Config) -> Iterator[None]:
    """A lone worker whose records go to a log-writer process reads that process's
    metrics file: give them a metrics directory (the supervisor makes one for
    several workers), removed at exit."""
    from campusgate.observe.metrics import METRICS_DIR_ENV, prepare_node_dir

    settings = config.observe.access_log
    if (os.environ.get(METRICS_DIR_ENV) or not settings.enabled
            or settings.writer != "process"):
        yield
        return
    directory = Path(tempfile.mkdtemp(prefix="campusgate-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(prepare_node_dir(directory))
    try:
        yield
    finally:
        del os.environ[METRICS_DIR_ENV]
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
