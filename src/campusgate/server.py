"""``campusgate serve``: prepare the store, then run one worker or supervise several.

The parent process migrates the store, creates the first admin token (printed once),
and applies the config file's entities when the file changed since it was last
applied.  Then it becomes the worker (``--workers 1``: exec, same PID) or starts N
worker interpreters (``campusgate.worker``) that share the listening ports with
SO_REUSEPORT; a worker that dies is restarted.
SIGTERM (or SIGINT) drains: stop accepting, let requests in flight finish, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from campusgate.config.model import Config
from campusgate.keyring import load_keyring
from campusgate.store import ConfigStore, canonical_json
from campusgate.worker import boot_environment, setup_logging

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
    children: dict[int, int] = {}
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for index in range(workers):
        children[_spawn(config, config_path, index)] = index
    log.info("supervising %d workers", workers)
    restarts: list[float] = []
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, -1)
        if index < 0 or stopping:
            continue
        log.error("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 10] + [now]
        if len(restarts) > 5 * workers:
            log.error("workers keep dying; giving up")
            on_signal(signal.SIGTERM, None)
            continue
        children[_spawn(config, config_path, index)] = index
    return 0
