"""The sso plugin's sealed cookies and return URLs (plugins/_sso_session.py)."""

from __future__ import annotations

import pytest

from campusgate.plugins._sso_session import (
    MAX_COOKIE,
    CookieJar,
    LoginState,
    Session,
    SessionCodec,
    cookie_value,
    find_cookie,
    safe_return,
    set_cookie,
)

KEY = bytes(range(32))
NOW = 1_800_000_000.0


def codec(key: bytes = KEY, binding: str = "https://idp\x00app\x00sso") -> SessionCodec:
    return SessionCodec(key, binding)


def session(**claims: object) -> Session:
    return Session({"sub": "u1", "role": "teacher", **claims}, NOW, NOW + 3600, NOW)


def test_a_session_round_trips_and_its_cookie_is_not_readable() -> None:
    value = session(email="ada@example.edu").seal(codec())
    assert value is not None and "ada" not in value and "teacher" not in value
    opened = Session.open(codec(), value)
    assert opened == session(email="ada@example.edu")


@pytest.mark.parametrize("other", [
    codec(key=bytes(32)),                          # another installation key
    codec(binding="https://idp\x00other\x00sso"),  # another client
    codec(binding="https://evil\x00app\x00sso"),   # another provider
])
def test_a_cookie_is_worthless_elsewhere(other: SessionCodec) -> None:
    value = session().seal(codec())
    assert value is not None
    assert Session.open(other, value) is None


def test_tampered_truncated_and_foreign_values_read_as_no_cookie() -> None:
    value = session().seal(codec())
    assert value is not None
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    for bad in (flipped, value[:-4], "", "not base64 at all!", "x" * (MAX_COOKIE + 1)):
        assert Session.open(codec(), bad) is None


def test_a_login_state_is_not_a_session_and_vice_versa() -> None:
    login = LoginState("s" * 43, "n", "v", "/app/x?y=1", "http://h/app/_sso/callback",
                       NOW + 600)
    sealed = login.seal(codec())
    assert Session.open(codec(), sealed) is None
    assert LoginState.open(codec(), sealed, NOW) == login
    assert LoginState.open(codec(), sealed, NOW + 601) is None  # expired
    value = session().seal(codec())
    assert value is not None and LoginState.open(codec(), value, NOW) is None


@pytest.mark.parametrize("now, idle, valid", [
    (NOW + 10, 0, True),
    (NOW + 3599, 0, True),
    (NOW + 3600, 0, False),        # absolute lifetime over
    (NOW + 100, 60, False),        # idle for longer than the idle timeout
    (NOW + 59, 60, True),
    (NOW - 3600, 0, False),        # issued in the future: a clock gone wrong
])
def test_session_lifetimes(now: float, idle: float, valid: bool) -> None:
    assert session().valid_at(now, idle) is valid


def test_a_large_identity_drops_the_id_token_then_long_lists_to_fit() -> None:
    big = Session({"sub": "u1", "role": "student", "class_ids": [f"class-{i}" for i in range(400)],
                   "school_ids": ["s1"]}, NOW, NOW + 60, NOW, id_token="t" * 1500)
    value = big.seal(codec())
    assert value is not None and len(value) <= MAX_COOKIE
    opened = Session.open(codec(), value)
    assert opened is not None and opened.id_token is None
    assert "class_ids" not in opened.claims and opened.claims["school_ids"] == ["s1"]
    huge = Session({"sub": "u1", "name": "x" * 5000}, NOW, NOW + 60, NOW)
    assert huge.seal(codec()) is None


@pytest.mark.parametrize("value, expected", [
    ("/app/grades?term=2", "/app/grades?term=2"),
    ("/", "/"),
    ("//evil.example/x", "/app/"),
    ("/\\evil.example", "/app/"),
    ("https://evil.example/", "/app/"),
    ("javascript:alert(1)", "/app/"),
    ("/app/\r\nSet-Cookie: x=1", "/app/"),
    ("/app/caf\u00e9", "/app/"),
    ("", "/app/"),
    (None, "/app/"),
])
def test_return_urls_stay_on_this_host(value: str | None, expected: str) -> None:
    assert safe_return(value, "/app/") == expected


def test_cookies_are_read_and_the_plugins_own_are_kept_from_the_upstream() -> None:
    headers = [(b"cookie", b"theme=dark; sso=SEALED; sso_s_abc=STATE"), (b"cookie", b"b=2")]
    jar = CookieJar.parse(headers)
    assert (jar.get("sso"), jar.get("theme"), jar.get("b")) == ("SEALED", "dark", "2")
    assert cookie_value(headers[0][1], "sso") == b"theme=dark"
    assert cookie_value(b"sso=1", "sso") == b""


@pytest.mark.parametrize("headers", [
    [(b"cookie", b"theme=dark; sso=SEALED; sso_s_abc=STATE")],
    [(b"cookie", b"sso_s_abc=STATE; xsso=no; sso=\"SEALED\"")],
    [(b"accept", b"sso=nope"), (b"cookie", b"a=1"), (b"cookie", b"sso=SEALED; sso=LATER")],
    [(b"cookie", b"sso_s_abc=STATE; theme=dark")],
    [(b"cookie", b"sso")],
    [],
])
def test_the_fast_cookie_lookup_reads_what_the_jar_reads(
        headers: list[tuple[bytes, bytes]]) -> None:
    assert find_cookie(headers, b"sso") == CookieJar.parse(headers).get("sso")


def test_set_cookie_attributes() -> None:
    name, value = set_cookie("sso", "v", path="/", max_age=60, secure=True)
    assert name == b"set-cookie"
    assert value == b"sso=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
    _, plain = set_cookie("sso", "", path="/app", max_age=0, secure=False, domain="x.edu")
    assert plain == b"sso=; Path=/app; Max-Age=0; HttpOnly; SameSite=Lax; Domain=x.edu"
