"""acl: allow and deny by consumer group, after authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, http, start_gateway
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.registry import build_plugin
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import LocalResponse, RequestContext


def ctx(*groups: str, consumer: bool = True) -> RequestContext:
    c = RequestContext("GET", "/x", "", [], "127.0.0.1", "http", "h", "rid")
    if consumer:
        c.consumer = ConsumerInfo("id-1", "app", None, groups, ())
    return c


def error(answer: object, status: int) -> dict[str, Any]:
    assert isinstance(answer, LocalResponse)
    assert answer.status == status
    body: dict[str, Any] = json.loads(answer.body)["error"]
    return body


@pytest.mark.parametrize("config, groups, passes", [
    ({"allow": ["staff"]}, ("staff",), True),
    ({"allow": ["staff", "admins"]}, ("students", "admins"), True),
    ({"allow": ["staff"]}, ("students",), False),
    ({"allow": ["staff"]}, (), False),
    ({"deny": ["students"]}, ("students",), False),
    ({"deny": ["students"]}, ("staff", "students"), False),
    ({"deny": ["students"]}, ("staff",), True),
    ({"deny": ["students"]}, (), True),
])
def test_allow_and_deny(config: dict[str, Any], groups: tuple[str, ...], passes: bool) -> None:
    answer = build_plugin("acl", config).access_now(ctx(*groups))
    if passes:
        assert answer is None
    else:
        body = error(answer, 403)
        assert (body["code"], body["message"]) == ("forbidden", "you cannot consume this service")
        assert body["request_id"] == "rid"


def test_no_consumer_is_a_401_without_a_challenge() -> None:
    answer = build_plugin("acl", {"allow": ["staff"]}).access_now(ctx(consumer=False))
    assert error(answer, 401)["message"] == "authentication required"
    assert isinstance(answer, LocalResponse) and not answer.headers


def test_hide_groups_header() -> None:
    c = ctx("staff")
    c.upstream_headers_add += [(b"X-Consumer-Name", b"app"), (b"X-Consumer-Groups", b"staff")]
    assert build_plugin("acl", {"allow": ["staff"], "hide_groups_header": True}).access_now(
        c) is None
    assert c.upstream_headers_add == [(b"X-Consumer-Name", b"app")]
    shown = ctx("staff")
    shown.upstream_headers_add.append((b"X-Consumer-Groups", b"staff"))
    build_plugin("acl", {"allow": ["staff"]}).access_now(shown)
    assert shown.upstream_headers_add == [(b"X-Consumer-Groups", b"staff")]


@pytest.mark.parametrize("config, fault", [
    ({}, "exactly one of allow or deny"),
    ({"allow": ["a"], "deny": ["b"]}, "exactly one of allow or deny"),
    ({"allow": ["not a name"]}, "allow"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="acl", config=config)


async def test_gateway_acl_after_key_auth_and_anonymous() -> None:
    up = await HttpUpstream().start()
    entities = {
        "services": [{
            "name": "grades", "url": f"http://{up.address}",
            "routes": [
                {"name": "write", "paths": ["/write"], "plugins": [
                    {"name": "key-auth", "config": {"anonymous": "guest"}},
                    {"name": "acl", "config": {"allow": ["staff"], "hide_groups_header": True}},
                ]},
                {"name": "guests-ok", "paths": ["/open"], "plugins": [
                    {"name": "key-auth", "config": {"anonymous": "guest"}},
                    {"name": "acl", "config": {"deny": ["students"]}},
                ]},
                {"name": "no-auth", "paths": ["/none"], "plugins": [
                    {"name": "acl", "config": {"allow": ["staff"]}}]},
            ]}],
        "consumers": [
            {"name": "teacher", "groups": ["staff"],
             "credentials": [{"type": "key-auth", "key": "teacher-key-0001"}]},
            {"name": "pupil", "groups": ["students"],
             "credentials": [{"type": "key-auth", "key": "pupil-key-00001"}]},
            {"name": "guest", "groups": ["visitors"]},
        ],
    }
    gw = await start_gateway(entities)
    try:
        teacher = [(b"apikey", b"teacher-key-0001")]
        pupil = [(b"apikey", b"pupil-key-00001")]
        spoof = [(b"x-consumer-groups", b"staff")]
        assert (await http(gw.port, "GET", "/write", teacher + spoof)).status == 200
        seen = up.requests[-1]
        assert seen.header("x-consumer-name") == "teacher"
        assert seen.header("x-consumer-groups") is None  # hidden, and the spoof removed
        assert (await http(gw.port, "GET", "/write", pupil)).status == 403
        assert (await http(gw.port, "GET", "/write", spoof)).status == 403  # guest
        assert (await http(gw.port, "GET", "/open")).status == 200  # guest, not a student
        assert up.requests[-1].header("x-consumer-groups") == "visitors"
        assert (await http(gw.port, "GET", "/open", pupil)).status == 403
        refused = await http(gw.port, "GET", "/none", teacher)
        assert refused.status == 401
        assert refused.header("www-authenticate") is None
        assert len(up.requests) == 2
    finally:
        await gw.close()
        await up.close()
