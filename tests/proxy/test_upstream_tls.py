"""HTTPS upstreams: verification, custom CA, verify off, SNI (certificates from trustme)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from gateway_harness import HttpUpstream, RunningGateway, http, service, start_gateway


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


class TlsUpstream:
    def __init__(self, ca: trustme.CA) -> None:
        cert = ca.issue_cert("localhost", "upstream.test", "127.0.0.1")
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.ctx)
        self.server_names: list[str | None] = []
        self.ctx.sni_callback = self._sni
        self.http = HttpUpstream()

    def _sni(self, sock: Any, name: str | None, ctx: ssl.SSLContext) -> None:
        self.server_names.append(name)


@pytest.fixture
async def tls_upstream(ca: trustme.CA) -> AsyncIterator[TlsUpstream]:
    up = TlsUpstream(ca)
    await up.http.start(ssl=up.ctx)
    yield up
    await up.http.close()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def gateways() -> AsyncIterator[list[RunningGateway]]:
    started: list[RunningGateway] = []
    yield started
    for gw in started:
        await gw.close()


async def _gateway(started: list[RunningGateway], svc: dict[str, Any]) -> RunningGateway:
    gw = await start_gateway({"services": [svc]})
    started.append(gw)
    return gw


async def test_untrusted_certificate_is_502_with_a_clear_message(
    tls_upstream: TlsUpstream, gateways: list[RunningGateway]
) -> None:
    gw = await _gateway(gateways, service("s", f"https://localhost:{tls_upstream.http.port}"))
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 502
    message = resp.body.decode()
    assert f"localhost:{tls_upstream.http.port}" in message
    assert "certificate verify failed" in message
    assert tls_upstream.http.requests == []


async def test_custom_ca_file_verifies(
    tls_upstream: TlsUpstream, ca_file: str, gateways: list[RunningGateway]
) -> None:
    port = tls_upstream.http.port
    gw = await _gateway(gateways, service("s", f"https://localhost:{port}",
                                          tls={"ca_file": ca_file}))
    for _ in range(3):
        resp = await http(gw.port, "GET", "/s/x")
        assert (resp.status, resp.body) == (200, b"GET /x")
    assert tls_upstream.http.accepted == 1  # TLS connections are pooled too
    assert tls_upstream.http.requests[-1].header("host") == f"localhost:{port}"
    assert tls_upstream.server_names == ["localhost"]  # SNI is the url's host


async def test_verify_off_accepts_any_certificate(
    tls_upstream: TlsUpstream, gateways: list[RunningGateway]
) -> None:
    gw = await _gateway(gateways, service("s", f"https://127.0.0.1:{tls_upstream.http.port}",
                                          tls={"verify": False}))
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 200


async def test_explicit_sni(
    tls_upstream: TlsUpstream, ca_file: str, gateways: list[RunningGateway]
) -> None:
    gw = await _gateway(gateways, service(
        "s", f"https://127.0.0.1:{tls_upstream.http.port}",
        tls={"ca_file": ca_file, "sni": "upstream.test"}))
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 200
    assert tls_upstream.server_names == ["upstream.test"]


async def test_hostname_mismatch_is_rejected(
    tls_upstream: TlsUpstream, ca_file: str, gateways: list[RunningGateway]
) -> None:
    gw = await _gateway(gateways, service(
        "s", f"https://127.0.0.1:{tls_upstream.http.port}",
        tls={"ca_file": ca_file, "sni": "other.test"}))
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 502
    assert "other.test" in resp.body.decode()


async def test_https_to_a_named_upstream(
    tls_upstream: TlsUpstream, ca_file: str, gateways: list[RunningGateway]
) -> None:
    address = f"127.0.0.1:{tls_upstream.http.port}"
    gw = await start_gateway({
        "upstreams": [{"name": "secure", "targets": [{"target": address}]}],
        "services": [service("s", "https://secure", tls={"ca_file": ca_file})],
    })
    gateways.append(gw)
    resp = await http(gw.port, "GET", "/s")
    assert resp.status == 200
    assert tls_upstream.http.requests[-1].header("host") == address
