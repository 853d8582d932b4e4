"""Time to first byte of streamed chat completions, at a fixed rate.

``python -m cgbench.ttfb --port P --path /v1/chat/completions --body-file F --rate 200``
POSTs the body at a fixed schedule over keep-alive connections (one request in
flight each) and prints one JSON object: percentiles of the time from the request
written to the first byte of the answer (``first_byte``: the status line) and to the
first byte of its body (``first_event``: the first server-sent event), and of the
whole stream.  Timestamps are ``time.perf_counter`` taken in the protocol callbacks.
Run once against the fake provider directly and once through campusgate, the
difference is what the gateway adds before a client sees anything.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from cgbench.loadgen import KeepAliveConnection, drive, summarize

__all__ = ["run_streams"]


class _Stream(KeepAliveConnection):
    """A keep-alive connection that also notes when the answer and its body begin."""

    def __init__(self) -> None:
        super().__init__()
        self.first_byte = self.first_event = 0.0

    def data_received(self, data: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        super().data_received(data)

    def on_body(self, body: bytes) -> None:
        if not self.first_event:
            self.first_event = time.perf_counter()

    async def request(self, raw: bytes) -> tuple[Any, ...]:
        """(status, first byte, first event, whole stream), in seconds after sending."""
        self.first_byte = self.first_event = 0.0
        status, sent, finished = await super().request(raw)
        event = self.first_event or finished
        return status, self.first_byte - sent, event - sent, finished - sent


async def run_streams(port: int, path: str, body: bytes, headers: dict[str, str],
                      rate: float, duration: float, *, connections: int = 16,
                      warmup: float = 1.0) -> dict[str, object]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
           f"Content-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
           ).encode() + body
    driven = await drive(port, raw, _Stream, rate=rate, duration=duration, warmup=warmup,
                         connections=connections)
    good = [answer for _, answer in driven.answers if 200 <= answer[0] < 300]
    out: dict[str, object] = {"rate_target": rate, "requests": len(good),
                              "connections": connections,
                              "non_2xx": len(driven.answers) - len(good),
                              "socket": driven.socket_errors}
    for index, name in enumerate(("first_byte", "first_event", "stream"), start=1):
        values = [answer[index] for answer in good]
        out[name] = summarize(values) if values else {}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--header", action="append", default=[],
                        help="an extra 'Name: value' header")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    result = uvloop.run(run_streams(
        args.port, args.path, args.body_file.read_bytes(),
        {k.strip(): v.strip() for k, v in headers.items()}, args.rate, args.duration,
        connections=args.connections, warmup=args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
