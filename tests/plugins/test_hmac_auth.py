"""hmac-auth: the signature scheme (sans-IO), the plugin's checks, replay protection
in memory and in Redis, and the documented worked example."""

from __future__ import annotations

import json
import re
import secrets
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import HttpUpstream, http, service, start_gateway
from pydantic import ValidationError

from campusgate.auth.hmac_signature import (
    SignatureError,
    authorization,
    body_digest,
    check_date,
    digest_matches,
    parse_auth_params,
    parse_authorization,
    signing_string,
)
from campusgate.config.model import Consumer, PluginSpec
from campusgate.plugins.authentication import Identity
from campusgate.plugins.base import WAIT, PluginEnv, PluginResources
from campusgate.plugins.hmac_auth import DIGEST_VAR, HmacAuthPlugin
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.consumers import ConsumerIndex
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.state.redis import RedisState

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins" / "hmac-auth.md"
KEY_ID = "grades-sync"
SECRET = "s3cr3t-shared-with-the-district"
CONSUMERS = [{"name": "sis", "credentials": [
    {"type": "hmac-auth", "key_id": KEY_ID, "secret": SECRET}]}]
NAMES = ("@method", "@path", "date")


def now_date() -> bytes:
    return formatdate(usegmt=True).encode()


def signed(method: str = "GET", path: str = "/v1/grades", query: str = "",
           headers: HeaderList | None = None, names: tuple[str, ...] = NAMES,
           secret: str = SECRET, key_id: str = KEY_ID,
           algorithm: str = "hmac-sha256") -> RequestContext:
    """A request signed over ``names`` (a date header is added unless given)."""
    hdrs = list(headers or [])
    if not any(n in (b"date", b"x-date") for n, _ in hdrs):
        hdrs.append((b"date", now_date()))
    value = authorization(key_id, secret.encode(), method, path, query, hdrs, names, algorithm)
    hdrs.append((b"authorization", value))
    return RequestContext(method, path, query, hdrs, "127.0.0.1", "http", "h", "rid")


def plugin(resources: PluginResources | None = None, **config: Any) -> HmacAuthPlugin:
    resources = resources or default_resources()
    index = ConsumerIndex.build([Consumer.model_validate(c) for c in CONSUMERS],
                                resources.keyring)
    made = build_plugin("hmac-auth", config, PluginEnv(resources, "route:r", index))
    assert isinstance(made, HmacAuthPlugin)
    return made


def refusal(answer: object, status: int = 401) -> str:
    assert isinstance(answer, LocalResponse), answer
    assert answer.status == status
    message: str = json.loads(answer.body)["error"]["message"]
    return message


# ---------------------------------------------------------------- the scheme, sans-IO


def test_parse_auth_params() -> None:
    params = parse_auth_params('keyId="a b", headers=x,signature="q\\"z" , Extra=tok')
    assert params == {"keyid": "a b", "headers": "x", "signature": 'q"z', "extra": "tok"}


@pytest.mark.parametrize("text", ['keyId="a" headers="b"', 'keyId="a", keyid="b"',
                                  'keyId="a', "=x"])
def test_malformed_auth_params(text: str) -> None:
    with pytest.raises(SignatureError):
        parse_auth_params(text)


def test_parse_authorization() -> None:
    assert parse_authorization(b"Bearer abc") is None
    params = parse_authorization(b'hmac-sha512 keyId="k", headers="@Method Date", '
                                 b'signature="AAAA"')
    assert params is not None
    assert (params.algorithm, params.key_id, params.headers, params.signature) == (
        "hmac-sha512", "k", ("@method", "date"), b"\0\0\0")


@pytest.mark.parametrize("value, fault", [
    (b'HMAC-SHA256 keyId="k", headers="date"', "signature parameter is missing"),
    (b'HMAC-SHA256 headers="date", signature="AAAA"', "keyId parameter is missing"),
    (b'HMAC-SHA256 keyId="k", headers="date", signature="***"', "not base64"),
    (b'HMAC-SHA256 keyId="k", headers="date date", signature="AAAA"', "listed twice"),
    (b'HMAC-SHA256 keyId="k", headers="@body", signature="AAAA"', "not a header name"),
])
def test_bad_authorization(value: bytes, fault: str) -> None:
    with pytest.raises(SignatureError, match=fault):
        parse_authorization(value)


def test_signing_string_lines() -> None:
    headers = [(b"x-date", b" Tue, 07 Jan 2025 14:00:00 GMT "), (b"x-tag", b"a"),
               (b"x-tag", b"b")]
    assert signing_string("GET", "/p", "a=1&b=2", headers,
                          ["@method", "@path", "x-date", "x-tag"]) == (
        b"@method: GET\n@path: /p?a=1&b=2\nx-date: Tue, 07 Jan 2025 14:00:00 GMT\n"
        b"x-tag: a, b")
    assert signing_string("GET", "/p", "", [], ["@path"]) == b"@path: /p"
    with pytest.raises(SignatureError, match="'date' is not in the request"):
        signing_string("GET", "/p", "", [], ["date"])


def test_body_digest() -> None:
    assert body_digest(b"") == "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert digest_matches(body_digest(b"hi"), b"hi")
    assert digest_matches(body_digest(b"hi", "SHA-512"), b"hi")
    assert not digest_matches(body_digest(b"hi"), b"ho")
    with pytest.raises(SignatureError):
        digest_matches("MD5=abc", b"hi")


def test_check_date() -> None:
    check_date(b"Tue, 07 Jan 2025 14:00:00 GMT", 1736258400 + 299, 300)
    with pytest.raises(SignatureError, match="clock skew"):
        check_date(b"Tue, 07 Jan 2025 14:00:00 GMT", 1736258400 + 301, 300)
    with pytest.raises(SignatureError, match="not an HTTP-date"):
        check_date(b"yesterday", 0, 300)


def test_the_documented_worked_example_is_what_the_gateway_computes() -> None:
    text = DOC.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None, "docs/plugins/hmac-auth.md has no python example"
    scope: dict[str, Any] = {}
    exec(block.group(1), scope)
    headers = [(b"x-date", scope["date"].encode()), (b"digest", scope["digest"].encode())]
    expected = authorization(KEY_ID, SECRET.encode(), "POST", "/v1/grades", "term=2",
                             headers, ["@method", "@path", "x-date", "digest"])
    assert scope["authorization"].encode() == expected
    assert scope["authorization"] in text  # the page shows the value it computes
    assert scope["digest"] == body_digest(scope["body"])


# ---------------------------------------------------------------- the plugin


def test_signed_request_is_accepted_once() -> None:
    p = plugin()
    c = signed()
    answer = p.authenticate_now(c)
    assert isinstance(answer, Identity)
    assert answer.consumer is not None and answer.consumer.name == "sis"
    assert answer.credential == f"hmac-{KEY_ID}"
    assert b"authorization" in c.upstream_headers_remove
    replay = RequestContext(c.method, c.path, c.query, c.headers, "10.0.0.9", "http", "h", "r2")
    assert refusal(p.authenticate_now(replay)) == "replayed request"


def test_signature_over_the_query_and_sha512() -> None:
    p = plugin()
    assert isinstance(p.authenticate_now(signed(query="term=2", algorithm="hmac-sha512")),
                      Identity)
    c = signed(query="term=2")
    c.query = "term=3"  # changed in transit
    assert refusal(p.authenticate_now(c)) == "the signature cannot be verified"


@pytest.mark.parametrize("kwargs", [{"secret": "another-secret-of-16+"},
                                    {"key_id": "nobody"}])
def test_wrong_secret_or_unknown_key_id_are_refused_alike(kwargs: dict[str, str]) -> None:
    assert refusal(plugin().authenticate_now(signed(**kwargs))) == (
        "the signature cannot be verified")


@pytest.mark.parametrize("kwargs, fault", [
    ({"names": ("@method", "date")}, "must cover @path"),
    ({"names": ("@method", "@path")}, "must cover date"),
    ({"headers": [(b"x-date", b"Tue, 07 Jan 2025 14:00:00 GMT")],
      "names": ("@method", "@path", "x-date")}, "clock skew"),
    ({"headers": [(b"date", b"soon")]}, "not an HTTP-date"),
])
def test_what_the_signature_must_cover_and_the_date(kwargs: dict[str, Any],
                                                    fault: str) -> None:
    assert fault in refusal(plugin().authenticate_now(signed(**kwargs)))


def test_x_date_is_preferred_and_must_be_signed() -> None:
    headers = [(b"x-date", now_date()), (b"date", now_date())]
    answer = plugin().authenticate_now(signed(headers=headers))  # signs date, not x-date
    assert refusal(answer) == "the signature must cover x-date"
    ok = signed(headers=headers, names=("@method", "@path", "x-date"))
    assert isinstance(plugin().authenticate_now(ok), Identity)


def test_the_gateway_clock_bounds_the_date() -> None:
    p = plugin(clock_skew=60)
    p.clock = lambda: time.time() + 61
    assert "clock skew" in refusal(p.authenticate_now(signed()))


def test_algorithms_allow_list() -> None:
    p = plugin(algorithms=["hmac-sha512"])
    assert "hmac-sha256 is not accepted" in refusal(p.authenticate_now(signed()))


def test_enforce_headers_can_require_more() -> None:
    p = plugin(enforce_headers=["@method", "@path", "X-Tenant"])
    assert "must cover x-tenant" in refusal(p.authenticate_now(signed()))
    ok = signed(headers=[(b"x-tenant", b"d1")], names=(*NAMES, "x-tenant"))
    assert isinstance(p.authenticate_now(ok), Identity)


def test_other_schemes_are_no_credential() -> None:
    c = RequestContext("GET", "/", "", [(b"authorization", b"Basic Ym9iOng=")], "127.0.0.1",
                       "http", "h", "rid")
    assert plugin().authenticate_now(c) is None


def test_challenge_names_what_to_sign() -> None:
    answer = plugin().authenticate_now(signed(key_id="nobody"))
    assert isinstance(answer, LocalResponse)
    assert (b"www-authenticate",
            b'HMAC-SHA256 realm="campusgate", headers="@method @path date"') in answer.headers


# ---------------------------------------------------------------- bodies


def body_request(body: bytes, *, sign_digest: bool = True, digest: str | None = None,
                 length: bool = True) -> RequestContext:
    headers: HeaderList = [(b"digest", (digest or body_digest(body)).encode())]
    headers.append((b"content-length", str(len(body)).encode()) if length
                   else (b"transfer-encoding", b"chunked"))
    names = (*NAMES, "digest") if sign_digest else NAMES
    return signed("POST", headers=headers, names=names)


def test_body_with_a_signed_digest_is_accepted_and_checked_by_the_body_hook() -> None:
    p = plugin()
    c = body_request(b'{"grade":"A"}')
    assert isinstance(p.authenticate_now(c), Identity)
    assert c.vars[DIGEST_VAR] == body_digest(b'{"grade":"A"}')
    assert p.verify_body_digest(c, b'{"grade":"A"}') is None
    assert refusal(p.verify_body_digest(c, b'{"grade":"F"}')) == (
        "the digest does not match the body")


def test_body_hook_ignores_requests_this_plugin_did_not_authenticate() -> None:
    c = RequestContext("POST", "/", "", [], "127.0.0.1", "http", "h", "rid")
    assert plugin().verify_body_digest(c, b"anything") is None


def test_body_needs_a_signed_digest() -> None:
    p = plugin()
    fault = "a request with a body must sign a digest header"
    assert refusal(p.authenticate_now(body_request(b"x", sign_digest=False))) == fault
    c = signed("POST", headers=[(b"content-length", b"1")])
    assert refusal(p.authenticate_now(c)) == fault


def test_body_framing_and_size() -> None:
    p = plugin(max_body_bytes=4)
    assert refusal(p.authenticate_now(body_request(b"12345")), 413)
    assert refusal(p.authenticate_now(body_request(b"1", length=False)), 411)


def test_digest_of_a_request_without_body_must_be_of_the_empty_body() -> None:
    p = plugin()
    c = signed("GET", headers=[(b"digest", body_digest(b"").encode())],
               names=(*NAMES, "digest"))
    assert isinstance(p.authenticate_now(c), Identity)
    c = signed("GET", headers=[(b"digest", body_digest(b"x").encode())],
               names=(*NAMES, "digest"))
    assert refusal(p.authenticate_now(c)) == "the digest does not match the body"


# ---------------------------------------------------------------- config and Redis


@pytest.mark.parametrize("config, fault", [
    ({"enforce_headers": ["@body"]}, "unknown pseudo-header"),
    ({"enforce_headers": ["bad header"]}, "not a header name"),
    ({"algorithms": []}, "algorithms"),
    ({"algorithms": ["hmac-md5"]}, "algorithms"),
    ({"clock_skew": 0}, "clock_skew"),
    ({"backend": "disk"}, "backend"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="hmac-auth", config=config)


def test_redis_backend_needs_a_redis_state_setting() -> None:
    with pytest.raises(ValueError, match="redis:// URL"):
        plugin(backend="redis")


async def test_redis_backend_waits_and_refuses_replays_across_workers() -> None:
    prefix = f"cgtest:{secrets.token_hex(4)}:"
    states = [RedisState("redis://127.0.0.1:6379/0", prefix) for _ in range(2)]
    workers = []
    for state in states:  # two workers sharing one Redis
        local = default_resources()
        workers.append(plugin(PluginResources(local.keyring, local.memory, state, local.loop),
                              backend="redis"))
    try:
        c = signed()
        assert workers[0].authenticate_now(c) is WAIT
        assert not c.upstream_headers_remove  # WAIT changed nothing
        unsigned = RequestContext("GET", "/", "", [], "127.0.0.1", "http", "h", "rid")
        assert workers[0].authenticate_now(unsigned) is None  # no need to wait for that
        assert isinstance(await workers[0].authenticate(c), Identity)
        again = RequestContext(c.method, c.path, c.query, c.headers, "127.0.0.1", "http",
                               "h", "r2")
        assert refusal(await workers[1].authenticate(again)) == "replayed request"
    finally:
        for state in states:
            for key in await state.client.execute(b"KEYS", (prefix + "*").encode()) or []:
                await state.client.execute(b"DEL", key)
            await state.close()


# ---------------------------------------------------------------- through the gateway


async def test_gateway_hmac_auth_end_to_end() -> None:
    up = await HttpUpstream().start()
    entities = {"services": [service("v1", f"http://{up.address}",
                                     plugins=[{"name": "hmac-auth"}])],
                "consumers": CONSUMERS}
    gw = await start_gateway(entities)
    try:
        c = signed("GET", "/v1/grades", "term=2")
        ok = await http(gw.port, "GET", "/v1/grades?term=2", c.headers)
        assert ok.status == 200
        assert up.requests[-1].header("authorization") is None
        assert up.requests[-1].header("x-consumer-name") == "sis"
        replay = await http(gw.port, "GET", "/v1/grades?term=2", c.headers)
        assert replay.status == 401
        assert "replayed" in replay.body.decode()

        body = b'{"student":"S-42","grade":"A"}'
        c = signed("POST", "/v1/grades", headers=[
            (b"digest", body_digest(body).encode()),
            (b"content-length", str(len(body)).encode())], names=(*NAMES, "digest"))
        posted = await http(gw.port, "POST", "/v1/grades", c.headers, body)
        assert posted.status == 200
        assert up.requests[-1].body == body
        assert len(up.requests) == 2

        # a body altered after signing never reaches the upstream
        c = signed("POST", "/v1/grades", "attempt=2", headers=[
            (b"digest", body_digest(body).encode()),
            (b"content-length", str(len(body)).encode())], names=(*NAMES, "digest"))
        forged = body.replace(b'"A"', b'"F"')
        tampered = await http(gw.port, "POST", "/v1/grades?attempt=2", c.headers, forged)
        assert tampered.status == 401
        assert "digest does not match" in tampered.body.decode()
        assert len(up.requests) == 2
    finally:
        await gw.close()
        await up.close()
