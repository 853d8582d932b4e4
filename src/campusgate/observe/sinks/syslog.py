"""The syslog sink: one RFC 5424 message per record, over UDP (RFC 5426), TCP with
octet-counting framing (RFC 6587 section 3.4.1), TLS with the same framing (RFC 5425:
the receiver's certificate verified, optionally a client certificate) or a local
Unix datagram socket (``/dev/log``).

A message is ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG``:

- PRI = facility * 8 + severity: 6 (informational), or 4 (warning) for a 5xx
  answer or a request that ended with an error class;
- TIMESTAMP is the request's arrival, RFC 3339 in UTC with microseconds; PROCID the
  worker's process id; MSGID ``access``;
- SD holds the key fields as one element ``[campusgate@32473 name="value" ...]``
  (32473 is the enterprise number RFC 5612 reserves for documentation; a site with
  its own number can filter on the SD-NAME), values escaped as section 6.3.3 says
  (``"``, ``\\`` and ``]`` get a backslash);
- MSG is the whole record as compact JSON (UTF-8, no BOM).

Datagrams longer than ``max_datagram`` are cut (at a character boundary; the SD
comes first, so the key fields survive).  Formatting and the datagram sends run in a
worker thread; TCP goes through the event loop and reconnects when the receiver
closed the connection (a batch that meets a reset connection is sent once more on a
new one, so a receiver may see a few messages twice).  A receiver that cannot be
reached fails the batch, which the writer counts; the next batch tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from campusgate.config.observe_sinks import SyslogSink, client_context
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks._encode import record_json
from campusgate.observe.sinks.base import Sink, SinkEnv

__all__ = ["SD_ID", "SyslogRecordSink", "build", "cut", "format_message", "octet_frame",
           "sd_escape"]

SD_ID = "campusgate@32473"
#: Fields carried as SD params, in this order, when they have a value.
SD_FIELDS = ("request_id", "trace_id", "span_id", "route", "service", "consumer",
             "upstream", "client_ip", "method", "host", "path", "status", "latency_ms",
             "error", "ai_model", "ai_input_tokens", "ai_output_tokens", "ai_cost")
INFO, WARNING = 6, 4


def sd_escape(value: str) -> str:
    """An SD PARAM-VALUE (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _timestamp(t: float) -> str:
    seconds = int(t)
    micros = int((t - seconds) * 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{micros:06d}Z"


def format_message(record: AccessRecord, facility: int, hostname: str, app_name: str) -> bytes:
    """The RFC 5424 message of one record (no framing)."""
    severity = WARNING if record.status >= 500 or record.error is not None else INFO
    params = " ".join(f'{name}="{sd_escape(str(value))}"' for name in SD_FIELDS
                      if (value := getattr(record, name)) is not None)
    return (f"<{facility * 8 + severity}>1 {_timestamp(record.time)} {hostname} {app_name} "
            f"{record.worker} access [{SD_ID} {params}] {record_json(record)}").encode()


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


def cut(message: bytes, limit: int) -> bytes:
    """``message`` cut to at most ``limit`` bytes without splitting a UTF-8 char."""
    if len(message) <= limit:
        return message
    end = limit
    while end > 0 and message[end] & 0xC0 == 0x80:  # a continuation byte
        end -= 1
    return message[:end]


def _hostname(configured: str | None) -> str:
    if configured is not None:
        return configured
    name = "".join(ch if "!" <= ch <= "~" else "-" for ch in socket.gethostname())
    return name[:255] or "-"


class _Datagrams:
    """UDP or a Unix datagram socket, used from a worker thread."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._sock: socket.socket | None = None

    def _open(self) -> socket.socket:
        parts = urlsplit(self.address)
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            target: object = parts.path
        else:
            family, kind, proto, _, target = socket.getaddrinfo(
                parts.hostname, parts.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, kind, proto)
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)  # type: ignore[arg-type]
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, messages: list[bytes]) -> None:
        sock = self._sock or self._open()
        self._sock = sock
        try:
            for message in messages:
                sock.send(message)
        except OSError:  # e.g. refused (ICMP) or syslogd restarted: a new socket next time
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


#: Seconds a new TLS connection waits for the receiver's verdict on the client.
TLS_VERDICT_WAIT = 0.2


async def _accepted(reader: asyncio.StreamReader) -> None:
    """With TLS 1.3 a receiver refuses the client's certificate (or its absence) only
    after the handshake: wait a moment for that refusal before writing a batch into a
    connection that is already gone.  A syslog receiver sends nothing back, so
    silence (the wait running out) is acceptance."""
    try:
        async with asyncio.timeout(TLS_VERDICT_WAIT):
            data = await reader.read(1)
    except TimeoutError:
        return
    if data:  # a receiver that talks back has not hung up
        return
    raise ConnectionRefusedError("the receiver closed the TLS connection after the "
                                 "handshake (does it require a client certificate?)")


class _Stream:
    """A TCP (or TLS) connection, opened again whenever the receiver closed it."""

    def __init__(self, address: str, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(address)
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self.tls = tls
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, data: bytes) -> None:
        async with asyncio.timeout(self.timeout):
            conn = self._conn
            if conn is None or conn[0].at_eof() or conn[1].is_closing():
                await self.close()
                conn = None
            try:
                await self._send_on(conn, data)
            except (ConnectionError, BrokenPipeError):
                if conn is None:
                    raise
                await self._send_on(None, data)  # it died under us: once more, anew

    async def _send_on(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
                       data: bytes) -> None:
        if conn is None:
            await self.close()
            conn = self._conn = await asyncio.open_connection(
                self.host, self.port, ssl=self.tls,
                server_hostname=self.host if self.tls is not None else None)
            if self.tls is not None:
                await _accepted(conn[0])
        try:
            conn[1].write(data)
            await conn[1].drain()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            writer, self._conn = self._conn[1], None
            writer.close()
            with contextlib.suppress(OSError):  # reset by the peer: closed all the same
                await writer.wait_closed()


class SyslogRecordSink:
    def __init__(self, spec: SyslogSink) -> None:
        self.name = f"syslog:{spec.address}"
        self.spec = spec
        self.hostname = _hostname(spec.hostname)
        stream = spec.address.startswith(("tcp://", "tls://"))
        tls = (client_context(spec.tls) or ssl.create_default_context()
               if spec.address.startswith("tls://") else None)
        self._stream = _Stream(spec.address, spec.timeout, tls) if stream else None
        self._datagrams = None if self._stream else _Datagrams(spec.address, spec.timeout)

    def messages(self, batch: Sequence[AccessRecord]) -> list[bytes]:
        spec, host = self.spec, self.hostname
        return [format_message(r, spec.facility, host, spec.app_name) for r in batch]

    def _send_datagrams(self, batch: Sequence[AccessRecord]) -> None:
        assert self._datagrams is not None
        limit = self.spec.max_datagram
        self._datagrams.send([cut(m, limit) for m in self.messages(batch)])

    def _framed(self, batch: Sequence[AccessRecord]) -> bytes:
        return b"".join(map(octet_frame, self.messages(batch)))

    async def write(self, batch: Sequence[AccessRecord]) -> None:
        if not batch:
            return
        if self._stream is None:
            await asyncio.to_thread(self._send_datagrams, batch)
        else:
            await self._stream.send(await asyncio.to_thread(self._framed, batch))

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        elif self._datagrams is not None:
            self._datagrams.close()


def build(spec: SyslogSink, env: SinkEnv) -> Sink:
    return SyslogRecordSink(spec)
