"""request-termination: a fixed answer at the gateway; bad settings rejected at load."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.registry import build_plugin
from campusgate.proxy.context import RequestContext


def ctx() -> RequestContext:
    return RequestContext("GET", "/x", "", [], "127.0.0.1", "http", "h", "rid-1")


async def test_default_answer_is_a_503_in_the_error_shape() -> None:
    plugin = build_plugin("request-termination", PluginSpec(name="request-termination").config)
    answer = await plugin.access(ctx())
    assert answer is not None
    assert answer.status == 503
    body = json.loads(answer.body)
    assert body["error"]["code"] == "request_terminated"
    assert body["error"]["request_id"] == "rid-1"


async def test_custom_body_status_and_headers() -> None:
    spec = PluginSpec(name="request-termination", config={
        "status_code": 410, "body": "gone for good", "content_type": "text/plain",
        "headers": {"Sunset": "Sat, 01 Nov 2026 00:00:00 GMT"}})
    answer = await build_plugin(spec.name, spec.config).access(ctx())
    assert answer is not None
    assert (answer.status, answer.body, answer.content_type) == (410, b"gone for good",
                                                                 b"text/plain")
    assert (b"sunset", b"Sat, 01 Nov 2026 00:00:00 GMT") in answer.headers


@pytest.mark.parametrize("config, fault", [
    ({"status_code": 99}, "status_code"),
    ({"status_code": 600}, "status_code"),
    ({"message": "a", "body": "b"}, "not both"),
    ({"colour": "red"}, "colour"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, object], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="request-termination", config=config)


def test_unknown_plugin_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown plugin 'rate-limitt'.*request-id"):
        PluginSpec(name="rate-limitt")
