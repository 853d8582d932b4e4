"""The config model's own checks, table-driven: each bad value names what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.config.model import Config, Entities, Service

ECHO = {"name": "s", "url": "builtin://echo", "routes": [{"name": "r", "paths": ["/"]}]}


@pytest.mark.parametrize(("settings", "fault"), [
    ({"state": "memcached://x"}, "state must be memory or redis"),
    ({"storage": "mysql://x/db"}, "storage must be sqlite"),
    ({"trusted_proxies": ["10.0.0.0/33"]}, "trusted_proxies"),
    ({"listeners": {"proxy": {"address": "8080"}}}, "HOST:PORT"),
    ({"limits": {"max_headers": 0}}, "greater than or equal to 1"),
])
def test_bad_bootstrap_settings(settings: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        Config.model_validate(settings)


@pytest.mark.parametrize("state", ["memory", "redis://127.0.0.1:6379/0", "rediss://r.example:6380/1"])
def test_good_state_backends(state: str) -> None:
    assert Config.model_validate({"state": state}).state == state


@pytest.mark.parametrize(("service", "fault"), [
    ({"name": "s"}, "exactly one of url or upstream"),
    ({"name": "s", "url": "ftp://x"}, "must be http"),
    ({"name": "s", "url": "builtin://nope"}, "builtin://echo"),
    ({"name": "s", "url": "http://x:99999"}, "Port out of range"),
    ({"name": "s", "url": "http://x", "routes": [{"name": "r"}]}, "at least one of"),
    ({"name": "s", "url": "http://x", "routes": [{"name": "r", "methods": ["FETCH"]}]},
     "unknown HTTP method"),
    ({"name": "s", "url": "http://x", "routes": [{"name": "r", "hosts": ["a.*.b"]}]},
     "name or"),
    ({"name": "s", "url": "https://x", "tls": {"ca_file": "/no/such/ca.pem"}},
     "cannot read CA file"),
])
def test_bad_services(service: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        Service.model_validate(service)


def test_an_http_url_gives_protocol_and_base_path() -> None:
    service = Service.model_validate({"name": "s", "url": "https://api.example.com/v1/"})
    assert (service.protocol, service.path) == ("https", "/v1")


def test_route_names_are_unique_across_services() -> None:
    other = {**ECHO, "name": "t"}
    with pytest.raises(ValidationError, match="duplicate name in routes: 'r'"):
        Entities.model_validate({"services": [ECHO, other]})
