"""``campusgate serve``: prepare the store, then run one worker or supervise several.

The parent process migrates the store, creates the first admin token (printed once),
and applies the config file's entities when the file changed since it was last
applied.  Then it becomes the worker (``--workers 1``: exec, same PID; the worker
starts its own log writer) or starts the node's log-writer process
(``campusgate.observe.writer_process``, when ``observe.access_log.writer`` is
``process``) and then N worker interpreters (``campusgate.worker``) that share the
listening ports with SO_REUSEPORT; a worker or writer that dies is restarted.
SIGTERM (or SIGINT) drains: stop accepting, let requests in flight finish, then
(once every worker has shipped its last records and exited) SIGTERM the writer,
which writes everything to the sinks; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import operator
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from campusgate.config.model import Config
from campusgate.keyring import load_keyring
from campusgate.logsetup import setup_logging
from campusgate.store import ConfigStore, canonical_json
from campusgate.worker import boot_environment

__all__ = ["config_source", "prepare_store", "run"]

log = logging.getLogger("campusgate")

BUILTIN_SOURCE = "builtin:demo"


def config_source(config_path: Path | None) -> str:
    """How revisions applied from this file are labelled in the store."""
    return f"file:{os.path.abspath(config_path)}" if config_path else BUILTIN_SOURCE


async def prepare_store(config: Config, source: str) -> str | None:
    """Migrate, apply the file if it changed, make the first admin token.

    Returns the new admin token's plaintext on first start, else None.
    """
    keyring = load_keyring(config.secret_key_file)  # created here on first start
    store = await ConfigStore.open(config.storage, keyring=keyring)
    try:
        entities = config.entities()
        # The key id is part of the digest: after a change of secret key the file is
        # applied again, so its secrets are sealed under the new key.
        digest = hashlib.sha256(
            (canonical_json(entities) + keyring.key_id).encode()).hexdigest()
        key = f"applied_digest:{source}"
        if await store.get_setting(key) != digest:
            revision, changed = await store.save(entities, source)
            await store.set_setting(key, digest)
            if changed:
                log.info("applied %s as config revision %d", source, revision)
        if config.identity is not None:  # signing keys exist before any worker signs
            from campusgate.identity.directory import IdentityDirectory
            from campusgate.identity.keys import KeyManager

            directory = await IdentityDirectory.open(config.storage, keyring)
            try:
                await KeyManager(directory).ensure()
            finally:
                await directory.close()
        return await store.ensure_admin_token()
    finally:
        await store.close()


def _print_token(token: str) -> None:
    bar = "=" * 72
    sys.stderr.write(
        f"\n{bar}\nFirst start: an admin token was created. It is shown only now;\n"
        f"campusgate stores only its hash. Keep it somewhere safe:\n\n    {token}\n\n"
        f"Use it as `Authorization: Bearer <token>` on the admin API, or\n"
        f"export CAMPUSGATE_ADMIN_TOKEN={token}\n"
        f"for `campusgate apply` and `campusgate export`.\n"
        f"Lost it? `campusgate admin-token rotate` makes a new one.\n{bar}\n\n"
    )
    sys.stderr.flush()


def run(config: Config, config_path: Path | None, workers: int) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code.

    With one worker this process becomes the worker (exec), keeping its PID; with
    several it supervises them.
    """
    setup_logging()
    if workers > 1 and config.identity is not None and config.state == "memory":
        log.error("the identity provider keeps authorization codes and sessions in the "
                  "state backend, which with state: memory is per worker: run one worker, "
                  "or set state: redis://host:port/db")
        return 1
    token = asyncio.run(prepare_store(config, config_source(config_path)))
    if token:
        _print_token(token)
    watch = config_path is not None
    if workers <= 1:
        sys.stdout.flush()
        os.execve(sys.executable, _WORKER_ARGV,
                  boot_environment(config, config_path, False, watch))
    return _supervise(config, config_path, workers)


_WORKER_ARGV = [sys.executable, "-m", "campusgate.worker"]


def _spawn(config: Config, config_path: Path | None, index: int) -> int:
    env = boot_environment(config, config_path, True, config_path is not None and index == 0)
    return subprocess.Popen(_WORKER_ARGV, env=env).pid


def _supervise(config: Config, config_path: Path | None, workers: int) -> int:
    from campusgate.observe.metrics import METRICS_DIR_ENV, prepare_node_dir

    # The workers' metrics files (/metrics answers for the node): new for each run.
    metrics_dir = os.environ.get(METRICS_DIR_ENV)
    owned = metrics_dir is None
    metrics_dir = metrics_dir or tempfile.mkdtemp(prefix="campusgate-metrics-")
    os.environ[METRICS_DIR_ENV] = str(prepare_node_dir(Path(metrics_dir)))
    writer = _LogWriter.configured(config)
    try:
        return _run_workers(config, config_path, workers, writer)
    finally:
        if owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if writer is not None:
            shutil.rmtree(writer.directory, ignore_errors=True)


#: A worker still there this long after its shutdown timeout (past SIGTERM) is killed.
WORKER_KILL_MARGIN = 20.0


class _LogWriter:
    """The node's log-writer process, as the supervisor runs it."""

    def __init__(self, env: dict[str, str], directory: str, drain_timeout: float) -> None:
        self.env = env
        self.directory = directory
        self.drain_timeout = drain_timeout
        self.pid = 0

    @classmethod
    def configured(cls, config: Config) -> _LogWriter | None:
        """The writer ``observe.access_log`` asks for (None: inline, or no records);
        its socket's path goes to the workers in their environment."""
        from campusgate.observe.writer_process import SOCKET_ENV, writer_environment

        settings = config.observe.access_log
        if not settings.enabled or settings.writer != "process":
            return None
        directory = tempfile.mkdtemp(prefix="campusgate-log-")
        path = os.path.join(directory, "writer.sock")
        drain = config.limits.shutdown_timeout + 10.0
        env = writer_environment(config.observe, config.storage, path, drain)
        os.environ[SOCKET_ENV] = path
        return cls(env, directory, drain)

    def spawn(self) -> int:
        from campusgate.observe.writer_process import MODULE

        self.pid = subprocess.Popen([sys.executable, "-m", MODULE], env=self.env).pid
        return self.pid

    def stop(self, kill_after: float = 0.0) -> None:
        """SIGTERM the writer (it drains into its sinks); SIGKILL it if it is still
        there ``kill_after`` seconds later (0: its drain timeout and ``STOP_MARGIN``),
        so a hung or stopped writer never holds the supervisor's exit."""
        from campusgate.observe.writer_process import STOP_MARGIN

        pid = self.pid
        terminate(pid, kill_after or self.drain_timeout + STOP_MARGIN,
                  lambda: self.pid == pid, "the log writer")


def terminate(pid: int, kill_after: float, still_there: Callable[[], bool],
              what: str) -> None:
    """SIGTERM ``pid``; SIGKILL it ``kill_after`` seconds later if ``still_there()``
    (not reaped yet), from a timer thread: the supervisor's ``os.wait`` never waits
    on a child that hangs or is stopped."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)

    def kill() -> None:
        if still_there():
            log.error("%s (pid %d) did not stop %.0f s after SIGTERM; killed", what, pid,
                      kill_after)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(kill_after, kill)
    timer.daemon = True
    timer.start()


def _run_workers(config: Config, config_path: Path | None, workers: int,
                 writer: _LogWriter | None) -> int:
    children: dict[int, int] = {}
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            return  # a second signal: the first one's timers are running
        stopping = True
        for pid, index in children.items():
            # a worker drains its requests, then ships its last records (up to 10 s)
            terminate(pid, config.limits.shutdown_timeout + WORKER_KILL_MARGIN,
                      partial(operator.contains, children, pid), f"worker {index}")
        if not children and writer is not None:
            writer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if writer is not None:  # first: the workers' records have somewhere to go
        writer.spawn()
    for index in range(workers):
        children[_spawn(config, config_path, index)] = index
    log.info("supervising %d workers", workers)
    restarts: list[float] = []
    while children or (writer is not None and writer.pid):
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if writer is not None and pid == writer.pid:
            writer.pid = 0
            if stopping and not children:
                continue  # drained and gone
            log.error("the log writer (pid %d) exited with status %d; restarting", pid,
                      status)
            index = -1
        else:
            index = children.pop(pid, -2)
            if index == -2:
                continue
            if stopping:
                if not children and writer is not None and writer.pid:
                    writer.stop()  # every worker shipped its last records
                continue
            log.error("worker %d (pid %d) exited with status %d; restarting", index, pid,
                      status)
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 10] + [now]
        if len(restarts) > 5 * workers + 5:
            log.error("workers keep dying; giving up")
            on_signal(signal.SIGTERM, None)
            continue
        if index == -1:
            assert writer is not None
            writer.spawn()
        else:
            children[_spawn(config, config_path, index)] = index
    return 0
