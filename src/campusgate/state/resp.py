"""A small Redis client: RESP2 over one pipelined asyncio connection.

Not redis-py: a rate-limit check runs on every request, so the per-command cost has
to be a few microseconds.  Here a command is bytes appended to a buffer; every
command issued in one loop iteration goes out in one write, many are in flight at
once, and replies are matched to their futures in order (RESP replies come back
in the order of the commands, https://redis.io/docs/latest/develop/reference/protocol-spec/).

Failure is fast and typed.  Every failure is :class:`StateUnavailable`: a dropped
connection fails each pending command, a command unanswered for ``command_timeout``
drops the connection (the ones behind it would wait just as long), and after a
failed connect attempt calls fail at once for a backoff period (``backoff_min``
doubling up to ``backoff_max``) instead of each waiting for a connect of its own.
The next call after that reconnects.  ``AUTH`` and ``SELECT`` come from the URL,
TLS from ``rediss://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from typing import TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

from campusgate.state.base import StateUnavailable
from campusgate.state.scripts import Script

__all__ = ["Reply", "ReplyError", "RespClient", "encode_command", "parse_reply"]

class ReplyError(StateUnavailable):
    """An error reply from Redis (``-ERR ...``, ``-OOM ...``, ``-NOSCRIPT ...``).

    A :class:`StateUnavailable` too: to the gateway, a Redis that refuses to answer
    (out of memory, read-only replica, still loading) is as unavailable as one that
    is down.
    """

    @property
    def code(self) -> str:
        """The error's first word, e.g. ``NOSCRIPT``."""
        return str(self).split(" ", 1)[0]


#: A parsed reply: bulk and simple strings are bytes, nil is None, an error reply
#: is a :class:`ReplyError` (inside arrays; a top-level one is raised).
Reply: TypeAlias = "bytes | int | list[Reply] | ReplyError | None"


class ProtocolError(ValueError):
    """Bytes that are not RESP2."""


def encode_command(*args: bytes | str | int) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def parse_reply(buf: bytes | bytearray, pos: int) -> tuple[Reply, int]:
    """Parse one reply at ``pos``: ``(reply, end)``, or ``(None, -1)`` when ``buf``
    does not hold all of it yet.  Nil bulk strings and arrays are None."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None, -1
    kind = buf[pos]
    if kind == 0x24:  # $ bulk string
        size = int(buf[pos + 1 : end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buf) < stop + 2:
            return None, -1
        return bytes(buf[end + 2 : stop]), stop + 2
    if kind == 0x3A:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 0x2A:  # * array
        count = int(buf[pos + 1 : end])
        if count < 0:
            return None, end + 2
        items: list[Reply] = []
        at = end + 2
        for _ in range(count):
            if buf[at : at + 1] == b":":  # inline: scripts reply with integers
                end = buf.find(b"\r\n", at)
                if end < 0:
                    return None, -1
                items.append(int(buf[at + 1 : end]))
                at = end + 2
                continue
            item, at = parse_reply(buf, at)
            if at < 0:
                return None, -1
            items.append(item)
        return items, at
    if kind == 0x2B:  # + simple string
        return bytes(buf[pos + 1 : end]), end + 2
    if kind == 0x2D:  # - error
        return ReplyError(bytes(buf[pos + 1 : end]).decode("utf-8", "replace")), end + 2
    raise ProtocolError(f"not a RESP2 reply: type byte {kind!r}")


class _Connection(asyncio.Protocol):
    """One connection: a write buffer, the futures awaiting replies, a parser."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        lost: Callable[[_Connection], None],
    ) -> None:
        self._loop = loop
        self._timeout = timeout
        self._lost = lost
        self._transport: asyncio.Transport | None = None
        self._pending: deque[asyncio.Future[Reply]] = deque()
        self._deadlines: deque[float] = deque()
        self._out: list[bytes] = []
        self._flush_soon = False
        self._rest = bytearray()
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(f"connection to redis lost{reason}")

    def send(self, payload: bytes) -> asyncio.Future[Reply]:
        """Queue one encoded command; the future gets its reply."""
        if self.closed:
            raise StateUnavailable("connection to redis is closed")
        loop = self._loop
        fut: asyncio.Future[Reply] = loop.create_future()
        self._pending.append(fut)
        deadline = loop.time() + self._timeout
        self._deadlines.append(deadline)
        self._out.append(payload)
        if not self._flush_soon:
            self._flush_soon = True
            loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._check_deadline)
        return fut

    def _flush(self) -> None:
        self._flush_soon = False
        out = self._out
        if self.closed or not out or self._transport is None:
            return
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def data_received(self, data: bytes) -> None:
        rest = self._rest
        buf: bytes | bytearray = data
        if rest:
            rest += data
            buf = rest
        pending, deadlines = self._pending, self._deadlines
        pos, size = 0, len(buf)
        try:
            while pos < size:
                reply, end = parse_reply(buf, pos)
                if end < 0:
                    break
                pos = end
                if not pending:
                    raise ProtocolError("a reply nobody asked for")
                fut = pending.popleft()
                deadlines.popleft()
                if not fut.done():
                    if isinstance(reply, ReplyError):
                        fut.set_exception(reply)
                    else:
                        fut.set_result(reply)
        except ValueError as exc:  # a ProtocolError, or a length that is no number
            self.abort(f"bad reply from redis: {exc}")
            return
        if buf is rest:
            del rest[:pos]
        elif pos < size:
            rest += data[pos:]

    def _check_deadline(self) -> None:
        self._watchdog = None
        if self.closed or not self._deadlines:
            return
        head = self._deadlines[0]
        if head <= self._loop.time():
            self.abort(f"redis did not answer within {self._timeout:g} s")
        else:
            self._watchdog = self._loop.call_at(head, self._check_deadline)

    def abort(self, reason: str) -> None:
        """Drop the connection; pending commands fail with ``reason``."""
        self._fail(reason)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pending = self._pending
        while pending:
            fut = pending.popleft()
            if not fut.done():
                fut.set_exception(StateUnavailable(reason))
        self._deadlines.clear()
        self._out.clear()
        self._lost(self)


def _consume(task: asyncio.Task[_Connection]) -> None:
    """Retrieve a connect attempt's outcome, even when every waiter was cancelled."""
    if not task.cancelled():
        task.exception()


class RespClient:
    """A pipelined Redis client; connects on first use, reconnects by itself."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 0.25,
        command_timeout: float = 1.0,
        backoff_min: float = 0.5,
        backoff_max: float = 5.0,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._backoff_min = self._backoff = backoff_min
        self._backoff_max = backoff_max
        self._hello: list[bytes] = []
        if password is not None:
            auth = (b"AUTH", username, password) if username else (b"AUTH", password)
            self._hello.append(encode_command(*auth))
        if db:
            self._hello.append(encode_command(b"SELECT", db))
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._retry_at = 0.0
        self._last_error = ""
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: object) -> RespClient:
        """``redis://[[user]:password@]host[:port][/db]``, or ``rediss://`` for TLS.

        Query parameters ``connect_timeout`` and ``timeout`` (the command timeout)
        are seconds; keyword ``options`` override everything.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// or rediss:// URL: {url!r}")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"redis URL: database must be a number, not {path!r}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        kwargs: dict[str, object] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 6379,
            "db": int(path or 0),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password is not None else None,
            "ssl_context": ssl.create_default_context() if parts.scheme == "rediss" else None,
        }
        if "connect_timeout" in query:
            kwargs["connect_timeout"] = float(query["connect_timeout"])
        if "timeout" in query:
            kwargs["command_timeout"] = float(query["timeout"])
        kwargs.update(options)
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def send_now(self, payload: bytes) -> asyncio.Future[Reply] | None:
        """Queue an encoded command on the open connection without awaiting: its
        future, or None when there is no connection yet (then use the async calls,
        which connect)."""
        conn = self._conn
        if conn is None or conn.closed or self._closed:
            return None
        return conn.send(payload)

    async def execute(self, *args: bytes | str | int) -> Reply:
        """Run one command, e.g. ``await client.execute(b"GET", b"key")``."""
        return await self.execute_raw(encode_command(*args))

    async def execute_raw(self, payload: bytes) -> Reply:
        """Run one command already encoded with :func:`encode_command`."""
        conn = self._conn
        if conn is None:
            conn = await self._connection()
        return await conn.send(payload)

    async def execute_script(self, script: Script, payload: bytes) -> Reply:
        """Run an encoded ``EVALSHA`` of ``script``, loading it first if Redis says
        ``NOSCRIPT`` (after a restart or ``SCRIPT FLUSH``)."""
        conn = self._conn
        if conn is None:
            conn = await self._connection()
        try:
            return await conn.send(payload)
        except ReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
        await self.execute(b"SCRIPT", b"LOAD", script.source)
        return await self.execute_raw(payload)

    async def evalsha(
        self, script: Script, keys: list[bytes | str], args: list[bytes | str | int]
    ) -> Reply:
        """``EVALSHA`` with automatic ``SCRIPT LOAD``."""
        payload = encode_command(b"EVALSHA", script.sha, len(keys), *keys, *args)
        return await self.execute_script(script, payload)

    async def close(self) -> None:
        """Close the connection; later calls raise StateUnavailable."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, StateUnavailable):
                await self._connecting
        if self._conn is not None:
            self._conn.abort("redis client closed")
            self._conn = None

    # ------------------------------------------------------------ connecting

    async def _connection(self) -> _Connection:
        if self._closed:
            raise StateUnavailable("redis client closed")
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            wait = self._retry_at - loop.time()
            if wait > 0:
                raise StateUnavailable(
                    f"redis at {self.address} unavailable ({self._last_error}); "
                    f"next attempt in {wait:.2f} s"
                )
            self._connecting = loop.create_task(self._connect(loop))
            self._connecting.add_done_callback(_consume)
        return await asyncio.shield(self._connecting)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._command_timeout, self._lost),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
                try:
                    for fut in [conn.send(command) for command in self._hello]:
                        await fut
                except BaseException:
                    conn.abort("redis handshake failed")
                    raise
        except (OSError, TimeoutError, StateUnavailable) as exc:
            self._last_error = str(exc) or type(exc).__name__
            self._retry_at = loop.time() + self._backoff
            self._backoff = min(self._backoff * 2, self._backoff_max)
            raise StateUnavailable(
                f"cannot connect to redis at {self.address}: {self._last_error}"
            ) from exc
        finally:
            self._connecting = None
        self._backoff = self._backoff_min
        self._conn = conn
        return conn

    def _lost(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None
