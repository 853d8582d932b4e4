"""The sso plugin's access phase on a request context, without sockets: what it does
with a session cookie, where its paths are, when a cookie is Secure, and that the
check of a signed-in request never waits (plugins/sso.py)."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.plugins._sso_session import Session
from campusgate.plugins.base import WAIT, PluginEnv
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.plugins.sso import SsoPlugin
from campusgate.proxy.context import LocalResponse, RequestContext

CONFIG = {"issuer": "https://idp.example.edu", "client_id": "app", "client_secret": "s" * 20}


def plugin(**config: Any) -> SsoPlugin:
    resources = default_resources()
    resources.trusted_proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    built = build_plugin("sso", {**CONFIG, **config}, PluginEnv(resources, "route:app"))
    assert isinstance(built, SsoPlugin)
    return built


def request(path: str = "/app/page", *, cookie: str | None = None, scheme: str = "http",
            client_ip: str = "192.0.2.7", **headers: str) -> RequestContext:
    head = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    if cookie is not None:
        head.append((b"cookie", cookie.encode()))
    path, _, query = path.partition("?")
    return RequestContext("GET", path, query, head, client_ip, scheme, "app.example.edu",
                          "req-1")


def signed_in(sso: SsoPlugin, seen_ago: float = 0, **claims: Any) -> str:
    now = time.time()
    value = Session({"sub": "u1", "role": "teacher", **claims}, now - 60, now + 3600,
                    now - seen_ago).seal(sso.codec)
    assert value is not None
    return f"theme=dark; campusgate_sso={value}"


def test_a_signed_in_request_passes_without_waiting_with_its_identity() -> None:
    sso = plugin()
    ctx = request(cookie=signed_in(sso, email="kim@x.edu"), x_forwarded_user="admin")
    assert sso.access_now(ctx) is None
    added = dict(ctx.upstream_headers_add)
    assert added[b"x-forwarded-user"] == b"u1" and added[b"x-forwarded-email"] == b"kim@x.edu"
    assert b"x-forwarded-user" in ctx.upstream_headers_remove  # the client's copy goes
    assert ctx.header(b"cookie") == b"theme=dark"
    assert ctx.vars["auth.claims"]["role"] == "teacher"


def test_without_a_session_a_browser_needs_discovery_and_an_api_call_gets_401() -> None:
    sso = plugin()
    assert sso.access_now(request(accept="text/html")) is WAIT  # the task path fetches it
    answer = sso.access_now(request("/deep/x", accept="application/json"))
    assert isinstance(answer, LocalResponse) and answer.status == 401
    assert b'login_uri="/deep/_sso/login"' in dict(answer.headers)[b"www-authenticate"]


@pytest.mark.parametrize("base_path, path, login", [
    (None, "/app/x/y", "/app/_sso/login"),
    (None, "/", "/_sso/login"),
    ("/", "/x/y", "/_sso/login"),
    ("/district/app", "/district/app/x", "/district/app/_sso/login"),
])
def test_where_the_plugins_own_paths_are(base_path: str | None, path: str,
                                         login: str) -> None:
    answer = plugin(base_path=base_path).access_now(request(path, accept="application/json"))
    assert isinstance(answer, LocalResponse)
    assert f'login_uri="{login}"'.encode() in dict(answer.headers)[b"www-authenticate"]


@pytest.mark.parametrize("scheme, client_ip, proto, secure", [
    ("https", "192.0.2.7", None, True),
    ("http", "192.0.2.7", None, False),
    ("http", "10.1.2.3", "https", True),        # a trusted proxy terminated TLS
    ("http", "192.0.2.7", "https", False),      # anyone else's X-Forwarded-Proto
])
def test_the_session_cookie_is_secure_over_tls(scheme: str, client_ip: str,
                                               proto: str | None, secure: bool) -> None:
    sso = plugin(cookie={"idle_timeout": 600})
    extra = {"x_forwarded_proto": proto} if proto else {}
    ctx = request(cookie=signed_in(sso, seen_ago=200), scheme=scheme, client_ip=client_ip,
                  **extra)
    assert sso.access_now(ctx) is None
    (name, value), = ctx.response_headers_add  # idle timer pushed forward
    assert name == b"set-cookie" and value.startswith(b"campusgate_sso=")
    assert value.endswith(b"; Secure") is secure


def test_idle_and_denied_sessions() -> None:
    sso = plugin(cookie={"idle_timeout": 600}, rules={"roles": ["administrator"]})
    idle = sso.access_now(request(cookie=signed_in(sso, seen_ago=700), accept="text/json"))
    assert isinstance(idle, LocalResponse) and idle.status == 401
    denied = sso.access_now(request(cookie=signed_in(sso), accept="text/html"))
    assert isinstance(denied, LocalResponse) and denied.status == 403
    assert b"Not allowed" in denied.body and denied.content_type.startswith(b"text/html")


@pytest.mark.parametrize("bad", [
    {"scopes": ["profile"]},
    {"issuer": "ftp://idp"},
    {"callback_path": "//evil/cb"},
    {"login_path": "_sso/callback"},
    {"cookie": {"name": "bad name"}},
    {"headers": {"user": "Host"}},
])
def test_bad_settings_are_refused_when_the_config_loads(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        plugin(**bad)
