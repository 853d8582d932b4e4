"""Several authentication plugins on one route: the AuthenticationStep combines them
(first credential found decides, anonymous, combined challenges, consumer headers)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import HttpUpstream, RawClient, RunningGateway, http, start_gateway

from campusgate.proxy.gateway import Gateway

KEY = b"alice-key-0123456789"
CONSUMERS = [
    {"name": "alice", "custom_id": "A-1", "groups": ["staff", "admins"],
     "credentials": [{"type": "key-auth", "key": KEY.decode(), "id": "alice-key"}]},
    {"name": "bob", "groups": ["teachers"],
     "credentials": [{"type": "basic-auth", "username": "bob", "password": "bob-password"}]},
    {"name": "guest", "custom_id": "G-0"},
]


def basic(user: str, password: str) -> tuple[bytes, bytes]:
    return b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode())


BOB = basic("bob", "bob-password")


class Setup:
    def __init__(self, up: HttpUpstream) -> None:
        self.up = up
        self.gateways: list[RunningGateway] = []

    async def gateway(self, key_auth: dict[str, Any] | None = None,
                      basic_auth: dict[str, Any] | None = None) -> int:
        plugins = [{"name": "key-auth", "config": key_auth or {}},
                   {"name": "basic-auth", "config": basic_auth or {}}]
        gw = await start_gateway({
            "services": [{"name": "s", "url": f"http://{self.up.address}",
                          "routes": [{"name": "r", "paths": ["/api"], "strip_path": False,
                                      "plugins": plugins}]}],
            "consumers": CONSUMERS})
        self.gateways.append(gw)
        return gw.port

    @property
    def seen(self) -> Any:
        return self.up.requests[-1]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    up = await HttpUpstream().start()
    s = Setup(up)
    yield s
    for gw in s.gateways:
        await gw.close()
    await up.close()


async def test_either_credential_works(setup: Setup) -> None:
    port = await setup.gateway()
    assert (await http(port, "GET", "/api", [(b"apikey", KEY)])).status == 200
    assert setup.seen.header("x-consumer-name") == "alice"
    assert setup.seen.header("x-consumer-groups") == "staff, admins"
    assert setup.seen.header("x-credential-identifier") == "alice-key"
    assert (await http(port, "GET", "/api", [BOB])).status == 200
    assert setup.seen.header("x-consumer-name") == "bob"
    assert setup.seen.header("x-credential-identifier") == "basic-bob"
    assert setup.seen.header("x-anonymous-consumer") is None


async def test_the_higher_priority_plugin_decides_when_both_credentials_are_sent(
        setup: Setup) -> None:
    port = await setup.gateway()
    assert (await http(port, "GET", "/api", [(b"apikey", KEY), BOB])).status == 200
    assert setup.seen.header("x-consumer-name") == "alice"  # key-auth 1250 > basic 1100
    wrong_key = await http(port, "GET", "/api", [(b"apikey", b"wrong-key-000000"), BOB])
    assert wrong_key.status == 401  # a bad key is reported, not skipped
    assert json.loads(wrong_key.body)["error"]["message"] == "invalid API key"


async def test_no_credential_is_a_401_with_both_challenges(setup: Setup) -> None:
    port = await setup.gateway(basic_auth={"realm": "grades"})
    answer = await http(port, "GET", "/api")
    assert answer.status == 401
    assert answer.header_all("www-authenticate") == [
        'Key realm="campusgate"', 'Basic realm="grades", charset="UTF-8"']
    assert json.loads(answer.body)["error"]["code"] == "unauthorized"
    assert not setup.up.requests


async def test_anonymous_for_no_credential_but_never_for_a_wrong_one(setup: Setup) -> None:
    port = await setup.gateway(basic_auth={"anonymous": "guest"})
    spoof = [(b"x-consumer-name", b"alice"), (b"x-consumer-groups", b"admins"),
             (b"x-anonymous-consumer", b"false")]
    assert (await http(port, "GET", "/api", spoof)).status == 200
    assert setup.seen.header_all("x-consumer-name") == ["guest"]
    assert setup.seen.header("x-consumer-custom-id") == "G-0"
    assert setup.seen.header_all("x-anonymous-consumer") == ["true"]
    assert setup.seen.header("x-consumer-groups") is None  # guest has none, spoof removed
    assert setup.seen.header("x-credential-identifier") is None
    for wrong in ([(b"apikey", b"wrong-key-000000")], [basic("bob", "not-bobs-password")]):
        answer = await http(port, "GET", "/api", wrong)
        assert answer.status == 401
        assert len(answer.header_all("www-authenticate")) == 1  # the plugin that refused
    assert len(setup.up.requests) == 1


async def test_client_consumer_headers_are_removed_when_authenticated(setup: Setup) -> None:
    port = await setup.gateway()
    headers = [BOB, (b"X-Consumer-Name", b"alice"), (b"x-consumer-id", b"forged"),
               (b"x-credential-identifier", b"forged")]
    assert (await http(port, "GET", "/api", headers)).status == 200
    assert setup.seen.header_all("x-consumer-name") == ["bob"]
    assert "forged" not in setup.seen.header_all("x-consumer-id")
    assert setup.seen.header_all("x-credential-identifier") == ["basic-bob"]


async def test_consumer_headers_can_be_renamed_or_turned_off(setup: Setup) -> None:
    names = {"consumer_name": "X-Caller", "consumer_id": None, "consumer_groups": None}
    port = await setup.gateway(key_auth={"headers": names})
    assert (await http(port, "GET", "/api", [(b"apikey", KEY), (b"x-caller", b"bob")])).status \
        == 200
    assert setup.seen.header_all("x-caller") == ["alice"]  # the client's one removed
    assert setup.seen.header("x-consumer-name") is None
    assert setup.seen.header("x-consumer-id") is None
    assert setup.seen.header("x-consumer-groups") is None
    assert setup.seen.header("x-consumer-custom-id") == "A-1"  # not renamed: default


async def test_credentials_are_hidden_unless_hide_credentials_is_false(setup: Setup) -> None:
    port = await setup.gateway()
    await http(port, "GET", "/api", [(b"apikey", KEY)])
    assert setup.seen.header("apikey") is None
    await http(port, "GET", "/api?apikey=" + KEY.decode() + "&x=1")
    assert setup.seen.target == "/api?x=1"
    await http(port, "GET", "/api", [BOB])
    assert setup.seen.header("authorization") is None

    port = await setup.gateway(key_auth={"hide_credentials": False},
                               basic_auth={"hide_credentials": False})
    await http(port, "GET", "/api", [(b"apikey", KEY)])
    assert setup.seen.header("apikey") == KEY.decode()
    await http(port, "GET", "/api?apikey=" + KEY.decode())
    assert setup.seen.target == "/api?apikey=" + KEY.decode()
    await http(port, "GET", "/api", [BOB])
    assert setup.seen.header("authorization") == BOB[1].decode()


async def test_keep_alive_mix_of_credentials_on_the_fast_and_task_paths(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """basic-auth answers from its cache on the fast path and hands over (WAIT) when
    it must check a password: every answer is right whichever path served it."""
    fast: list[bool] = []
    original = Gateway.try_fast

    def counting(self: Gateway, conn: Any, req: Any) -> bool:
        fast.append(original(self, conn, req))
        return fast[-1]

    monkeypatch.setattr(Gateway, "try_fast", counting)
    port = await setup.gateway()
    client = await RawClient.connect(port)
    try:
        plan = [([(b"apikey", KEY)], 200, "alice"), ([BOB], 200, "bob"),
                ([BOB], 200, "bob"), ([basic("bob", "wrong")], 401, None),
                ([(b"apikey", KEY)], 200, "alice"), ([], 401, None), ([BOB], 200, "bob")]
        for headers, status, name in plan:
            answer = await client.request("GET", "/api", headers)
            assert answer.status == status
            if name is not None:
                assert setup.seen.header("x-consumer-name") == name
        assert len(setup.up.requests) == 5
        # a password checked for the first time waits (task path); a cached one does not
        assert (fast[1], fast[2], fast[3], fast[6]) == (False, True, False, True)
    finally:
        await client.close()
