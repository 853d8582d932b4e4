"""request-id: header name, trust of client ids, echo to the client."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from campusgate.plugins.registry import build_plugin
from campusgate.proxy.context import HeaderList, RequestContext


def ctx(headers: HeaderList) -> RequestContext:
    return RequestContext("GET", "/x", "", headers, "127.0.0.1", "http", "h", "core-id")


async def test_custom_header_carries_a_valid_client_id_both_ways() -> None:
    plugin = build_plugin("request-id", {"header_name": "X-Correlation-Id"})
    c = ctx([(b"x-correlation-id", b"abc-123")])
    assert await plugin.access(c) is None
    assert c.request_id == "abc-123"
    assert (b"X-Correlation-Id", b"abc-123") in c.upstream_headers_add
    out: HeaderList = []
    plugin.response(c, 200, out)
    assert out == [(b"X-Correlation-Id", b"abc-123")]


async def test_invalid_client_id_is_replaced() -> None:
    plugin = build_plugin("request-id", {"header_name": "X-Correlation-Id"})
    c = ctx([(b"x-correlation-id", b"bad id with spaces")])
    await plugin.access(c)
    assert c.request_id != "bad id with spaces"
    assert len(c.request_id) == 32


async def test_untrusted_incoming_ids_are_never_kept() -> None:
    plugin = build_plugin("request-id", {"trust_incoming": False})
    c = ctx([(b"x-request-id", b"client-chosen")])
    await plugin.access(c)
    assert c.request_id not in ("client-chosen", "core-id")


async def test_echo_off_hides_the_id_from_the_client() -> None:
    plugin = build_plugin("request-id", {"echo_downstream": False})
    c = ctx([])
    await plugin.access(c)
    assert c.vars["request_id.hide"] is True


def test_header_name_must_be_a_token() -> None:
    with pytest.raises(ValidationError):
        build_plugin("request-id", {"header_name": "bad header"})
