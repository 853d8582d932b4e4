"""The count of bytes a connection gave its client (proxy/responses.py), which the
access record's ``bytes_out`` is the difference of: written or held (corked) bytes
count as they are given, held ones leave the count when they are never sent.

A real transport: a socket pair under the running loop, read from the other end.
"""

from __future__ import annotations

import asyncio
import socket

from campusgate.proxy.responses import ResponseWriter


class Connection(ResponseWriter):
    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.closed = False
        self.bytes_out = 0
        self._corked = None
        self._resp_keep = True


async def _pair() -> tuple[Connection, socket.socket]:
    mine, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, mine)
    return Connection(transport), theirs


def _read(peer: socket.socket) -> bytes:
    peer.settimeout(2.0)
    return peer.recv(65536)


async def test_written_and_held_bytes_count_once_and_are_sent_once() -> None:
    conn, peer = await _pair()
    conn.write_raw(b"head\r\n")
    assert conn.bytes_out == 6
    conn.cork()
    conn.write_raw(b"abc")
    conn.write_raw(b"defg")
    assert conn.bytes_out == 13  # held ones count while they are held
    conn.uncork()
    assert conn.bytes_out == 13
    await asyncio.sleep(0)
    assert _read(peer) == b"head\r\nabcdefg"
    peer.close()
    assert conn.transport is not None
    conn.transport.close()


async def test_held_bytes_never_sent_leave_the_count() -> None:
    conn, peer = await _pair()
    conn.cork()
    conn.write_raw(b"partial body")
    assert conn.bytes_out == 12
    conn.abort_response()  # the upstream died: what was held is dropped
    assert conn.bytes_out == 0
    conn, peer2 = await _pair()
    conn.write_raw(b"ok")
    conn.cork()
    conn.write_raw(b"late")
    conn.closed = True  # the client went away before the flush
    conn.uncork()
    assert conn.bytes_out == 2
    for end in (peer, peer2):
        end.close()
    assert conn.transport is not None
    conn.transport.close()
