"""The benchmark harness's pure parts: wrk parsing, generated configs, the results table.

No load is generated here; ``make bench`` does that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from campusgate.config.loader import load_config_text
from campusgate.identity.roster.csv_bundle import read_bundle
from cgbench import auth, configs, idp, procs, report, roster
from cgbench.loadgen import percentile, summarize
from cgbench.wrk import WrkError, WrkResult, median_result, parse_duration, parse_wrk

WRK_OK = """\
Running 10s test @ http://127.0.0.1:18999/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   101.70us  146.01us   4.50ms   98.59%
    Req/Sec    79.73k     6.20k   96.92k    80.95%
  Latency Distribution
     50%   92.00us
     75%  101.00us
     90%  108.00us
     99%    1.25ms
  166408 requests in 2.10s, 24.12MB read
Requests/sec:  79243.41
Transfer/sec:     11.49MB
"""

WRK_ERRORS = """\
Running 1s test @ http://127.0.0.1:18999/x
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    88.28us   18.44us    1.02s    81.73%
    Req/Sec    82.04k     0.96k   83.36k    63.64%
  Latency Distribution
     50%   90.00us
     75%   99.00us
     90%  105.00us
     99%  129.00us
  89749 requests in 1.10s, 13.35MB read
  Socket errors: connect 0, read 3, write 1, timeout 7
  Non-2xx or 3xx responses: 89749
Requests/sec:  81582.36
Transfer/sec:     12.14MB
"""


def test_parse_wrk_reads_throughput_and_latency_distribution() -> None:
    result = parse_wrk(WRK_OK)
    assert result.rps == pytest.approx(79243.41)
    assert result.requests == 166408
    assert result.duration_s == pytest.approx(2.10)
    assert (result.p50_ms, result.p75_ms, result.p90_ms) == (0.092, 0.101, 0.108)
    assert result.p99_ms == pytest.approx(1.25)
    assert result.max_ms == pytest.approx(4.5)
    assert result.errors == 0


def test_parse_wrk_counts_non_2xx_and_socket_errors() -> None:
    result = parse_wrk(WRK_ERRORS)
    assert result.non_2xx == 89749
    assert result.socket_errors == 11
    assert result.max_ms == pytest.approx(1020.0)


def test_parse_wrk_needs_the_latency_distribution() -> None:
    no_latency = "\n".join(line for line in WRK_OK.splitlines() if "%" not in line[:8])
    with pytest.raises(WrkError, match="--latency"):
        parse_wrk(no_latency)
    with pytest.raises(WrkError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(("text", "seconds"), [
    ("101.70us", 101.70e-6), ("2.5ms", 0.0025), ("1.02s", 1.02), ("2m", 120.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def _run(rps: float) -> WrkResult:
    return WrkResult(requests=1, duration_s=1.0, rps=rps, p50_ms=1.0, p75_ms=1.0,
                     p90_ms=1.0, p99_ms=rps / 1000, max_ms=1.0)


def test_median_result_is_the_middle_run_by_throughput() -> None:
    assert median_result([_run(300), _run(100), _run(200)]).rps == 200
    assert median_result([_run(400), _run(100)]).rps == 100
    with pytest.raises(ValueError):
        median_result([])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert summarize([0.001, 0.002, 0.003])["max_ms"] == 3.0


def test_generated_campusgate_configs_load_and_match_the_requests(tmp_path: Path) -> None:
    text = configs.campusgate_yaml(proxy_port=18080, admin_port=18081, upstream_port=18082,
                                   storage=tmp_path / "cg.db", routes=100, services=10)
    config = load_config_text(text)
    routes = [r for s in config.services for r in s.routes]
    assert len(routes) == 100 and len(config.services) == 10
    assert all(s.url == "http://127.0.0.1:18082" for s in config.services)
    assert config.listeners.proxy.address == "127.0.0.1:18080"
    # one request per route, each aimed at a distinct route, some by Host
    targets = configs.route_targets(100)
    assert len({(t.path, t.host) for t in targets}) == 100
    assert any(t.host for t in targets) and any("/users/" in t.path for t in targets)
    plain = load_config_text(configs.campusgate_yaml(
        proxy_port=1, admin_port=2, upstream_port=3, storage=tmp_path / "p.db"))
    assert [r.paths for s in plain.services for r in s.routes] == [["/"]]


def test_routes_lua_lists_every_target() -> None:
    targets = [configs.RouteTarget("/svc1/items/1"), configs.RouteTarget("/api", "h.test")]
    script = configs.routes_lua(targets)
    assert '{"/svc1/items/1", nil}' in script
    assert '{"/api", "h.test"}' in script
    assert "function request()" in script


def test_nginx_configs_listen_only_on_localhost(tmp_path: Path) -> None:
    up = configs.nginx_upstream_conf(tmp_path, 18001, 1, cpus="10")
    proxy = configs.nginx_proxy_conf(tmp_path, 18002, 18001)
    for conf in (up, proxy):
        assert re.findall(r"listen (\S+)", conf) in (["127.0.0.1:18001"], ["127.0.0.1:18002"])
    assert "keepalive 64;" in proxy and 'proxy_set_header Connection "";' in proxy
    assert "worker_cpu_affinity 10;" in up
    assert configs.JSON_BODY in up and "$" not in configs.JSON_BODY
    assert 800 <= len(configs.JSON_BODY) <= 1200


def _cell(rps: float, p99: float = 1.0) -> dict[str, Any]:
    run = {"rps": rps, "p50_ms": 0.5, "p99_ms": p99, "non_2xx": 0, "socket_errors": 0}
    return {"runs": [run], "median": run}


def _latency(p99: float) -> dict[str, Any]:
    run = {"rate_target": 1000.0, "rate_achieved": 1000.0, "non_2xx": 0, "socket_errors": 0,
           "service": {"p50_ms": 0.1, "p99_ms": p99, "p99_9_ms": p99, "max_ms": p99}}
    return {"runs": [run], "median": run}


SCENARIOS: dict[str, Any] = {
    "plain": {"hello": {"direct": _cell(90000), "nginx": _cell(50000),
                        "campusgate": _cell(20000)}},
    "routes10k": {"routes_10": _cell(20000), "routes_10000": _cell(19000)},
    "latency": {"direct": _latency(0.2), "campusgate": _latency(0.9)},
    "memory": {"rss_kb_1_route": 40 * 1024, "rss_kb_10000_routes": 150 * 1024},
}


def test_goals_compute_ratios_and_verdicts() -> None:
    goals = {g.scenario: g for g in report.evaluate_goals(SCENARIOS)}
    assert goals["plain (hello)"].value == pytest.approx(0.4)
    assert not goals["plain (hello)"].met
    assert goals["routes10k"].value == pytest.approx(0.95) and goals["routes10k"].met
    assert goals["latency"].value == pytest.approx(0.7) and goals["latency"].met
    assert goals["memory"].value == pytest.approx(150.0) and not goals["memory"].met


def test_goals_skip_scenarios_not_run() -> None:
    assert [g.scenario for g in report.evaluate_goals({"routes10k": SCENARIOS["routes10k"]})] \
        == ["routes10k"]


def test_results_table_and_readme_markers() -> None:
    doc = {"timestamp": "20260101T000000Z", "machine": {"nproc": 2}, "scenarios": SCENARIOS,
           "settings": {"runs": 3, "wrk_args": "-t1 -c50"}}
    table = report.render_results(doc)
    assert "| plain (hello) | throughput campusgate / nginx | 0.400x | >= 0.5x | **no** |" in table
    assert "| campusgate | 20,000 |" in table
    assert "| 10,000 | 150.0 |" in table
    readme = f"# Bench\n\n{report.START_MARKER}\nold table\n{report.END_MARKER}\n\nMore.\n"
    updated = report.replace_results(readme, table)
    assert "old table" not in updated and table in updated
    assert updated.startswith("# Bench\n") and updated.endswith("\nMore.\n")
    assert report.replace_results(updated, "new").count(report.START_MARKER) == 1
    appended = report.replace_results("# Bench\n", "t")
    assert appended.endswith(f"{report.START_MARKER}\nt\n{report.END_MARKER}\n")


# ---------------------------------------------------------------- authentication scenarios


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    return auth.new_rs256_key()


def _auth_doc(name: str, tmp_path: Path, public_pem: str | None = None) -> dict[str, Any]:
    text = auth.auth_yaml(name, proxy_port=18080, admin_port=18081, upstream_port=18082,
                          storage=tmp_path / "cg.db", redis_port=16399,
                          public_key_pem=public_pem)
    doc: dict[str, Any] = json.loads(text)
    return doc


def test_auth_memory_and_redis_configs_differ_only_in_the_backend(tmp_path: Path) -> None:
    memory, redis = _auth_doc("auth-memory", tmp_path), _auth_doc("auth-redis", tmp_path)
    assert memory["state"] == "memory"
    assert redis["state"] == f"redis://127.0.0.1:16399/{auth.REDIS_DB}"
    assert memory["plugins"] == [{"name": "request-id"}]
    (route,) = memory["services"][0]["routes"]
    assert route["paths"] == ["/"]
    plugins = {p["name"]: p["config"] for p in route["plugins"]}
    assert set(plugins) == {"key-auth", "rate-limit"}
    assert plugins["rate-limit"] == {"limits": [{"window": "1m", "limit": auth.UNLIMITED}],
                                     "by": "consumer", "backend": "memory"}
    redis_plugins = {p["name"]: p["config"] for p in redis["services"][0]["routes"][0]["plugins"]}
    assert redis_plugins["rate-limit"]["backend"] == "redis"
    assert memory["consumers"] == redis["consumers"] == [
        {"name": "bench-app", "credentials": [{"type": "key-auth", "key": auth.API_KEY}]}]
    # wrk sends the key in the header key-auth looks at
    (header,) = auth.scenario("auth-memory").wrk_headers
    name, _, value = header.partition(": ")
    assert name in plugins["key-auth"]["key_names"] and value == auth.API_KEY


def test_jwt_config_has_the_public_key_on_a_consumer(tmp_path: Path,
                                                     rsa_pems: tuple[str, str]) -> None:
    doc = _auth_doc("jwt-rs256", tmp_path, rsa_pems[1])
    assert doc["state"] == "memory"
    (plugin,) = doc["services"][0]["routes"][0]["plugins"]
    assert plugin == {"name": "jwt", "config": {"key_claim": "iss"}}
    (cred,) = doc["consumers"][0]["credentials"]
    assert cred == {"type": "jwt", "key": auth.JWT_ISSUER, "algorithm": "RS256",
                    "public_key": rsa_pems[1]}
    assert "BEGIN PUBLIC KEY" in cred["public_key"]
    assert auth.scenario("jwt-rs256").wrk_headers == ()


def test_auth_configs_need_their_inputs(tmp_path: Path) -> None:
    common: dict[str, Any] = {"proxy_port": 1, "admin_port": 2, "upstream_port": 3,
                              "storage": tmp_path / "x.db"}
    with pytest.raises(ValueError, match="Redis port"):
        auth.auth_yaml("auth-redis", **common)
    with pytest.raises(ValueError, match="public key"):
        auth.auth_yaml("jwt-rs256", **common)
    with pytest.raises(KeyError):
        auth.auth_yaml("auth-nothing", **common)


@pytest.mark.parametrize("name", list(auth.AUTH_SCENARIOS))
def test_auth_configs_load_as_campusgate_configs(name: str, tmp_path: Path,
                                                 rsa_pems: tuple[str, str]) -> None:
    text = auth.auth_yaml(name, proxy_port=18080, admin_port=18081, upstream_port=18082,
                          storage=tmp_path / "cg.db", redis_port=16399,
                          public_key_pem=rsa_pems[1])
    config = load_config_text(text)
    (route,) = [r for s in config.services for r in s.routes]
    names = [p.name for p in route.plugins]
    assert names == (["jwt"] if name == "jwt-rs256" else ["key-auth", "rate-limit"])
    assert [p.name for p in config.plugins] == ["request-id"]
    assert [c.name for c in config.consumers] == ["bench-app"]
    if name != "jwt-rs256":  # the limit is checked on every request but never reached
        limit = next(p for p in route.plugins if p.name == "rate-limit").config
        assert limit["limits"][0]["limit"] == auth.UNLIMITED


def test_rs256_tokens_are_distinct_and_verify_with_the_public_key(
        rsa_pems: tuple[str, str]) -> None:
    from joserfc import jwt
    from joserfc.errors import BadSignatureError
    from joserfc.jwk import RSAKey

    tokens = auth.rs256_tokens(rsa_pems[0], issued_at=1_700_000_000, count=5)
    assert len(set(tokens)) == 5
    public = RSAKey.import_key(rsa_pems[1])
    for i, token in enumerate(tokens):
        decoded = jwt.decode(token, public, algorithms=["RS256"])
        assert decoded.header["alg"] == "RS256"
        assert decoded.claims["iss"] == auth.JWT_ISSUER
        assert decoded.claims["sub"] == f"student{i:03d}"
        assert decoded.claims["exp"] - decoded.claims["iat"] >= 5 * 365 * 24 * 3600
    other = RSAKey.generate_key(2048)
    with pytest.raises(BadSignatureError):
        jwt.decode(tokens[0], other, algorithms=["RS256"])


def test_jwt_lua_rotates_every_token_as_a_bearer_header() -> None:
    script = auth.jwt_lua(["aaa.bbb.ccc", "ddd.e-e.f_f"], "/json")
    assert '"Bearer aaa.bbb.ccc"' in script and '"Bearer ddd.e-e.f_f"' in script
    assert 'wrk.format("GET", "/json", {["Authorization"] = v})' in script
    assert "function request()" in script
    with pytest.raises(ValueError):
        auth.jwt_lua(['x"; os.exit() --'])
    with pytest.raises(ValueError):
        auth.jwt_lua([])


def test_rotating_header_lua_sends_each_cookie_and_refuses_quotes() -> None:
    script = auth.rotating_header_lua("Cookie", ["campusgate_sso=abc", "campusgate_sso=d-f"])
    assert '"campusgate_sso=abc"' in script and '"campusgate_sso=d-f"' in script
    assert 'wrk.format("GET", "/", {["Cookie"] = v})' in script
    with pytest.raises(ValueError):
        auth.rotating_header_lua("Cookie", ['a"b'])


def test_resp_command_is_an_array_of_bulk_strings() -> None:
    assert auth.resp_command("SELECT", "14") == b"*2\r\n$6\r\nSELECT\r\n$2\r\n14\r\n"
    assert auth.resp_command("PING") == b"*1\r\n$4\r\nPING\r\n"


def test_auth_goals_compare_with_campusgate_plain_of_the_same_body() -> None:
    scenarios: dict[str, Any] = {
        "plain": {"hello": {"campusgate": _cell(30000)}, "json": {"campusgate": _cell(20000)}},
        "auth-memory": {"bodies": {"hello": _cell(25000), "json": _cell(15000)}},
        "auth-redis": {"bodies": {"hello": _cell(14000)}, "redis": {"keys_after_load": 1}},
        "jwt-rs256": {"bodies": {"hello": _cell(27000)}},
    }
    goals = {g.scenario: g for g in report.evaluate_goals(scenarios)}
    assert goals["auth-memory (hello)"].value == pytest.approx(25 / 30)
    assert goals["auth-memory (hello)"].met
    assert goals["auth-memory (json)"].value == pytest.approx(0.75)
    assert not goals["auth-memory (json)"].met
    assert goals["auth-redis (hello)"].value == pytest.approx(14 / 30)
    assert not goals["auth-redis (hello)"].met and goals["auth-redis (hello)"].target == ">= 0.5x"
    assert goals["jwt-rs256 (hello)"].met
    # campusgate plain alone (no nginx) gives no plain goal; no reference, no auth goal
    assert "plain (hello)" not in goals
    assert report.evaluate_goals({"jwt-rs256": scenarios["jwt-rs256"]}) == []
    table = report.render_results({"scenarios": scenarios})
    assert "| auth-memory (json) | throughput / campusgate plain | 0.750x | >= 0.8x | **no** |" \
        in table
    assert "| plain | none | hello | 30,000 | 1.000x |" in table
    assert "| auth-redis | key-auth + rate-limit (redis) + request-id | hello | 14,000 | 0.467x |" \
        in table


def test_auth_rows_compare_worker_cpu_per_request_when_measured() -> None:
    plain, jwt = _cell(30000), _cell(15000)
    plain["cpu_us_per_request"], jwt["cpu_us_per_request"] = 30.0, 40.0
    scenarios = {"plain": {"hello": {"campusgate": plain}},
                 "jwt-rs256": {"bodies": {"hello": jwt}}}
    (goal,) = report.evaluate_goals(scenarios)
    assert goal.value == pytest.approx(0.5) and not goal.met
    assert goal.detail == "15,000 vs 30,000 req/s; by worker CPU per request 0.750x"
    table = report.render_results({"scenarios": scenarios})
    assert "| 0.500x | 0.500 | 1.000 | 40.0 | 0.750x | 0 | 15,000 |" in table
    assert "| 30.0 | 1.000x |" in table


def test_cpu_seconds_of_a_process_grows_as_it_works() -> None:
    import os
    import time

    before = procs.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert procs.cpu_seconds(os.getpid()) >= before + 0.03


# ---------------------------------------------------------------- identity provider scenarios


def _idp_doc(tmp_path: Path, route: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(idp.idp_yaml(
        proxy_port=18080, admin_port=18081, upstream_port=18082, storage=tmp_path / "cg.db",
        route=route))
    return doc


def test_idp_config_loads_with_its_issuer_on_the_proxy_listener(tmp_path: Path) -> None:
    config = load_config_text(idp.idp_yaml(proxy_port=18080, admin_port=18081,
                                           upstream_port=18082, storage=tmp_path / "cg.db"))
    identity = config.identity
    assert identity is not None and identity.issuer == "http://127.0.0.1:18080"
    assert config.listeners.proxy.address == "127.0.0.1:18080"
    clients = {c.client_id: c for c in identity.clients}
    jwt_client, opaque = clients[idp.TOKEN_CLIENTS["jwt"]], clients[idp.TOKEN_CLIENTS["opaque"]]
    for client, fmt in ((jwt_client, "jwt"), (opaque, "opaque")):
        assert client.grant_types == ["client_credentials"]
        assert client.token_endpoint_auth_method == "client_secret_basic"
        assert client.access_token_format == fmt
        assert client.token_audience() == [idp.API_AUDIENCE]
        assert client.scopes == [idp.API_SCOPE]
    web = clients[idp.FLOW_CLIENT]
    assert web.redirect_uris == [idp.REDIRECT_URI] and not web.require_consent
    assert not web.public and "authorization_code" in web.grant_types
    assert set(idp.FLOW_SCOPE.split()) <= set(web.scopes)
    assert [s.name for s in identity.scopes] == [idp.API_SCOPE]
    # the plain catch-all route stays, without plugins unless asked for
    (route,) = [r for s in config.services for r in s.routes]
    assert route.paths == ["/"] and route.plugins == []


def test_idp_jwt_route_trusts_campusgates_own_keys(tmp_path: Path) -> None:
    doc = _idp_doc(tmp_path, route="jwt")
    (plugin,) = doc["services"][0]["routes"][0]["plugins"]
    assert plugin["name"] == "jwt"
    cfg = plugin["config"]
    assert cfg["jwks_uri"] == "http://127.0.0.1:18080" + idp.JWKS_PATH
    assert cfg["issuer"] == doc["identity"]["issuer"]
    assert cfg["audiences"] == [idp.API_AUDIENCE] and cfg["consumer_optional"] is True
    config = load_config_text(json.dumps(doc))
    (route,) = [r for s in config.services for r in s.routes]
    assert [p.name for p in route.plugins] == ["jwt"]


def test_idp_sso_route_signs_in_at_campusgates_own_provider(tmp_path: Path) -> None:
    doc = _idp_doc(tmp_path, route="sso")
    (plugin,) = doc["services"][0]["routes"][0]["plugins"]
    assert plugin["name"] == "sso" and plugin["config"]["base_path"] == "/"
    assert plugin["config"]["issuer"] == doc["identity"]["issuer"]
    config = load_config_text(json.dumps(doc))
    assert config.identity is not None
    client = config.identity.client(idp.SSO_CLIENT)
    assert client is not None and not client.require_consent and not client.public
    assert client.redirect_uris == ["http://127.0.0.1:18080/_sso/callback"]
    (route,) = [r for s in config.services for r in s.routes]
    assert [p.name for p in route.plugins] == ["sso"]


def test_discovery_gives_endpoint_paths_and_must_match_the_issuer() -> None:
    issuer = "http://127.0.0.1:18080"
    doc = {"issuer": issuer, "authorization_endpoint": issuer + "/oauth2/authorize",
           "token_endpoint": issuer + "/oauth2/token", "jwks_uri": issuer + "/oauth2/jwks"}
    assert idp.endpoints_from_discovery(doc, issuer) == {
        "authorization_endpoint": "/oauth2/authorize", "token_endpoint": "/oauth2/token",
        "jwks_uri": "/oauth2/jwks"}
    with pytest.raises(idp.IdpError, match="issuer"):
        idp.endpoints_from_discovery({**doc, "issuer": "http://other"}, issuer)
    with pytest.raises(idp.IdpError, match="token_endpoint"):
        idp.endpoints_from_discovery({**doc, "token_endpoint": "http://evil/token"}, issuer)
    with pytest.raises(idp.IdpError, match="jwks_uri"):
        idp.endpoints_from_discovery({**doc, "jwks_uri": issuer + "/keys"}, issuer)


def test_basic_auth_form_encodes_client_id_and_secret() -> None:
    import base64

    value = idp.basic_auth("app:1", "s%cr t")
    assert value.startswith("Basic ")
    assert base64.b64decode(value[6:]) == b"app%3A1:s%25cr%20t"  # RFC 6749 2.3.1


def test_token_lua_posts_a_client_credentials_request() -> None:
    import base64

    client = idp.TOKEN_CLIENTS["jwt"]
    script = idp.token_lua(client, idp.SECRETS[client])
    assert 'wrk.method = "POST"' in script
    assert f'wrk.body = "grant_type=client_credentials&scope={idp.API_SCOPE}"' in script
    assert 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"' in script
    (basic,) = re.findall(r'wrk.headers\["Authorization"\] = "Basic ([^"]+)"', script)
    assert base64.b64decode(basic).decode() == f"{client}:{idp.SECRETS[client]}"
    hostile = idp.token_lua('x"', 's\\', scope='a"; os.exit() --')
    assert 'wrk.body = "grant_type=client_credentials&scope=a%22%3B+os.exit%28%29+--"' in hostile
    assert hostile.count('"') == script.count('"') and "\\" not in hostile


def _jwt_with(header: dict[str, str]) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part({'sub': 'x'})}.c2ln"


def test_token_responses_are_checked_for_a_bearer_token_of_the_clients_format() -> None:
    at_jwt = _jwt_with({"alg": "RS256", "typ": "at+jwt"})
    ok = json.dumps({"access_token": at_jwt, "token_type": "Bearer", "expires_in": 3600})
    assert idp.token_from_response(200, ok.encode(), "jwt") == at_jwt
    opaque = json.dumps({"access_token": "cgat_abc", "token_type": "bearer"}).encode()
    assert idp.token_from_response(200, opaque, "opaque") == "cgat_abc"
    with pytest.raises(idp.IdpError, match="opaque"):
        idp.token_from_response(200, ok.encode(), "opaque")
    with pytest.raises(idp.IdpError, match="RFC 9068"):
        idp.token_from_response(200, opaque, "jwt")
    plain_jwt = json.dumps({"access_token": _jwt_with({"alg": "RS256", "typ": "JWT"}),
                            "token_type": "Bearer"}).encode()
    with pytest.raises(idp.IdpError, match="at\\+jwt"):
        idp.token_from_response(200, plain_jwt, "jwt")
    with pytest.raises(idp.IdpError, match="401"):
        idp.token_from_response(401, b'{"error": "invalid_client"}', "jwt")
    with pytest.raises(idp.IdpError, match="Bearer"):
        idp.token_from_response(200, b'{"access_token": "cgat_x", "token_type": "mac"}',
                                "opaque")
    with pytest.raises(idp.IdpError, match="no JSON"):
        idp.token_from_response(503, b"<html>", "jwt")


def test_admin_token_is_read_from_the_first_start_banner() -> None:
    token = "cgadm_" + "A" * 20 + "-_" + "b" * 21
    log = f"\n=====\nFirst start: an admin token was created.\n\n    {token}\n\nexport X={token}\n"
    assert idp.admin_token_from_log(log) == token
    assert idp.admin_token_from_log("started\n") is None


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    assert idp.s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") \
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    verifier, challenge = idp.pkce_pair()
    assert 43 <= len(verifier) <= 128 and challenge == idp.s256(verifier)
    assert idp.pkce_pair()[0] != verifier
    params = idp.authorization_params(state="st", nonce="n", code_challenge=challenge)
    assert params["code_challenge_method"] == "S256" and params["response_type"] == "code"
    assert params["client_id"] == idp.FLOW_CLIENT and "openid" in params["scope"].split()


LOGIN_PAGE = """<!doctype html><html><body>
<form method="get" action="/search"><input type="text" name="q"></form>
<form method="post" action="http://127.0.0.1:18080/oauth2/login?tx=abc&amp;x=1">
  <input type="hidden" name="csrf_token" value="t0k&amp;en">
  <input type="text" id="username" name="username" value="">
  <input type="password" id="password" name="password" required>
  <button type="submit">Sign in</button>
</form></body></html>"""


def test_login_form_finds_the_post_form_and_its_hidden_fields() -> None:
    form = idp.login_form(LOGIN_PAGE)
    assert form.action == "http://127.0.0.1:18080/oauth2/login?tx=abc&x=1"
    assert form.hidden == {"csrf_token": "t0k&en"}
    assert form.fields == ("csrf_token", "username", "password")
    with pytest.raises(idp.IdpError, match="sign-in form"):
        idp.login_form('<form method="post"><input name="q"></form>')


def test_authorization_response_is_checked_like_a_client_would() -> None:
    issuer = "http://127.0.0.1:18080"
    good = f"{idp.REDIRECT_URI}?code=c0de&state=st&iss=http%3A%2F%2F127.0.0.1%3A18080"
    assert idp.code_from_redirect(good, state="st", issuer=issuer) == "c0de"
    with pytest.raises(idp.IdpError, match="state"):
        idp.code_from_redirect(good, state="other", issuer=issuer)
    with pytest.raises(idp.IdpError, match="RFC 9207"):
        idp.code_from_redirect(good.replace("18080", "9"), state="st", issuer=issuer)
    with pytest.raises(idp.IdpError, match="not to the client"):
        idp.code_from_redirect(f"{issuer}/oauth2/login?tx=1", state="st", issuer=issuer)
    with pytest.raises(idp.IdpError, match="login_required"):
        idp.code_from_redirect(f"{idp.REDIRECT_URI}?error=login_required&state=st",
                               state="st", issuer=issuer)


def test_flow_driver_counts_the_share_of_each_operation_in_the_window() -> None:
    from cgbench.flows import window_ops

    spans = [(0.0, 1.0),   # before the window
             (1.5, 2.5),   # half inside
             (2.0, 3.0),   # wholly inside
             (2.5, 4.5),   # a quarter inside
             (5.0, 6.0)]   # after
    assert window_ops(spans, 2.0, 3.0) == pytest.approx(0.5 + 1.0 + 0.25)
    assert window_ops([(2.5, 2.5)], 2.0, 3.0) == 1.0
    assert window_ops([], 2.0, 3.0) == 0.0


def test_flow_driver_result_counts_the_measured_window_only() -> None:
    from cgbench.flows import FlowSettings, result_of

    s = FlowSettings(port=18080, mode="flows", browsers=4, duration=2.0, warmup=1.0)
    spans = [(0.5, 0.9)] * 10 + [(1.0 + i * 0.04, 1.01 + i * 0.04) for i in range(50)]
    out = result_of(s, spans, 1.0, 1, ["IdpError: x"],
                    {"driver0": 1.0, "driver1": 2.0, "worker0": 10.0, "worker1": 11.0}, 50)
    assert out["rate"] == 25.0 and out["ops"] == 50 and out["completed"] == 50
    assert out["latency"]["p50_ms"] == pytest.approx(10.0)
    assert out["driver_busy"] == 0.5 and out["cpu_us_per_op"] == 20000.0
    assert out["errors"] == 1 and out["refresh_tokens"] == 50
    assert s.issuer == "http://127.0.0.1:18080"


def _flow_cell(rate: float, **extra: Any) -> dict[str, Any]:
    run = {"rate": rate, "browsers": 16, "errors": 0, "driver_busy": 0.4,
           "latency": {"p50_ms": 20.0, "p99_ms": 50.0}, **extra}
    return {"runs": [run], "median": run}


def test_idp_figures_and_the_idp_jwt_goal_in_the_report() -> None:
    scenarios: dict[str, Any] = {
        "plain": {"hello": {"campusgate": _cell(30000)}},
        "idp-jwt": {"plugins": idp.IDP_JWT_SUMMARY, "bodies": {"hello": _cell(21000)}},
        "idp-tokens": {"formats": {"jwt": _cell(900), "opaque": _cell(1500)}},
        "idp-flows": {"signin": _flow_cell(18.5, cpu_us_per_op=52000.0),
                      "flows": _flow_cell(310.25)},
    }
    (goal,) = report.evaluate_goals(scenarios)
    assert goal.scenario == "idp-jwt (hello)" and goal.target == ">= 0.8x"
    assert goal.value == pytest.approx(0.7) and not goal.met
    table = report.render_results({"scenarios": scenarios})
    assert f"| idp-jwt | {idp.IDP_JWT_SUMMARY} | hello | 21,000 | 0.700x |" in table
    assert "| idp-tokens | client_credentials tokens, JWT (RFC 9068, RS256) access token " \
           "| 900 |" in table
    assert "| idp-tokens | client_credentials tokens, opaque access token | 1,500 |" in table
    assert "| idp-flows | sign-ins (login form POST, argon2id) | 18.5 | 20.000 | 50.000 " \
           "| 52,000.0 |" in table
    assert "| idp-flows | authorization-code + PKCE flows on a session | 310.2 |" in table


# ---------------------------------------------------------------- roster-import


def test_the_generated_district_is_a_valid_oneroster_bundle_of_its_shape() -> None:
    shape = roster.district_shape(1200)
    assert (shape.people, shape.teachers, shape.students, shape.schools, shape.classes) == (
        1200, 57, 1143, 1, 48)
    bundle = read_bundle(roster.district_bundle(1200))  # campusgate's own checks pass
    counts = {kind: len(found) for kind, found in bundle.records.items()}
    assert counts == roster.roster_rows(roster.district_files(1200)) == {
        "orgs": 2, "academicSessions": 3, "courses": roster.COURSES, "classes": 48,
        "users": 1200, "enrollments": shape.enrollments}
    assert bundle.count() == shape.rows and not bundle.passwords
    users = {u["sourced_id"]: u for u in bundle.records["users"]}
    taught: dict[str, list[str]] = {}
    per_student: dict[str, int] = {}
    for e in bundle.records["enrollments"]:
        if e["role"] == "teacher":
            taught.setdefault(e["class_sourced_id"], []).append(e["user_sourced_id"])
            assert users[e["user_sourced_id"]]["role"] == "teacher"
        else:
            per_student[e["user_sourced_id"]] = per_student.get(e["user_sourced_id"], 0) + 1
    assert all(len(t) == 1 for t in taught.values()) and len(taught) == 48
    assert set(per_student.values()) == {roster.ENROLLMENTS_PER_STUDENT}
    assert len(per_student) == shape.students
    assert roster.district_bundle(1200) == roster.district_bundle(1200)  # deterministic


def test_the_default_district_is_big() -> None:
    shape = roster.district_shape(roster.DEFAULT_PEOPLE)
    assert shape.classes == 2000 and shape.schools == 50
    assert shape.enrollments == shape.students * 4 + 2000
    assert roster.district_shape(3).people == 25  # at least a teacher and a class


def test_roster_configs_store_in_sqlite_or_postgresql(tmp_path: Path) -> None:
    on_file = load_config_text(roster.roster_yaml(
        proxy_port=1, admin_port=2, upstream_port=3, storage=tmp_path / "r.db"))
    assert on_file.storage == f"sqlite:///{tmp_path / 'r.db'}"
    on_pg = load_config_text(roster.roster_yaml(
        proxy_port=1, admin_port=2, upstream_port=3,
        storage="postgresql://postgres@127.0.0.1:5432/cgbench_x"))
    assert on_pg.storage == "postgresql://postgres@127.0.0.1:5432/cgbench_x"
    assert on_pg.listeners.admin.address == "127.0.0.1:2"


def test_roster_figures_and_report_rows() -> None:
    shape = roster.district_shape(1000)
    first = roster.figures(2.0, shape)
    assert first == {"seconds": 2.0, "people_per_s": 500.0, "rows_per_s": shape.rows / 2}
    cell = {"first": first, "reimport": roster.figures(1.0, shape),
            "baseline": roster.figures(0.5, shape), "ratio_first": 0.25, "ratio_reimport": 0.5}
    run = {"people": 1000, "teachers": 47, "students": 953, "schools": 1, "classes": 40,
           "enrollments": shape.enrollments, "rows": shape.rows, "bundle_bytes": 30_000,
           "passwords": False,
           "backends": {"sqlite": cell, "postgresql": {"skipped": "no PostgreSQL"}}}
    table = report.render_results({"scenarios": {roster.ROSTER_IMPORT: run}})
    assert "**roster-import** (a OneRoster 1.1 district of 1,000 people" in table
    assert "| sqlite | campusgate, first import | 2.00 | 500 |" in table
    assert "| 0.250x |" in table and "| sqlite | bare inserts (baseline) | 0.50 | 2,000 |" \
        in table
    assert "| postgresql | skipped: no PostgreSQL |" in table


def test_run_accepts_the_roster_scenario_and_size() -> None:
    import run

    settings = run._parse_args(["roster-import", "--roster-people", "2000"])
    assert settings.scenarios == ("roster-import",) and settings.roster_people == 2000
    assert "roster-import" in run.SCENARIOS
