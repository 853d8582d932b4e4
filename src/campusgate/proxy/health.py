"""Active health checks: probe each target over HTTP and tell the balancer.

:class:`ProbeTally` is the pure part (consecutive successes and failures against
the thresholds); :class:`ActiveHealthChecker` is the thin async shell that probes
every target concurrently each ``interval`` and reports verdict changes to its
:class:`~campusgate.proxy.balancer.Balancer`.  :func:`http_probe` is the default
probe: one HTTP/1.1 ``GET`` over a fresh connection, reading only the status line.

On hot reload the proxy builds a new balancer and checker, carries health over
(:meth:`Balancer.carry_over`), starts the new checker and ``await``\\ s
:meth:`ActiveHealthChecker.close` on the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from campusgate.config.model import ActiveHealthCheck, Upstream
from campusgate.proxy.balancer import Balancer

__all__ = ["ActiveHealthChecker", "Probe", "ProbeError", "ProbeTally", "http_probe"]

logger = logging.getLogger("campusgate.health")

#: (host, port, path, host_header, timeout) -> HTTP status.  Raises OSError or
#: TimeoutError when the target cannot be reached or does not answer HTTP.
Probe = Callable[[str, int, str, str | None, float], Awaitable[int]]


class ProbeError(ConnectionError):
    """The target answered, but not with an HTTP status line."""


# The Probe signature carries the timeout, so the checker can pass its setting through.
async def http_probe(
    host: str, port: int, path: str, host_header: str | None, timeout: float  # noqa: ASYNC109
) -> int:
    """GET ``path`` from ``host:port`` and return the response status.

    The whole exchange (connect, send, read the status line) must finish within
    ``timeout`` seconds; the connection is closed after the status line.
    """
    if host_header is None:
        host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n"
        "User-Agent: campusgate-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            await writer.drain()
            try:
                line = await reader.readline()
            except ValueError as exc:  # status line over the reader's limit
                raise ProbeError("status line too long") from exc
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return _parse_status_line(line)


def _parse_status_line(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        if not line:
            raise ProbeError("connection closed before a status line")
        raise ProbeError(f"not an HTTP status line: {line[:80]!r}")
    status = int(parts[1])
    if not 100 <= status <= 999:
        raise ProbeError(f"invalid status {status}")
    return status


class ProbeTally:
    """Consecutive probe results of one target, against the thresholds (pure)."""

    __slots__ = ("_healthy_threshold", "_unhealthy_threshold", "failures", "successes",
                 "verdict")

    def __init__(self, healthy_threshold: int, unhealthy_threshold: int) -> None:
        self._healthy_threshold = healthy_threshold
        self._unhealthy_threshold = unhealthy_threshold
        self.successes = 0
        self.failures = 0
        #: The last verdict reached; None while "unknown".
        self.verdict: bool | None = None

    def record(self, ok: bool) -> bool | None:
        """Count one probe; return the new verdict when it changed, else None."""
        if ok:
            self.successes += 1
            self.failures = 0
            reached = self.successes >= self._healthy_threshold
        else:
            self.failures += 1
            self.successes = 0
            reached = self.failures >= self._unhealthy_threshold
        if reached and self.verdict is not ok:
            self.verdict = ok
            return ok
        return None


class ActiveHealthChecker:
    """Probes an upstream's targets every ``interval`` and updates a balancer."""

    def __init__(self, upstream: Upstream, balancer: Balancer, probe: Probe = http_probe) -> None:
        settings = upstream.healthchecks.active
        if settings is None:
            raise ValueError(f"upstream {upstream.name!r} has no active health check")
        self._settings: ActiveHealthCheck = settings
        self._upstream = upstream.name
        self._balancer = balancer
        self._probe = probe
        self._healthy_statuses = frozenset(settings.healthy_statuses)
        self._tallies = {
            t.target: ProbeTally(settings.healthy_threshold, settings.unhealthy_threshold)
            for t in upstream.targets
        }
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> asyncio.Task[None]:
        """Run the checker in a task of the running loop (once; later calls reuse it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"campusgate-health-{self._upstream}"
            )
        return self._task

    def stop(self) -> None:
        """Ask the checker to stop; ``await close()`` to wait until it has."""
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        """Stop the checker and wait until its probes are cancelled and closed."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run(self) -> None:
        """Probe every target each ``interval``, forever (until cancelled)."""
        loop = asyncio.get_running_loop()
        interval = self._settings.interval
        while True:
            started = loop.time()
            await self.check_once()
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def check_once(self) -> None:
        """Probe every target once, concurrently, and report verdict changes."""
        async with asyncio.TaskGroup() as group:
            for address in self._tallies:
                group.create_task(self._check(address))

    # ------------------------------------------------------------ one target

    async def _check(self, address: str) -> None:
        ok = await self._probe_ok(address)
        verdict = self._tallies[address].record(ok)
        if verdict is None:
            return
        self._balancer.set_active_health(address, verdict)
        logger.info(
            "upstream %s target %s is now %s",
            self._upstream, address, "healthy" if verdict else "unhealthy",
        )

    async def _probe_ok(self, address: str) -> bool:
        settings = self._settings
        host, _, port = address.rpartition(":")
        try:
            async with asyncio.timeout(settings.timeout):
                status = await self._probe(
                    host.strip("[]"), int(port), settings.path, settings.host,
                    settings.timeout,
                )
        except (OSError, TimeoutError) as exc:
            logger.debug("probe of %s failed: %r", address, exc)
            return False
        except Exception:
            # The edge of a background task: a broken probe must not stop the checks.
            logger.exception("probe of %s raised", address)
            return False
        if status not in self._healthy_statuses:
            logger.debug("probe of %s answered %d", address, status)
            return False
        return True
