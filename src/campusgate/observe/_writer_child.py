"""The log-writer process as a child of a lone worker (``campusgate serve
--workers 1``): started with the worker, restarted when it dies, stopped after the
worker's last records are shipped.  (With several workers the supervisor does this:
``server.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import sys
from pathlib import Path

from campusgate.observe.writer_process import MODULE

__all__ = ["WriterChild"]

log = logging.getLogger("campusgate.observe")

#: Restarts within this many seconds, at most ``MAX_RESTARTS``; then wait that long.
RESTART_WINDOW = 10.0
MAX_RESTARTS = 5


class WriterChild:
    """One log-writer process, kept running (``env``: ``writer_environment(...)``)."""

    def __init__(self, env: dict[str, str], directory: Path | None = None, *,
                 stop_timeout: float) -> None:
        self.env = env
        #: A directory made for the socket, removed after the writer stopped.
        self.directory = directory
        #: Seconds a SIGTERMed writer has to drain and exit before it is killed (its
        #: own drain timeout and some): a hung or stopped writer never holds the
        #: worker's shutdown.
        self.stop_timeout = stop_timeout
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep(),
                                                                 name="log writer")

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.process = await asyncio.create_subprocess_exec(sys.executable, "-m", MODULE,
                                                            env=self.env)
        return self.process

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        recent: list[float] = []
        while True:
            process = await self._spawn()
            status = await process.wait()
            log.error("the log writer (pid %d) exited with status %d; restarting",
                      process.pid, status)
            self.restarts += 1
            now = loop.time()
            recent = [t for t in recent if now - t < RESTART_WINDOW] + [now]
            if len(recent) > MAX_RESTARTS:
                log.error("the log writer keeps dying; next try in %.0f s", RESTART_WINDOW)
                await asyncio.sleep(RESTART_WINDOW)

    async def close(self) -> None:
        """SIGTERM the writer (it drains into its sinks) and wait for it to exit."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self.stop_timeout):
                    status = await process.wait()
            except TimeoutError:
                log.error("the log writer (pid %d) did not stop within %.0f s of SIGTERM; "
                          "killed", process.pid, self.stop_timeout)
                process.kill()
                status = await process.wait()
            if status:
                log.error("the log writer exited with status %d", status)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
