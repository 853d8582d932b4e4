"""A client that stops reading a response is dropped after ``limits.send_timeout``,
and the upstream connection it held is freed."""

from __future__ import annotations

import asyncio
import socket

from gateway_harness import HttpUpstream, UpstreamRequest, service, start_gateway

from campusgate.config.model import Limits


async def test_a_client_that_never_reads_is_dropped_and_frees_the_upstream() -> None:
    upstream_finished = asyncio.Event()

    async def endless(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (1 << 34))
        block = b"x" * 65536
        try:
            while True:
                writer.write(block)
                await writer.drain()
        except ConnectionError:
            upstream_finished.set()

    up = await HttpUpstream(endless).start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}")]},
                             limits=Limits(send_timeout=0.5))
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", gw.port))
        await loop.sock_sendall(sock, b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        # Never read: the gateway's socket buffer fills, then send_timeout runs out.
        await asyncio.wait_for(upstream_finished.wait(), 10)
        assert not gw.state.connections, "the stalled client connection must be closed"
    finally:
        sock.close()
        await gw.close()
        await up.close()
