"""The token endpoint's HTTP surface (RFC 6749 3.2, 5.1, 5.2)."""

from __future__ import annotations

from identity_harness import SECRETS
from oauth_harness import Flow, basic

from campusgate.identity.ephemeral import Ephemeral
from campusgate.state.base import StateUnavailable
from campusgate.state.memory import MemoryState


async def test_only_post_is_allowed(flow: Flow) -> None:
    response = await flow.http.get("/oauth2/token", params={"grant_type": "client_credentials"})
    assert response.status_code == 405


async def test_json_body_is_invalid_request(flow: Flow) -> None:
    response = await flow.http.post("/oauth2/token", json={"grant_type": "client_credentials"},
                                    headers=basic("reports", SECRETS["reports"]))
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_request"


async def test_repeated_parameter_is_invalid_request(flow: Flow) -> None:
    response = await flow.http.post(
        "/oauth2/token", content=b"grant_type=client_credentials&scope=a&scope=b",
        headers={**basic("reports", SECRETS["reports"]),
                 "content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_password_grant_is_not_supported(flow: Flow) -> None:
    response = await flow.token({"grant_type": "password", "username": "alice",
                                 "password": "correct horse battery staple"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_unknown_grant_type(flow: Flow) -> None:
    response = await flow.token({"grant_type": "urn:example:magic"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_missing_grant_type(flow: Flow) -> None:
    response = await flow.token({"scope": "openid"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_store_outage_is_503_temporarily_unavailable(flow: Flow) -> None:
    class Down(MemoryState):
        async def get(self, key: str) -> bytes | None:
            raise StateUnavailable("redis is down")

        async def set(self, key: str, value: bytes, ttl: float) -> None:
            raise StateUnavailable("redis is down")

    code = await flow.code()
    flow.ctx.ephemeral = Ephemeral(Down())
    response = await flow.redeem(code)
    assert response.status_code == 503
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "temporarily_unavailable"


async def test_errors_have_no_stack_trace(flow: Flow) -> None:
    response = await flow.http.post("/oauth2/token", content=b"\xff\xfe=\x00",
                                    headers={"content-type":
                                             "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "Traceback" not in response.text


async def test_huge_body_is_refused(flow: Flow) -> None:
    response = await flow.token({"grant_type": "client_credentials", "pad": "x" * 70_000},
                                client_id="reports")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
