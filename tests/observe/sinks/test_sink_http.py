"""The http sink against a real local collector: the body (JSON array, NDJSON), gzip,
keep-alive, retries after 503/429 with ``Retry-After``, giving up, and https with a
private CA and a client certificate."""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

import httpx
import pytest

from campusgate.config.observe_sinks import HttpSink
from campusgate.observe.sinks._post import (
    DeliveryError,
    Poster,
    RetryPolicy,
    retry_after,
    retry_wait,
)
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.http import HttpRecordSink, build

ENV = SinkEnv(storage="sqlite:///unused.db", worker_id="test:1:0")


def spec(url: str, **settings: Any) -> HttpSink:
    return HttpSink.model_validate({"type": "http", "url": url, **settings})


async def test_a_batch_is_one_json_array_with_the_configured_headers(
        collector: Any, make_record: Any) -> None:
    sink = build(spec(f"{collector.url}/ingest?token=s3cret",
                      headers={"Authorization": "Bearer abc"}), ENV)
    batch = [make_record(n) for n in range(3)]
    await sink.write(batch)
    await sink.write([make_record(9)])
    await sink.close()
    first, second = collector.requests
    assert first.path == "/ingest?token=s3cret"
    assert first.headers["authorization"] == "Bearer abc"
    assert first.headers["content-type"] == "application/json"
    assert "content-encoding" not in first.headers
    assert json.loads(first.body) == [r.as_dict() for r in batch]
    assert first.client_port == second.client_port  # one kept-alive connection
    assert sink.name == f"http:{collector.url}/ingest"  # no query: it may hold secrets


async def test_ndjson_and_gzip_above_the_threshold(collector: Any, make_record: Any) -> None:
    sink = build(spec(collector.url, format="ndjson", gzip_above=4096), ENV)
    small, large = [make_record(0)], [make_record(n) for n in range(100)]
    await sink.write(small)
    await sink.write(large)
    await sink.close()
    plain, packed = collector.requests
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["content-type"] == "application/x-ndjson"
    assert packed.raw_size < len(packed.body) / 3
    assert [json.loads(line) for line in packed.body.splitlines()] == [
        r.as_dict() for r in large]


async def test_retries_after_503_and_honours_retry_after_on_429(
        collector: Any, make_record: Any, sleeps: Any) -> None:
    collector.script.extend([(503, {}), (429, {"Retry-After": "7"}), (200, {})])
    sink = HttpRecordSink(spec(collector.url, retry_backoff=0.5), sleep=sleeps)
    await sink.write([make_record(0)])
    await sink.close()
    assert len(collector.requests) == 3
    assert len({r.body for r in collector.requests}) == 1  # the same batch each time
    assert 0.25 <= sleeps.waits[0] <= 0.5 and sleeps.waits[1] == 7


async def test_retry_after_is_capped(collector: Any, make_record: Any, sleeps: Any) -> None:
    collector.script.extend([(503, {"Retry-After": "3600"})])
    sink = HttpRecordSink(spec(collector.url, max_retry_wait=20), sleep=sleeps)
    await sink.write([make_record(0)])
    await sink.close()
    assert sleeps.waits == [20]


async def test_gives_up_after_the_retries_and_raises(collector: Any, make_record: Any,
                                                     sleeps: Any) -> None:
    collector.script.extend([(502, {})] * 5)
    sink = HttpRecordSink(spec(collector.url, retries=2), sleep=sleeps)
    with pytest.raises(DeliveryError, match=r"after 3 attempt.*HTTP 502"):
        await sink.write([make_record(0)])
    assert len(collector.requests) == 3 and len(sleeps.waits) == 2
    # the sink goes on with the next batch
    collector.script.clear()
    await sink.write([make_record(1)])
    await sink.close()
    assert len(collector.requests) == 4


async def test_a_4xx_is_not_retried(collector: Any, make_record: Any, sleeps: Any) -> None:
    collector.script.append((401, {}))
    sink = HttpRecordSink(spec(collector.url, headers={"Authorization": "Bearer no"}),
                          sleep=sleeps)
    with pytest.raises(DeliveryError, match="refused the batch: HTTP 401") as caught:
        await sink.write([make_record(0)])
    await sink.close()
    assert "Bearer" not in str(caught.value)
    assert len(collector.requests) == 1 and sleeps.waits == []


async def test_connection_refused_is_retried_then_raised(make_record: Any,
                                                         sleeps: Any) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = HttpRecordSink(spec(f"http://user:pw@127.0.0.1:{port}/x", retries=1), sleep=sleeps)
    with pytest.raises(DeliveryError, match="ConnectError") as caught:
        await sink.write([make_record(0)])
    await sink.close()
    assert "pw" not in str(caught.value) and len(sleeps.waits) == 1


async def test_a_tls_alert_after_the_handshake_is_a_delivery_error(sleeps: Any) -> None:
    """With TLS 1.3 a receiver refuses a client certificate after the handshake; httpx
    lets that alert through as a raw ``ssl.SSLError``: the batch fails like any other
    transport failure (retried, then DeliveryError), never with the raw error."""
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
                              "certificate required")
    poster = Poster(headers={}, timeout=1.0, policy=RetryPolicy(1, 0.01, 0.01, {503}),
                    gzip_above=None, sleep=sleeps)
    await poster._client.aclose()
    poster._client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(DeliveryError, match=r"after 2 attempt.*SSLError"):
        await poster.post("https://collector.example/in", b"[]", "application/json")
    await poster.close()
    assert len(calls) == 2 and len(sleeps.waits) == 1


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("120", now=0) == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490) == 0
    assert retry_after("soon", now=0) is None
    assert retry_after(None, now=0) is None


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=5, backoff=1.0, max_wait=5.0, statuses={503})
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (5, 5.0)):
        assert ceiling / 2 <= retry_wait(policy, attempt, None) <= ceiling
    assert retry_wait(policy, 1, 3.0) == 3.0
    assert retry_wait(policy, 1, 30.0) == 5.0


def test_the_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        spec("ftp://collector/")


async def test_https_with_a_private_ca_and_a_client_certificate(
        mtls_collector: Any, tls_files: Any, make_record: Any) -> None:
    tls = {"ca_file": tls_files.ca_file, "cert_file": tls_files.cert_file,
           "key_file": tls_files.key_file}
    sink = build(spec(f"{mtls_collector.url}/in", tls=tls, retries=0), ENV)
    await sink.write([make_record(0)])
    assert [r.path for r in mtls_collector.requests] == ["/in"]
    await sink.close()
    # the receiver's certificate is verified: not by the system's CAs ...
    unknown = build(spec(f"{mtls_collector.url}/in", retries=0), ENV)
    with pytest.raises(DeliveryError, match="did not take the batch"):
        await unknown.write([make_record(1)])
    await unknown.close()
    # ... and a receiver that asks for a client certificate gets none unless configured
    anonymous = build(spec(f"{mtls_collector.url}/in", tls={"ca_file": tls_files.ca_file},
                           retries=0), ENV)
    with pytest.raises(DeliveryError):
        await anonymous.write([make_record(2)])
    await anonymous.close()
    assert len(mtls_collector.requests) == 1


def test_tls_settings_are_checked_when_the_config_loads(tls_files: Any,
                                                         tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="need an https:// url"):
        spec("http://collector.test/in", tls={})
    with pytest.raises(ValueError, match="go together"):
        spec("https://collector.test/in", tls={"cert_file": tls_files.cert_file})
    with pytest.raises(ValueError, match="cannot read"):
        spec("https://collector.test/in", tls={"ca_file": str(tmp_path / "missing.pem")})
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="unusable TLS files"):
        spec("https://collector.test/in", tls={"ca_file": str(not_pem)})
    with pytest.raises(ValueError, match="unusable TLS files"):  # a key file that holds no key
        spec("https://collector.test/in", tls={"cert_file": tls_files.cert_file,
                                               "key_file": str(not_pem)})
