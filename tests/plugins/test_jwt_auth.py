"""jwt: consumer credentials and JWKS keys, the 401 shapes, the verified-token cache."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import HttpUpstream, Response, RunningGateway, http, start_gateway
from pydantic import ValidationError
from token_helpers import (
    HMAC_SECRET,
    JwksServer,
    forge_hs,
    public_pem,
    sign,
    signing_key,
    unsigned,
)

from campusgate.auth.jwks import JwksCache
from campusgate.auth.jwt_verify import verify_signature
from campusgate.config.model import Entities, PluginSpec
from campusgate.plugins.authentication import Identity
from campusgate.plugins.base import WAIT, PluginEnv
from campusgate.plugins.jwt_auth import JwtAuthPlugin
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.consumers import ConsumerIndex
from campusgate.proxy.context import LocalResponse, RequestContext

SECRET = (HMAC_SECRET + b"0").decode()
RSA = signing_key("RS256")
EC = signing_key("ES256")

APP = {"name": "district-app", "custom_id": "d-1", "groups": ["partners"], "credentials": [
    {"type": "jwt", "key": "district", "secret": SECRET},
    {"type": "jwt", "id": "rsa-cred", "key": "rsa-issuer", "algorithm": "RS256",
     "public_key": public_pem(RSA)},
    {"type": "jwt", "key": "ec-issuer", "algorithm": "ES256", "public_key": public_pem(EC)},
]}
TEACHER = {"name": "teacher-portal", "custom_id": "portal"}
GUEST = {"name": "guest"}


def claims(iss: str = "district", **extra: Any) -> dict[str, Any]:
    # Tokens of the parametrized cases are made when the module is collected, which
    # can be many minutes before they are used on a loaded machine: valid for hours.
    return {"iss": iss, "sub": "app", "exp": time.time() + 6 * 3600, **extra}


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + token.encode())]


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("config, fault", [
    ({"header_names": [], "query_param_names": [], "cookie_names": []}, "at least one"),
    ({"header_names": ["bad header"]}, "not a header name"),
    ({"query_param_names": ["a&b"]}, "names must be"),
    ({"max_lifetime": 600, "claims_to_verify": ["nbf"]}, "max_lifetime needs"),
    ({"consumer_claim": "sub"}, "consumer_claim maps tokens verified with jwks_uri"),
    ({"jwks_uri": "ftp://idp.example/jwks"}, "not an http"),
    ({"jwks_uri": "https://idp.example/jwks", "algorithms": ["HS256"]}, "asymmetric"),
    ({"algorithms": ["none"]}, "algorithms"),
    ({"algorithms": []}, "algorithms"),
    ({"claims_to_verify": ["iat"]}, "claims_to_verify"),
    ({"leeway": -1}, "leeway"),
    ({"realm": 'a"b'}, "realm"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="jwt", config=config)


def test_defaults() -> None:
    spec = PluginSpec(name="jwt")
    assert spec.config["header_names"] == ["authorization"]
    assert spec.config["claims_to_verify"] == ["exp"]
    assert "EdDSA" in spec.config["algorithms"] and "HS256" in spec.config["algorithms"]


# ---------------------------------------------------------------- through the gateway


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    up = await HttpUpstream().start()
    yield up
    await up.close()


def entities(up: HttpUpstream, config: dict[str, Any] | None = None,
             consumers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "services": [{"name": "api", "url": f"http://{up.address}",
                      "routes": [{"name": "api-r", "paths": ["/api"]}],
                      "plugins": [{"name": "jwt", "config": config or {}}]}],
        "consumers": [APP, TEACHER, GUEST] if consumers is None else consumers,
    }


@pytest.fixture
async def gateway(upstream: HttpUpstream) -> AsyncIterator[RunningGateway]:
    gw = await start_gateway(entities(upstream))
    yield gw
    await gw.close()


def refusal(response: Response) -> tuple[str, str]:
    """(error code in the body, WWW-Authenticate) of a refusal."""
    return json.loads(response.body)["error"]["code"], response.header("www-authenticate") or ""


@pytest.mark.parametrize("alg, iss", [("HS256", "district"), ("RS256", "rsa-issuer"),
                                      ("ES256", "ec-issuer")])
async def test_a_valid_token_names_its_consumer_to_the_upstream(
        gateway: RunningGateway, upstream: HttpUpstream, alg: str, iss: str) -> None:
    response = await http(gateway.port, "GET", "/api/x", headers=bearer(sign(claims(iss), alg)))
    assert response.status == 200
    seen = upstream.requests[-1]
    assert seen.header("x-consumer-name") == "district-app"
    assert seen.header("x-consumer-custom-id") == "d-1"
    assert seen.header("x-consumer-groups") == "partners"
    assert seen.header("authorization") is None  # hide_credentials
    if alg == "RS256":
        assert seen.header("x-credential-identifier") == "rsa-cred"


async def test_the_kid_names_the_credential_when_the_key_claim_does_not(
        gateway: RunningGateway, upstream: HttpUpstream) -> None:
    token = sign({"sub": "app", "exp": time.time() + 60}, "RS256", kid="rsa-issuer")
    assert (await http(gateway.port, "GET", "/api", headers=bearer(token))).status == 200


async def test_no_token_is_a_401_with_a_bearer_challenge(gateway: RunningGateway) -> None:
    response = await http(gateway.port, "GET", "/api")
    assert response.status == 401
    assert refusal(response) == ("unauthorized", 'Bearer realm="campusgate"')


@pytest.mark.parametrize("token, reason", [
    ("not.a.jwt", "not a well-formed JWT"),
    (sign(claims(exp=time.time() - 120), "HS256"), "expired"),
    (sign(claims(nbf=time.time() + 30 * 86400), "HS256"), "not valid yet"),
    (sign({"iss": "district"}, "HS256"), "no exp claim"),
    (unsigned(claims()), "alg none"),
    (sign(claims("nobody"), "HS256"), "no credential matches the token's iss claim or kid"),
    (sign(claims("rsa-issuer"), "RS384", RSA), "RS384 is not its credential's (RS256)"),
    # the RSA public key used as an HMAC secret, against the RS256 credential
    (forge_hs(claims("rsa-issuer"), public_pem(RSA).encode()), "HS256 is not its credential's"),
    (sign(claims(), "HS256", signing_key("HS256", 7)), "signature is not valid"),
])
async def test_a_bad_token_is_a_401_invalid_token(gateway: RunningGateway,
                                                  upstream: HttpUpstream,
                                                  token: str, reason: str) -> None:
    response = await http(gateway.port, "GET", "/api", headers=bearer(token))
    assert response.status == 401
    code, challenge = refusal(response)
    assert code == "invalid_token"
    assert challenge.startswith('Bearer realm="campusgate", error="invalid_token", '
                                'error_description="')
    assert reason in challenge
    assert upstream.requests == []


async def test_another_scheme_is_not_a_jwt_credential(gateway: RunningGateway) -> None:
    response = await http(gateway.port, "GET", "/api",
                          headers=[(b"authorization", b"Basic YWRhOnB3")])
    assert refusal(response)[0] == "unauthorized"


@pytest.mark.parametrize("config, token_claims, status", [
    ({"issuer": "district"}, claims(), 200),
    ({"audiences": ["roster"]}, claims(aud=["roster", "lms"]), 200),
    ({"audiences": ["roster"]}, claims(aud="lms"), 401),
    ({"algorithms": ["RS256"]}, claims(), 401),
    ({"max_lifetime": 600}, claims(iat=time.time(), exp=time.time() + 3600), 401),
    ({"claims_to_verify": ["exp", "nbf"]}, claims(), 401),
    ({"claims_to_verify": []}, {"iss": "district"}, 200),
])
async def test_claim_settings(upstream: HttpUpstream, config: dict[str, Any],
                              token_claims: dict[str, Any], status: int) -> None:
    gw = await start_gateway(entities(upstream, config))
    try:
        response = await http(gw.port, "GET", "/api", headers=bearer(sign(token_claims, "HS256")))
        assert response.status == status
    finally:
        await gw.close()


async def test_query_and_cookie_tokens_are_taken_out_of_the_request(
        upstream: HttpUpstream) -> None:
    gw = await start_gateway(entities(upstream, {"header_names": [],
                                                 "query_param_names": ["jwt"],
                                                 "cookie_names": ["session"]}))
    token = sign(claims(), "HS256")
    try:
        response = await http(gw.port, "GET", f"/api/q?a=1&jwt={token}&b=2")
        assert response.status == 200
        assert upstream.requests[-1].target == "/q?a=1&b=2"
        response = await http(gw.port, "GET", "/api/c",
                              headers=[(b"cookie", f"theme=dark; session={token}; x=y".encode())])
        assert response.status == 200
        assert upstream.requests[-1].header_all("cookie") == ["theme=dark; x=y"]
        # a header is not looked at when header_names is empty
        response = await http(gw.port, "GET", "/api", headers=bearer(token))
        assert response.status == 401
    finally:
        await gw.close()


async def test_hide_credentials_off_passes_the_token_on(upstream: HttpUpstream) -> None:
    gw = await start_gateway(entities(upstream, {"hide_credentials": False}))
    token = sign(claims(), "HS256")
    try:
        assert (await http(gw.port, "GET", "/api", headers=bearer(token))).status == 200
        assert upstream.requests[-1].header("authorization") == f"Bearer {token}"
    finally:
        await gw.close()


async def test_anonymous_covers_a_missing_token_not_a_bad_one(upstream: HttpUpstream) -> None:
    gw = await start_gateway(entities(upstream, {"anonymous": "guest"}))
    try:
        assert (await http(gw.port, "GET", "/api")).status == 200
        assert upstream.requests[-1].header("x-consumer-name") == "guest"
        assert upstream.requests[-1].header("x-anonymous-consumer") == "true"
        bad = await http(gw.port, "GET", "/api",
                         headers=bearer(sign(claims(exp=time.time() - 100), "HS256")))
        assert bad.status == 401
    finally:
        await gw.close()


async def test_an_unusable_credential_key_is_a_401_not_a_500(upstream: HttpUpstream) -> None:
    broken = {"name": "broken", "credentials": [
        {"type": "jwt", "key": "broken-issuer", "algorithm": "RS256",
         "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}
    gw = await start_gateway(entities(upstream, consumers=[broken]))
    try:
        response = await http(gw.port, "GET", "/api",
                              headers=bearer(sign(claims("broken-issuer"), "RS256")))
        assert response.status == 401
        assert "no usable key" in refusal(response)[1]
    finally:
        await gw.close()


# ---------------------------------------------------------------- JWKS


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    server = await JwksServer(signing_key("RS256", 0)).start()
    yield server
    await server.close()


async def jwks_gateway(up: HttpUpstream, server: JwksServer, config: dict[str, Any],
                       refetch_interval: float = 30.0) -> RunningGateway:
    resources = default_resources()
    resources.caches[f"jwks:{server.url}"] = JwksCache(server.url,
                                                       refetch_interval=refetch_interval)
    return await start_gateway(entities(up, {"jwks_uri": server.url, **config}),
                               resources=resources)


async def test_jwks_tokens_map_their_subject_to_a_consumer(
        upstream: HttpUpstream, jwks: JwksServer) -> None:
    gw = await jwks_gateway(upstream, jwks, {"consumer_claim": "sub",
                                             "consumer_by": "custom_id",
                                             "issuer": "https://idp.example"})
    key = signing_key("RS256", 0)
    try:
        token = sign(claims("https://idp.example", sub="portal"), "RS256", key, kid="rsa-0")
        for _ in range(3):
            response = await http(gw.port, "GET", "/api", headers=bearer(token))
            assert response.status == 200
        assert upstream.requests[-1].header("x-consumer-name") == "teacher-portal"
        assert upstream.requests[-1].header("x-credential-identifier") == "rsa-0"
        assert jwks.fetches == 1  # fetched once, then kept
        unknown = sign(claims("https://idp.example", sub="stranger"), "RS256", key, kid="rsa-0")
        response = await http(gw.port, "GET", "/api", headers=bearer(unknown))
        assert response.status == 401
        assert "names no consumer" in refusal(response)[1]
    finally:
        await gw.close()


async def test_jwks_rotation_new_kid_refetches_removed_kid_fails(
        upstream: HttpUpstream, jwks: JwksServer) -> None:
    gw = await jwks_gateway(upstream, jwks, {}, refetch_interval=0)
    old, new = signing_key("RS256", 0), signing_key("RS256", 1)
    old_token = sign(claims("idp"), "RS256", old, kid="rsa-0")
    new_token = sign(claims("idp"), "RS256", new, kid="rsa-1")
    try:
        assert (await http(gw.port, "GET", "/api", headers=bearer(old_token))).status == 200
        assert jwks.fetches == 1
        jwks.set_keys(new)  # the issuer rotates
        assert (await http(gw.port, "GET", "/api", headers=bearer(new_token))).status == 200
        assert jwks.fetches == 2  # the unknown kid made it fetch again
        response = await http(gw.port, "GET", "/api", headers=bearer(old_token))
        assert response.status == 401  # although it was verified (and cached) before
        assert "no key 'rsa-0'" in refusal(response)[1]
    finally:
        await gw.close()


async def test_random_kids_do_not_hammer_the_jwks_endpoint(
        upstream: HttpUpstream, jwks: JwksServer) -> None:
    gw = await jwks_gateway(upstream, jwks, {})
    key = signing_key("RS256", 0)
    try:
        for n in range(5):
            token = sign(claims("idp"), "RS256", key, kid=f"made-up-{n}")
            assert (await http(gw.port, "GET", "/api", headers=bearer(token))).status == 401
        assert jwks.fetches == 1
    finally:
        await gw.close()


async def test_jwks_down_without_a_cached_set_is_a_401_with_a_reason(
        upstream: HttpUpstream, jwks: JwksServer) -> None:
    jwks.status = 503
    gw = await jwks_gateway(upstream, jwks, {})
    try:
        token = sign(claims("idp"), "RS256", signing_key("RS256", 0), kid="rsa-0")
        response = await http(gw.port, "GET", "/api", headers=bearer(token))
        assert response.status == 401
        assert "key set could not be fetched" in refusal(response)[1]
    finally:
        await gw.close()


async def test_an_hs_token_cannot_use_a_jwks_key(upstream: HttpUpstream,
                                                 jwks: JwksServer) -> None:
    gw = await jwks_gateway(upstream, jwks, {})
    rsa = signing_key("RS256", 0)
    try:
        forged = forge_hs(claims("idp"), public_pem(rsa).encode(), kid="rsa-0")
        response = await http(gw.port, "GET", "/api", headers=bearer(forged))
        assert response.status == 401
    finally:
        await gw.close()


# ---------------------------------------------------------------- the verified-token cache


def plugin(config: dict[str, Any] | None = None) -> JwtAuthPlugin:
    resources = default_resources()
    index = ConsumerIndex.build(Entities.model_validate({"consumers": [APP]}).consumers,
                                resources.keyring)
    made = build_plugin("jwt", config or {}, PluginEnv(resources, "global", index))
    assert isinstance(made, JwtAuthPlugin)
    return made


def request(token: str) -> RequestContext:
    return RequestContext("GET", "/api", "", bearer(token), "127.0.0.1", "http", "gw", "rid")


async def test_a_cached_token_skips_the_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []

    def counting(token: Any, key: Any) -> None:
        checks.append(token.alg)
        verify_signature(token, key)

    monkeypatch.setattr("campusgate.plugins.jwt_auth.verify_signature", counting)
    p = plugin()
    token = sign(claims("rsa-issuer"), "RS256")
    first, second = p.authenticate_now(request(token)), p.authenticate_now(request(token))
    assert isinstance(first, Identity) and isinstance(second, Identity)
    assert second.consumer is not None and second.consumer.name == "district-app"
    assert checks == ["RS256"]
    assert len(p.verified) == 1


async def test_a_cached_token_still_expires() -> None:
    p = plugin({"leeway": 0})
    now = time.time()
    token = sign(claims("rsa-issuer", exp=now + 60), "RS256")
    assert isinstance(p.authenticate_now(request(token)), Identity)
    p.clock = lambda: now + 61
    answer = p.authenticate_now(request(token))
    assert isinstance(answer, LocalResponse) and answer.status == 401
    assert b"expired" in answer.body


async def test_a_forged_payload_with_a_cached_signature_is_refused() -> None:
    """The cache key is the whole token, so a reused signature is no shortcut."""
    p = plugin()
    token = sign(claims("rsa-issuer", sub="app"), "RS256")
    assert isinstance(p.authenticate_now(request(token)), Identity)
    head, _, signature = token.split(".")
    other = sign(claims("rsa-issuer", sub="admin"), "RS256").split(".")[1]
    answer = p.authenticate_now(request(f"{head}.{other}.{signature}"))
    assert isinstance(answer, LocalResponse) and answer.status == 401


async def test_the_key_set_fetch_is_the_only_wait(jwks: JwksServer) -> None:
    p = plugin({"jwks_uri": jwks.url})
    token = sign(claims("idp"), "RS256", signing_key("RS256", 0), kid="rsa-0")
    ctx = request(token)
    assert p.authenticate_now(ctx) is WAIT
    assert ctx.upstream_headers_remove == set()  # nothing changed before WAIT
    assert isinstance(await p.authenticate(ctx), Identity)
    assert isinstance(p.authenticate_now(request(token)), Identity)
    assert jwks.fetches == 1
