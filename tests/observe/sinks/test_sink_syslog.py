"""The syslog sink against real receivers: UDP, TCP with octet counting (and a
receiver that hangs up), TLS (RFC 5425, a private CA, mutual TLS), a Unix datagram
socket; RFC 5424 parsed back, SD escaping."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from campusgate.config.observe_sinks import SyslogSink
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.syslog import SD_ID, build, cut, sd_escape

ENV = SinkEnv(storage="sqlite:///unused.db", worker_id="test:1:0")

HEADER = re.compile(r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
SD_ELEMENT = re.compile(r'\[([^ \]="]+)((?: [^ \]="]+="(?:[^"\\]|\\.)*")*)\]')
SD_PARAM = re.compile(r' ([^ \]="]+)="((?:[^"\\]|\\.)*)"')


def parse(message: bytes) -> dict[str, Any]:
    """An RFC 5424 message (section 6) back into its parts."""
    text = message.decode()
    head = HEADER.match(text)
    assert head is not None, text
    pri, timestamp, hostname, app, procid, msgid = head.groups()
    rest = text[head.end():]
    elements: dict[str, dict[str, str]] = {}
    while (element := SD_ELEMENT.match(rest)) is not None:
        elements[element[1]] = {name: re.sub(r"\\(.)", r"\1", value)
                                for name, value in SD_PARAM.findall(element[2])}
        rest = rest[element.end():]
    assert rest.startswith(" "), rest
    return {"pri": int(pri), "timestamp": timestamp, "hostname": hostname, "app": app,
            "procid": procid, "msgid": msgid, "sd": elements, "msg": rest[1:]}


def spec(address: str, **settings: Any) -> SyslogSink:
    return SyslogSink.model_validate({"type": "syslog", "address": address, **settings})


@pytest.fixture
async def udp_receiver() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def receive(sock: socket.socket, count: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    return [await loop.sock_recv(sock, 65536) for _ in range(count)]


async def test_udp_messages_are_rfc5424_with_escaped_sd(udp_receiver: socket.socket,
                                                       make_record: Any) -> None:
    port = udp_receiver.getsockname()[1]
    sink = build(spec(f"udp://127.0.0.1:{port}", facility="local3", hostname="gw-1"), ENV)
    odd = make_record(1, path='/a"b\\c]d', status=503, error="upstream_timeout",
                      consumer=None)
    await sink.write([make_record(0), odd])
    await sink.close()
    ok, failed = map(parse, await receive(udp_receiver, 2))
    assert ok["pri"] == 19 * 8 + 6 and failed["pri"] == 19 * 8 + 4
    assert ok["timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert (ok["hostname"], ok["app"], ok["procid"], ok["msgid"]) == (
        "gw-1", "campusgate", "4242", "access")
    sd = failed["sd"][SD_ID]
    assert sd["path"] == '/a"b\\c]d'
    assert sd["status"] == "503" and sd["error"] == "upstream_timeout"
    assert "consumer" not in sd and ok["sd"][SD_ID]["consumer"] == "district-app"
    assert json.loads(failed["msg"]) == odd.as_dict()


async def test_udp_datagrams_are_cut_at_the_limit(udp_receiver: socket.socket,
                                                 make_record: Any) -> None:
    port = udp_receiver.getsockname()[1]
    sink = build(spec(f"udp://127.0.0.1:{port}", max_datagram=600), ENV)
    await sink.write([make_record(0, response_body="é" * 2000)])
    await sink.close()
    (datagram,) = await receive(udp_receiver, 1)
    assert 598 <= len(datagram) <= 600
    assert parse(datagram)["sd"][SD_ID]["request_id"] == make_record(0).request_id


class TcpReceiver:
    """Reads octet-counted frames (RFC 6587 3.4.1); hangs up when asked."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self.connections = 0
        self.hang_up = asyncio.Event()
        self.hung_up = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        reading = asyncio.ensure_future(self._frames(reader))
        hang_up = asyncio.ensure_future(self.hang_up.wait())
        await asyncio.wait({reading, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        reading.cancel()
        hang_up.cancel()
        self.hang_up.clear()
        writer.close()
        await writer.wait_closed()
        self.hung_up.set()

    async def _frames(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                length = await reader.readuntil(b" ")
            except asyncio.IncompleteReadError:
                return
            await self.frames.put(await reader.readexactly(int(length[:-1])))


async def test_tcp_octet_counting_and_reconnecting(make_record: Any) -> None:
    receiver = TcpReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = build(spec(f"tcp://127.0.0.1:{port}"), ENV)
    await sink.write([make_record(0), make_record(1, path="/with space and\nnewline")])
    first = [parse(await receiver.frames.get()) for _ in range(2)]
    assert json.loads(first[1]["msg"])["path"] == "/with space and\nnewline"
    receiver.hang_up.set()  # the receiver closes the connection ...
    await receiver.hung_up.wait()
    await sink.write([make_record(2)])  # ... and the next batch arrives on a new one
    again = parse(await receiver.frames.get())
    assert again["sd"][SD_ID]["request_id"] == make_record(2).request_id
    assert receiver.connections == 2
    await sink.close()
    server.close()
    await server.wait_closed()


async def test_tls_with_a_private_ca_and_a_client_certificate(tls_files: Any,
                                                               make_record: Any) -> None:
    receiver = TcpReceiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0,
                                        ssl=tls_files.server_context(require_client=True))
    address = f"tls://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    tls = {"ca_file": tls_files.ca_file, "cert_file": tls_files.cert_file,
           "key_file": tls_files.key_file}
    sink = build(spec(address, tls=tls), ENV)
    await sink.write([make_record(0), make_record(1)])
    got = [parse(await receiver.frames.get()) for _ in range(2)]
    assert [m["sd"][SD_ID]["request_id"] for m in got] == [
        make_record(0).request_id, make_record(1).request_id]
    await sink.close()
    # the receiver's certificate is verified against the system's CAs by default
    unverified = build(spec(address), ENV)
    with pytest.raises(ssl.SSLCertVerificationError):
        await unverified.write([make_record(2)])
    await unverified.close()
    # and a receiver requiring a client certificate refuses a sink without one: the
    # batch fails (with TLS 1.3 the refusal comes after the handshake: waited for)
    anonymous = build(spec(address, tls={"ca_file": tls_files.ca_file}), ENV)
    with pytest.raises(OSError):
        await anonymous.write([make_record(3)])
    await anonymous.close()
    assert receiver.frames.qsize() == 0 and receiver.connections == 1
    server.close()
    await server.wait_closed()


def test_tls_settings_need_a_tls_address() -> None:
    with pytest.raises(ValueError, match="need a tls:// address"):
        spec("tcp://127.0.0.1:601", tls={})
    assert spec("tls://logs.example.edu:6514").tls is None  # the system's CAs


async def test_tcp_receiver_down_fails_the_batch(make_record: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = build(spec(f"tcp://127.0.0.1:{port}"), ENV)
    with pytest.raises(OSError):
        await sink.write([make_record(0)])
    await sink.close()


async def test_unix_datagram_socket(tmp_path: Path, make_record: Any) -> None:
    path = tmp_path / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.setblocking(False)
    sink = build(spec(f"unix://{path}"), ENV)
    await sink.write([make_record(0)])
    (message,) = await receive(receiver, 1)
    assert parse(message)["sd"][SD_ID]["status"] == "200"
    receiver.close()
    path.unlink()  # syslogd gone: the batch fails, the sink is not broken
    with pytest.raises(OSError):
        await sink.write([make_record(1)])
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))  # ... and back
    receiver.setblocking(False)
    await sink.write([make_record(2)])
    (message,) = await receive(receiver, 1)
    assert parse(message)["sd"][SD_ID]["request_id"] == make_record(2).request_id
    await sink.close()
    receiver.close()


def test_sd_escape_and_cut() -> None:
    assert sd_escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert cut("aé".encode(), 2) == b"a"
    assert cut(b"abc", 5) == b"abc"


@pytest.mark.parametrize("address", ["udp://host", "tcp://:514", "http://h:1", "unix://rel",
                                     "udp://h:70000", "unix:///"])
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        spec(address)


def test_facility_by_name_or_number() -> None:
    assert spec("udp://[::1]:514", facility="local0").facility == 16
    assert spec("udp://h:514", facility=3).facility == 3
    with pytest.raises(ValueError, match="unknown facility"):
        spec("udp://h:514", facility="local9")
