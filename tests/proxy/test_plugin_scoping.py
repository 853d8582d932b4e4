"""Where a plugin is attached decides where it runs: global < service < route <
consumer group < consumer, the most specific winning per plugin name."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import HttpUpstream, Response, RunningGateway, http, start_gateway
from pydantic import ValidationError

from campusgate.config.loader import parse_entities_text
from campusgate.config.model import Entities


def stop(status: int, who: str, **extra: Any) -> dict[str, Any]:
    """request-termination answering ``status`` with message ``who``."""
    return {"name": "request-termination", "config": {"status_code": status, "message": who},
            **extra}


def key(name: str) -> list[tuple[bytes, bytes]]:
    return [(b"apikey", f"{name}-key-0123456789".encode())]


def consumer(name: str, groups: list[str] | None = None,
             plugins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "groups": groups or [], "plugins": plugins or [],
            "credentials": [{"type": "key-auth", "key": f"{name}-key-0123456789"}]}


def who(answer: Response) -> tuple[int, str]:
    """(status, which level answered): ``upstream`` when the request got through."""
    if answer.status == 200 and answer.body.startswith(b"GET "):
        return 200, "upstream"
    return answer.status, json.loads(answer.body)["error"]["message"]


@pytest.fixture
async def gateway() -> AsyncIterator[Callable[..., Any]]:
    up = await HttpUpstream().start()
    running: list[RunningGateway] = []

    async def start(services: list[dict[str, Any]], **entities: Any) -> int:
        for svc in services:
            svc.setdefault("url", f"http://{up.address}")
        gw = await start_gateway({"services": services, **entities})
        running.append(gw)
        return gw.port

    yield start
    for gw in running:
        await gw.close()
    await up.close()


def svc(name: str, plugins: list[dict[str, Any]] | None = None,
        routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "plugins": plugins or [],
            "routes": routes or [{"name": f"{name}-r", "paths": [f"/{name}"]}]}


def route(name: str, plugins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "paths": [f"/{name}"], "plugins": plugins or []}


async def test_global_plugin_runs_on_every_route(gateway: Callable[..., Any]) -> None:
    port = await gateway([svc("a"), svc("b")], plugins=[stop(410, "global")])
    assert who(await http(port, "GET", "/a")) == (410, "global")
    assert who(await http(port, "GET", "/b")) == (410, "global")


async def test_service_plugin_runs_on_its_routes_only(gateway: Callable[..., Any]) -> None:
    port = await gateway([svc("a", [stop(411, "service a")]), svc("b")])
    assert who(await http(port, "GET", "/a")) == (411, "service a")
    assert who(await http(port, "GET", "/b")) == (200, "upstream")


async def test_route_plugin_runs_on_that_route_only(gateway: Callable[..., Any]) -> None:
    port = await gateway([svc("a", routes=[route("r1", [stop(412, "route r1")]), route("r2")])])
    assert who(await http(port, "GET", "/r1")) == (412, "route r1")
    assert who(await http(port, "GET", "/r2")) == (200, "upstream")


async def test_more_specific_levels_win(gateway: Callable[..., Any]) -> None:
    port = await gateway([
        svc("a", [stop(411, "service a")],
            routes=[route("r1", [stop(412, "route r1")]), route("r2")]),
        svc("b")], plugins=[stop(410, "global")])
    assert who(await http(port, "GET", "/r1")) == (412, "route r1")
    assert who(await http(port, "GET", "/r2")) == (411, "service a")
    assert who(await http(port, "GET", "/b")) == (410, "global")


async def test_a_disabled_spec_turns_a_less_specific_one_off(
        gateway: Callable[..., Any]) -> None:
    port = await gateway([svc("a", routes=[route("open", [stop(599, "off", enabled=False)]),
                                           route("closed")])],
                         plugins=[stop(410, "global")])
    assert who(await http(port, "GET", "/open")) == (200, "upstream")
    assert who(await http(port, "GET", "/closed")) == (410, "global")


async def test_consumer_group_plugin_applies_to_members(gateway: Callable[..., Any]) -> None:
    port = await gateway(
        [svc("a", [stop(411, "service a")]), svc("b")],
        plugins=[{"name": "key-auth"}],
        consumers=[consumer("ann", ["paused"]), consumer("ben")],
        consumer_groups=[{"name": "paused", "plugins": [stop(413, "group paused")]}])
    assert who(await http(port, "GET", "/a", key("ann"))) == (413, "group paused")
    assert who(await http(port, "GET", "/b", key("ann"))) == (413, "group paused")
    assert who(await http(port, "GET", "/a", key("ben"))) == (411, "service a")
    assert who(await http(port, "GET", "/b", key("ben"))) == (200, "upstream")


async def test_consumer_plugin_applies_on_every_route_and_beats_its_groups(
        gateway: Callable[..., Any]) -> None:
    port = await gateway(
        [svc("a", routes=[route("r1", [stop(412, "route r1")]), route("r2")]), svc("b")],
        plugins=[{"name": "key-auth"}],
        consumers=[consumer("ann", ["paused"], [stop(414, "consumer ann")]),
                   consumer("ben", ["paused"])],
        consumer_groups=[{"name": "paused", "plugins": [stop(413, "group paused")]}])
    for path in ("/r1", "/r2", "/b"):
        assert who(await http(port, "GET", path, key("ann"))) == (414, "consumer ann")
        assert who(await http(port, "GET", path, key("ben"))) == (413, "group paused")


async def test_between_two_groups_the_one_listed_first_wins(
        gateway: Callable[..., Any]) -> None:
    port = await gateway(
        [svc("a")], plugins=[{"name": "key-auth"}],
        consumers=[consumer("ann", ["g1", "g2"]), consumer("ben", ["g2", "g1"])],
        consumer_groups=[{"name": "g2", "plugins": [stop(422, "group g2")]},
                         {"name": "g1", "plugins": [stop(421, "group g1")]}])
    assert who(await http(port, "GET", "/a", key("ann"))) == (421, "group g1")
    assert who(await http(port, "GET", "/a", key("ben"))) == (422, "group g2")


async def test_group_plugin_beats_a_route_plugin(gateway: Callable[..., Any]) -> None:
    port = await gateway(
        [svc("a", routes=[route("r1", [stop(412, "route r1")])])],
        plugins=[{"name": "key-auth"}],
        consumers=[consumer("ann", ["vip"])],
        consumer_groups=[{"name": "vip", "plugins": [stop(418, "group vip")]}])
    assert who(await http(port, "GET", "/r1", key("ann"))) == (418, "group vip")


async def test_consumer_can_turn_off_a_route_plugin(gateway: Callable[..., Any]) -> None:
    port = await gateway(
        [svc("a", routes=[route("r1", [stop(412, "route r1")])])],
        plugins=[{"name": "key-auth"}],
        consumers=[consumer("ann", plugins=[stop(599, "off", enabled=False)]),
                   consumer("ben")])
    assert who(await http(port, "GET", "/r1", key("ann"))) == (200, "upstream")
    assert who(await http(port, "GET", "/r1", key("ben"))) == (412, "route r1")


async def test_response_phase_follows_the_same_precedence(gateway: Callable[..., Any]) -> None:
    def rid(header: str) -> dict[str, Any]:
        return {"name": "request-id", "config": {"header_name": header}}

    port = await gateway(
        [svc("a", routes=[route("r1", [rid("X-Route-Id")]), route("r2")])],
        plugins=[rid("X-Global-Id")])
    one = await http(port, "GET", "/r1")
    assert one.header("x-route-id") and one.header("x-global-id") is None
    two = await http(port, "GET", "/r2")
    assert two.header("x-global-id") and two.header("x-route-id") is None


def test_plugins_before_authentication_cannot_be_consumer_scoped() -> None:
    with pytest.raises(ValidationError, match="cannot be attached to a consumer"):
        Entities.model_validate({"consumers": [consumer("ann", plugins=[{"name": "key-auth"}])]})
    with pytest.raises(ValidationError, match="cannot be attached to a consumer"):
        Entities.model_validate({"consumer_groups": [
            {"name": "g", "plugins": [{"name": "basic-auth"}]}]})


DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugin-scoping.md").read_text()


async def test_the_documented_example_behaves_as_its_table_says() -> None:
    doc = DOC
    block = re.search(r"## Example.*?```yaml\n(.*?)```", doc, re.S)
    assert block is not None
    up = await HttpUpstream().start()
    text = block.group(1).replace("grades.internal:8000", up.address).replace(
        "roster.internal:9000", up.address)
    gw = await start_gateway(parse_entities_text(text, env={}))
    keys = {"gradebook": b"gradebook-key-0123", "ops-console": b"ops-console-key-0123",
            "legacy-app": b"legacy-app-key-0123", "no key": None}
    table = {  # request -> what each client gets, as the page says
        "/grades": [503, 200, 410, 401],
        "/grades/status": [200, 200, 410, 401],
        "/roster": [200, 200, 410, 401],
    }
    try:
        for path, expected in table.items():
            got = []
            for value in keys.values():
                headers = [(b"apikey", value)] if value else []
                got.append((await http(gw.port, "GET", path, headers)).status)
            assert got == expected, path
        for cell in ("| `GET /grades` | `503` (service) | upstream (group) | `410` (consumer) |",
                     "| `GET /roster` | upstream | upstream | `410` (consumer) | `401` |"):
            assert cell in doc
    finally:
        await gw.close()
        await up.close()


def test_plugins_that_run_before_authentication_cannot_be_consumer_scoped() -> None:
    # request-id and request-size-limit run before the consumer is known
    for name in ("request-id", "request-size-limit"):
        spec = {"name": name, "config": {"allowed_payload_size": 1}
                if name == "request-size-limit" else {}}
        with pytest.raises(ValidationError, match="runs before the consumer is known"):
            Entities.model_validate({"consumers": [consumer("ann", plugins=[spec])]})


async def test_the_anonymous_consumer_is_marked_and_renamed_group_headers_are_hidden(
        ) -> None:
    auth = {"name": "key-auth", "config": {
        "anonymous": "guest", "headers": {"consumer_groups": "X-Groups"}}}
    up = await HttpUpstream().start()
    gw = await start_gateway({
        "services": [{"name": "a", "url": f"http://{up.address}", "plugins": [
            auth, {"name": "acl", "config": {"allow": ["staff", "guests"],
                                             "hide_groups_header": True}}],
            "routes": [{"name": "a-r", "paths": ["/a"]}]}],
        "consumers": [consumer("ann", ["staff"]), {"name": "guest", "groups": ["guests"]}]})
    try:
        assert (await http(gw.port, "GET", "/a", key("ann"))).status == 200
        assert up.requests[-1].header("x-consumer-name") == "ann"
        assert up.requests[-1].header("x-groups") is None  # renamed, and still hidden
        assert (await http(gw.port, "GET", "/a")).status == 200
        assert up.requests[-1].header("x-consumer-name") == "guest"
        assert up.requests[-1].header("x-anonymous-consumer") == "true"
    finally:
        await gw.close()
        await up.close()
