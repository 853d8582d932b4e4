"""The RESP2 client: parsing, pipelining, failures, recovery.

Against the shared Redis on 127.0.0.1:6379 (keys under a per-test prefix), private
``redis-server`` processes a test may kill, and tiny fake servers that never answer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from redis_servers import RedisServer, free_port

from campusgate.state.base import StateUnavailable
from campusgate.state.resp import (
    ProtocolError,
    Reply,
    ReplyError,
    RespClient,
    _Connection,
    encode_command,
    parse_reply,
)
from campusgate.state.scripts import Script

# ---------------------------------------------------------------- encoding, parsing


def test_encode_command() -> None:
    assert encode_command(b"SET", "k\u00e9", 12, b"") == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$2\r\n12\r\n$0\r\n\r\n"
    )


REPLIES: list[tuple[bytes, Reply]] = [
    (b"+OK\r\n", b"OK"),
    (b":-42\r\n", -42),
    (b"$5\r\nhe\r\nl\r\n", b"he\r\nl"),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"*3\r\n:1\r\n$1\r\nx\r\n*2\r\n+a\r\n$-1\r\n", [1, b"x", [b"a", None]]),
    (b"*2\r\n:1\r\n:1700000000000000\r\n", [1, 1_700_000_000_000_000]),
]


@pytest.mark.parametrize("wire, value", REPLIES)
def test_parse_reply(wire: bytes, value: Reply) -> None:
    assert parse_reply(wire, 0) == (value, len(wire))
    assert parse_reply(b"junk" + wire + b"+more\r\n", 4) == (value, 4 + len(wire))


@pytest.mark.parametrize("wire, value", REPLIES)
def test_every_prefix_of_a_reply_is_incomplete(wire: bytes, value: Reply) -> None:
    for cut in range(len(wire)):
        assert parse_reply(bytearray(wire[:cut]), 0) == (None, -1), cut


def test_error_replies_are_values() -> None:
    error, end = parse_reply(b"-NOSCRIPT No matching script\r\n", 0)
    assert isinstance(error, ReplyError) and isinstance(error, StateUnavailable)
    assert (error.code, end) == ("NOSCRIPT", 30)


def test_a_bad_type_byte_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_reply(b"?what\r\n", 0)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True


def connection(timeout: float = 10) -> tuple[_Connection, FakeTransport, list[_Connection]]:
    lost: list[_Connection] = []
    conn = _Connection(asyncio.get_running_loop(), timeout, lost.append)
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport, lost


async def test_replies_fed_one_byte_at_a_time_reach_their_futures_in_order() -> None:
    conn, _, _ = connection()
    futures = [conn.send(b"x") for _ in REPLIES]
    wire = b"".join(w for w, _ in REPLIES) + b"-ERR boom\r\n"
    futures.append(conn.send(b"x"))
    for i in range(len(wire)):
        conn.data_received(wire[i : i + 1])
    assert [f.result() for f in futures[:-1]] == [v for _, v in REPLIES]
    with pytest.raises(ReplyError, match="ERR boom"):
        futures[-1].result()


async def test_replies_split_anywhere_across_reads() -> None:
    wire = b"".join(w for w, _ in REPLIES)
    for cut in range(1, len(wire)):
        conn, _, _ = connection()
        futures = [conn.send(b"x") for _ in REPLIES]
        conn.data_received(wire[:cut])
        conn.data_received(wire[cut:])
        assert [f.result() for f in futures] == [v for _, v in REPLIES], cut


async def test_commands_of_one_loop_iteration_go_out_in_one_write() -> None:
    conn, transport, _ = connection()
    for i in range(50):
        conn.send(encode_command(b"GET", i))
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"".join(encode_command(b"GET", i) for i in range(50))]
    conn.send(b"one more")
    await asyncio.sleep(0)
    assert transport.writes[1:] == [b"one more"]


async def test_a_reply_nobody_asked_for_drops_the_connection() -> None:
    conn, transport, lost = connection()
    conn.data_received(b"+OK\r\n")
    assert transport.aborted and lost == [conn]


async def test_garbage_fails_pending_commands() -> None:
    conn, transport, _ = connection()
    fut = conn.send(b"x")
    conn.data_received(b"!garbage\r\n")
    assert transport.aborted
    with pytest.raises(StateUnavailable, match="bad reply"):
        fut.result()


async def test_cancelled_callers_keep_their_place_in_line() -> None:
    conn, _, _ = connection()
    first, second, third = conn.send(b"a"), conn.send(b"b"), conn.send(b"c")
    second.cancel()
    conn.data_received(b":1\r\n:2\r\n:3\r\n")
    assert (first.result(), third.result()) == (1, 3)


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize("url, expect", [
    ("redis://localhost", ("localhost", 6379, 0, None)),
    ("redis://10.0.0.5:6380/3", ("10.0.0.5", 6380, 3, None)),
    ("redis://:s3cret@h/0", ("h", 6379, 0, b"*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n")),
    ("redis://app:p%40ss@h:1/2", ("h", 1, 2,
                                   b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$4\r\np@ss\r\n")),
])
def test_from_url(url: str, expect: tuple[str, int, int, bytes | None]) -> None:
    client = RespClient.from_url(url)
    host, port, db, auth = expect
    assert (client.host, client.port, client.db) == (host, port, db)
    hello = client._hello
    assert (hello[0] if auth else None) == auth
    assert (encode_command(b"SELECT", db) in hello) == bool(db)
    assert client._ssl is None


def test_from_url_options() -> None:
    client = RespClient.from_url("rediss://cache.internal?timeout=0.5&connect_timeout=0.1")
    assert isinstance(client._ssl, ssl.SSLContext)
    assert (client._command_timeout, client._connect_timeout) == (0.5, 0.1)


@pytest.mark.parametrize("url", ["http://h", "redis://h/zero", "unix:///tmp/redis.sock"])
def test_from_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        RespClient.from_url(url)


# ---------------------------------------------------------------- against Redis


async def test_set_get_and_errors(shared: RespClient, prefix: str) -> None:
    key = prefix + "k"
    assert await shared.execute(b"SET", key, b"v") == b"OK"
    assert await shared.execute(b"GET", key) == b"v"
    assert await shared.execute(b"GET", prefix + "missing") is None
    with pytest.raises(ReplyError, match="not an integer"):
        await shared.execute(b"INCR", key)
    assert await shared.execute(b"PING") == b"PONG"  # the connection is fine


async def test_pipelined_replies_match_their_commands(shared: RespClient, prefix: str) -> None:
    key = prefix + "n"
    replies = await asyncio.gather(*[shared.execute(b"INCR", key) for _ in range(2000)])
    assert replies == list(range(1, 2001))


async def test_a_dropped_connection_is_replaced(shared: RespClient, prefix: str) -> None:
    client_id = await shared.execute(b"CLIENT", b"ID")
    killer = RespClient()
    assert await killer.execute(b"CLIENT", b"KILL", b"ID", client_id) == 1  # type: ignore[arg-type]
    await killer.close()
    for _ in range(2):  # the first call may still find the dead connection
        try:
            await shared.execute(b"PING")
            break
        except StateUnavailable:
            continue
    assert await shared.execute(b"CLIENT", b"ID") != client_id


# ---------------------------------------------------------------- private servers


async def test_noscript_loads_the_script(private_redis: RedisServer) -> None:
    client = RespClient.from_url(private_redis.url)
    script = Script(b"return tonumber(ARGV[1]) * 2")
    assert await client.evalsha(script, [], [21]) == 42
    await client.execute(b"SCRIPT", b"FLUSH")
    assert await client.evalsha(script, [], [5]) == 10
    with pytest.raises(ReplyError):
        await client.evalsha(Script(b"return redis.call('NOPE')"), [], [])
    await client.close()


async def test_auth_and_select_from_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, "--requirepass", "pa:ss")
    server.start()
    try:
        client = RespClient.from_url(f"redis://:pa%3Ass@127.0.0.1:{server.port}/3")
        assert await client.execute(b"SET", b"k", b"v") == b"OK"
        info = await client.execute(b"CLIENT", b"INFO")
        assert isinstance(info, bytes) and b" db=3 " in info
        await client.close()
        wrong = RespClient.from_url(f"redis://:nope@127.0.0.1:{server.port}/0")
        with pytest.raises(StateUnavailable, match=r"WRONGPASS|invalid"):
            await wrong.execute(b"PING")
        await wrong.close()
    finally:
        server.kill()


async def test_a_dying_server_fails_pending_commands_then_the_client_recovers(
    private_redis: RedisServer,
) -> None:
    client = RespClient.from_url(
        private_redis.url, command_timeout=60, backoff_min=0.05, backoff_max=0.2
    )
    assert await client.execute(b"PING") == b"PONG"
    blocked = [asyncio.ensure_future(client.execute(b"BLPOP", b"nothing", 0))]
    blocked += [asyncio.ensure_future(client.execute(b"GET", b"k")) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert not any(f.done() for f in blocked)
    private_redis.kill()
    async with asyncio.timeout(10):  # a hang guard, not a speed requirement
        results = await asyncio.gather(*blocked, return_exceptions=True)
    assert all(isinstance(r, StateUnavailable) for r in results), results
    with pytest.raises(StateUnavailable, match="cannot connect"):
        await client.execute(b"PING")
    # while the backoff lasts, calls fail at once without trying to connect
    with pytest.raises(StateUnavailable, match="next attempt in"):
        await client.execute(b"PING")
    private_redis.start()
    async with asyncio.timeout(10):
        while True:
            try:
                assert await client.execute(b"PING") == b"PONG"
                break
            except StateUnavailable:
                await asyncio.sleep(0.05)
    assert client._backoff == 0.05  # a success resets the backoff
    await client.close()


async def test_backoff_doubles_up_to_its_cap() -> None:
    client = RespClient(port=free_port(), backoff_min=0.01, backoff_max=0.04)
    waits = []
    for _ in range(4):
        with pytest.raises(StateUnavailable, match="cannot connect"):
            await client.execute(b"PING")
        waits.append(client._backoff)
        await asyncio.sleep(client._retry_at - asyncio.get_running_loop().time())
    assert waits == [0.02, 0.04, 0.04, 0.04]
    await client.close()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections, reads, never answers."""
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_an_unanswered_command_times_out(silent_server: int) -> None:
    client = RespClient(port=silent_server, command_timeout=0.2)
    calls = [client.execute(b"GET", b"k"), client.execute(b"GET", b"j")]
    async with asyncio.timeout(10):
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, StateUnavailable) for r in results)
    assert "did not answer within 0.2 s" in str(results[0])
    await client.close()


async def test_an_unanswered_handshake_is_a_connect_timeout(silent_server: int) -> None:
    client = RespClient(port=silent_server, password="x", connect_timeout=0.2)
    async with asyncio.timeout(10):
        with pytest.raises(StateUnavailable, match="cannot connect"):
            await client.execute(b"PING")
    await client.close()


async def test_closed_client_refuses(shared: RespClient) -> None:
    client = RespClient()
    await client.execute(b"PING")
    await client.close()
    with pytest.raises(StateUnavailable, match="closed"):
        await client.execute(b"PING")


async def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    server = RedisServer(
        tmp_path, "--tls-cert-file", str(tmp_path / "cert.pem"),
        "--tls-key-file", str(tmp_path / "key.pem"),
        "--tls-ca-cert-file", str(tmp_path / "ca.pem"), "--tls-auth-clients", "no",
        tls=True,
    )
    server.start()
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        client = RespClient.from_url(server.url, ssl_context=context)
        assert await client.execute(b"PING") == b"PONG"
        await client.close()
        untrusting = RespClient.from_url(server.url)  # the system CAs do not know ours
        with pytest.raises(StateUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.execute(b"PING")
        await untrusting.close()
    finally:
        server.kill()
