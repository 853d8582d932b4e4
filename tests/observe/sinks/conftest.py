"""Shared by the sink tests: access records to send, a real HTTP collector (stdlib
``http.server`` on 127.0.0.1, in a thread) that answers as a test scripts it, and TLS
files from a test CA (``trustme``) for https and syslog-over-TLS receivers."""

from __future__ import annotations

import gzip
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from campusgate.observe.record import AccessRecord

BASE = AccessRecord(
    time=1_700_000_000.25, request_id="0af7651916cd43dd8448eb211c80319c",
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7",
    parent_span_id="b7ad6b7169203331", listener="proxy", worker=4242, route="roster-api",
    service="roster", upstream="127.0.0.1:9000", consumer="district-app",
    credential="cred-1", client_ip="10.0.0.7", method="GET", host="api.example.edu",
    path="/roster/classes", status=200, bytes_in=120, bytes_out=5400, latency_ms=12.5,
    upstream_latency_ms=10.0, overhead_ms=2.5, retries=0, rate_limit="allowed", error=None,
    user_agent="curl/8.5",
)

MakeRecord = Callable[..., AccessRecord]


@pytest.fixture
def make_record() -> MakeRecord:
    """``make_record(n=0, **fields)``: a record like :data:`BASE` with its own ids."""

    def make(n: int = 0, **fields: Any) -> AccessRecord:
        ids = {"request_id": f"{n:032x}", "span_id": f"{n + 1:016x}", "time": BASE.time + n}
        return BASE._replace(**{**ids, **fields})

    return make


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    #: The body as sent (gzip undone when it was compressed).
    body: bytes
    raw_size: int
    client_port: int


@dataclass
class Collector:
    url: str
    requests: list[Received] = field(default_factory=list)
    #: Answers to give, in order (status, headers); 200 once empty.
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)


@pytest.fixture
def collector() -> Iterator[Collector]:
    yield from _serve_collector(None)


@dataclass
class TlsFiles:
    """PEM files from a test CA: the CA, and a client certificate with its key."""

    ca: trustme.CA
    ca_file: str
    cert_file: str
    key_file: str

    def server_context(self, require_client: bool = False) -> ssl.SSLContext:
        """A receiver's context: a certificate for 127.0.0.1 and localhost; with
        ``require_client``, only clients with a certificate of the CA get in."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        if require_client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    ca = trustme.CA()
    client = ca.issue_cert("campusgate-writer.test")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    return TlsFiles(ca, str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"),
                    str(tmp_path / "client.key"))


@pytest.fixture
def mtls_collector(tls_files: TlsFiles) -> Iterator[Collector]:
    """An https collector that takes only clients with a certificate of the test CA."""
    yield from _serve_collector(tls_files.server_context(require_client=True))


def _serve_collector(tls: ssl.SSLContext | None) -> Iterator[Collector]:
    box: list[Collector] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            body = gzip.decompress(raw) if self.headers.get("content-encoding") == "gzip" else raw
            with lock:
                me = box[0]
                me.requests.append(Received(self.path, {k.lower(): v for k, v in
                                                        self.headers.items()},
                                            body, len(raw), self.client_address[1]))
                status, headers = me.script.popleft() if me.script else (200, {})
            answer = b"{}"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "http" if tls is None else "https"
    box.append(Collector(f"{scheme}://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()
    thread.join()


class RecordedSleep:
    """An injected ``sleep``: records the waits asked, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleep:
    return RecordedSleep()
