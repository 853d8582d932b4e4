"""The compiled route matcher: path forms, hosts, conditions, precedence, 405s, scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.config.model import HTTP_METHODS, Route
from campusgate.proxy.router import RouteMatch, RoutePatternError, Router

Headers = list[tuple[bytes, bytes]]


def build(*routes: dict[str, Any]) -> Router[str]:
    """A router over routes given as dicts; each route's payload is its name."""
    pairs = []
    for number, fields in enumerate(routes):
        fields = {"name": f"r{number}", **fields}
        pairs.append((Route(**fields), fields["name"]))
    return Router(pairs)


def lookup(
    router: Router[str],
    path: str = "/",
    *,
    method: str = "GET",
    host: str = "gw.local",
    headers: Headers | None = None,
    query: str = "",
) -> RouteMatch[str] | None:
    return router.match(method, host, path, headers or [], query)


def winner(router: Router[str], path: str = "/", **request: Any) -> str | None:
    found = lookup(router, path, **request)
    return None if found is None else found.payload


# ------------------------------------------------------------------ path forms

PATHS = [
    # pattern, request path, matched_path (None: no match)
    ("/api", "/api", "/api"),
    ("/api", "/api/", "/api"),
    ("/api", "/api/users/7", "/api"),
    ("/api", "/apix", None),
    ("/api", "/ap", None),
    ("/api", "/", None),
    ("/api", "/API", None),  # paths are case-sensitive
    ("/api", "//api", None),  # no slash merging
    ("/api/", "/api/", "/api/"),
    ("/api/", "/api/x", "/api/"),
    ("/api/", "/api", None),
    ("/", "/", "/"),
    ("/", "/anything/at/all", "/"),
    ("/a/b", "/a/b/c", "/a/b"),
    ("/a/b", "/a/bc", None),
    ("/a/b", "/a", None),
    ("/caf%C3%A9", "/caf%C3%A9/menu", "/caf%C3%A9"),  # compared as received
    ("/a/%62", "/a/b", None),  # no percent-decoding
    ("/users/{id}", "/users/7", "/users/7"),
    ("/users/{id}", "/users/7/posts", "/users/7"),
    ("/users/{id}", "/users/", None),  # a parameter is never empty
    ("/users/{id}", "/users", None),
    ("/img/{name}.{ext}", "/img/cat.png", "/img/cat.png"),
    ("/img/{name}.{ext}", "/img/cat", None),
    ("/files/{path*}", "/files/a/b/c.txt", "/files/a/b/c.txt"),
    ("/files/{path*}", "/files", "/files"),
    ("/files/{path*}", "/filesx", None),
    ("~^/v(?P<ver>\\d+)/", "/v2/things", "/v2/"),
    ("~^/v(?P<ver>\\d+)/", "/v/things", None),
    ("~/inner", "/outer/inner", None),  # re.match: anchored at the start
    ("~.*\\.php$", "/x/index.php", "/x/index.php"),
]


@pytest.mark.parametrize(("pattern", "path", "matched"), PATHS)
def test_path_forms(pattern: str, path: str, matched: str | None) -> None:
    found = lookup(build({"paths": [pattern]}), path)
    if matched is None:
        assert found is None
    else:
        assert found is not None
        assert (found.matched_path, found.pattern) == (matched, pattern)


PARAMS = [
    ("/users/{id}", "/users/7/posts", {"id": "7"}),
    ("/users/{uid}/posts/{pid}", "/users/ann/posts/42", {"uid": "ann", "pid": "42"}),
    ("/users/{id}", "/users/a%20b", {"id": "a%20b"}),  # raw, as received
    ("/img/{name}.{ext}", "/img/cat.large.png", {"name": "cat", "ext": "large.png"}),
    ("/v{major}/status", "/v3/status", {"major": "3"}),
    ("/files/{path*}", "/files/a/b/c.txt", {"path": "a/b/c.txt"}),
    ("/files/{path*}", "/files/", {"path": ""}),
    ("/files/{path*}", "/files", {"path": ""}),
    ("/api", "/api/x", {}),
    ("~^/v(?P<ver>\\d+)/(\\w+)", "/v2/things", {"ver": "2"}),  # unnamed groups: no param
    ("~^/a(?P<opt>/b)?", "/a/c", {}),  # named group that took no part: absent
]


@pytest.mark.parametrize(("pattern", "path", "params"), PARAMS)
def test_params(pattern: str, path: str, params: dict[str, str]) -> None:
    found = lookup(build({"paths": [pattern]}), path)
    assert found is not None
    assert found.params == params


def test_templates_sharing_a_trie_position_keep_their_own_param_names() -> None:
    router = build(
        {"name": "by-id", "paths": ["/users/{id}"], "methods": ["GET"]},
        {"name": "by-uid", "paths": ["/users/{uid}"], "methods": ["PUT"]},
    )
    get = lookup(router, "/users/9", method="GET")
    assert get == RouteMatch("by-id", {"id": "9"}, "/users/9", "/users/{id}")
    put = lookup(router, "/users/9", method="PUT")
    assert put is not None and put.params == {"uid": "9"}


def test_a_path_that_is_not_origin_form_matches_only_regex_and_pathless_routes() -> None:
    router = build({"name": "root", "paths": ["/"]}, {"name": "star", "paths": ["~^\\*$"]})
    assert winner(router, "*", method="OPTIONS") == "star"
    assert winner(build({"paths": ["/"]}), "*") is None
    assert winner(build({"name": "any", "methods": ["OPTIONS"]}), "*", method="OPTIONS") == "any"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("/a/{b", "bad template segment"),
        ("/a/{p*}/c", "bad template segment"),
        ("/a/{}", "bad template segment"),
        ("/{x}/{x}", "used twice"),
        ("/{x}/{x*}", "used twice"),
    ],
)
def test_bad_templates_are_rejected_at_compile_time(pattern: str, reason: str) -> None:
    unchecked = Route.model_construct(name="broken", paths=["/fine", pattern])
    with pytest.raises(RoutePatternError, match=reason) as caught:
        Router([(unchecked, "broken")])
    assert (caught.value.route, caught.value.pattern) == ("broken", pattern)
    # The config model compiles each route too, so the fault shows when config loads.
    with pytest.raises(ValidationError, match=reason):
        Route(name="broken", paths=["/fine", pattern])


def test_a_wildcard_host_with_a_port_is_rejected() -> None:
    with pytest.raises(RoutePatternError, match="wildcard"):
        Router([(Route.model_construct(name="w", hosts=["*.example.com:8080"]), "w")])
    with pytest.raises(ValidationError, match="wildcard"):
        build({"hosts": ["*.example.com:8080"]})


# ------------------------------------------------------------------ hosts

HOSTS = [
    # route host, request Host header, matches
    ("example.com", "example.com", True),
    ("example.com", "EXAMPLE.com", True),
    ("example.com", "example.com:8080", True),
    ("example.com", "example.com.", True),  # fully qualified form
    ("example.com", "www.example.com", False),
    ("example.com", "", False),
    ("*.example.com", "a.example.com", True),
    ("*.example.com", "a.b.c.example.com:443", True),  # any depth
    ("*.example.com", "example.com", False),  # not the domain itself
    ("*.example.com", "badexample.com", False),
    ("*.example.com", "example.com.evil.net", False),
    ("example.com:8443", "example.com:8443", True),  # a port in the route: that port only
    ("example.com:8443", "example.com", False),
    ("example.com:8443", "example.com:443", False),
    ("[::1]", "[::1]:8080", True),
    ("[::1]", "[::2]", False),
    ("127.0.0.1", "127.0.0.1:80", True),
]


@pytest.mark.parametrize(("route_host", "host", "matches"), HOSTS)
def test_hosts(route_host: str, host: str, matches: bool) -> None:
    router = build({"hosts": [route_host]})
    assert (winner(router, "/x", host=host) is not None) is matches


def test_any_listed_host_matches() -> None:
    router = build({"name": "multi", "hosts": ["a.test", "*.b.test"], "paths": ["/"]})
    assert winner(router, host="a.test") == "multi"
    assert winner(router, host="x.b.test") == "multi"
    assert winner(router, host="c.test") is None


# ------------------------------------------------------------------ methods, headers, query

CONDITIONS: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"methods": ["GET", "POST"]}, {"method": "POST"}, True),
    ({"methods": ["GET"]}, {"method": "HEAD"}, False),  # HEAD is not implied by GET
    ({"headers": {"X-Tenant": ["a", "b"]}}, {"headers": [(b"x-tenant", b"b")]}, True),
    ({"headers": {"X-Tenant": "a"}}, {"headers": [(b"x-tenant", b"A")]}, False),  # exact value
    ({"headers": {"x-tenant": "a"}}, {"headers": [(b"x-tenant", b"z"), (b"x-tenant", b"a")]}, True),
    ({"headers": {"x-tenant": "a"}}, {"headers": []}, False),
    ({"headers": {"x-a": "1", "x-b": "2"}}, {"headers": [(b"x-a", b"1")]}, False),  # all of them
    ({"headers": {"x-a": "1", "x-b": "2"}}, {"headers": [(b"x-b", b"2"), (b"x-a", b"1")]}, True),
    ({"headers": {"x-name": "café"}}, {"headers": [(b"x-name", "café".encode())]}, True),
    ({"query": {"v": ["1", "2"]}}, {"query": "a=b&v=2"}, True),
    ({"query": {"v": "1"}}, {"query": "v=3&v=1"}, True),  # any of the repeated values
    ({"query": {"v": "1"}}, {"query": "v=10"}, False),
    ({"query": {"q": "a b"}}, {"query": "q=a+b"}, True),  # parse_qs decoding
    ({"query": {"q": "a/b"}}, {"query": "q=a%2Fb"}, True),
    ({"query": {"flag": ""}}, {"query": "flag="}, True),  # blank values kept
    ({"query": {"flag": ""}}, {"query": ""}, False),
    ({"query": {"v": "1"}, "headers": {"x-a": "1"}}, {"query": "v=1"}, False),
]


@pytest.mark.parametrize(("conditions", "request_fields", "matches"), CONDITIONS)
def test_conditions(
    conditions: dict[str, Any], request_fields: dict[str, Any], matches: bool
) -> None:
    router = build({"paths": ["/"], **conditions})
    assert (winner(router, "/x", **request_fields) is not None) is matches


# ------------------------------------------------------------------ precedence

PRECEDENCE: list[tuple[str, list[dict[str, Any]], dict[str, Any], str]] = [
    (
        "exact host beats wildcard host beats no host",
        [
            {"name": "none", "paths": ["/"]},
            {"name": "wild", "hosts": ["*.example.com"], "paths": ["/"]},
            {"name": "exact", "hosts": ["api.example.com"], "paths": ["/"]},
        ],
        {"host": "api.example.com"},
        "exact",
    ),
    (
        "wildcard host beats no host",
        [
            {"name": "none", "paths": ["/"]},
            {"name": "wild", "hosts": ["*.example.com"], "paths": ["/"]},
            {"name": "exact", "hosts": ["api.example.com"], "paths": ["/"]},
        ],
        {"host": "web.example.com"},
        "wild",
    ),
    (
        "a host with a port beats the bare host",
        [
            {"name": "bare", "hosts": ["example.com"]},
            {"name": "port", "hosts": ["example.com:8443"]},
        ],
        {"host": "example.com:8443"},
        "port",
    ),
    (
        "longer wildcard suffix beats shorter",
        [
            {"name": "short", "hosts": ["*.example.com"], "paths": ["/"]},
            {"name": "long", "hosts": ["*.eu.example.com"], "paths": ["/"]},
        ],
        {"host": "a.eu.example.com"},
        "long",
    ),
    (
        "a host condition beats a longer path",
        [
            {"name": "long-path", "paths": ["/api/v1/users"]},
            {"name": "host", "hosts": ["gw.local"]},
        ],
        {"path": "/api/v1/users"},
        "host",
    ),
    (
        "longer prefix beats shorter",
        [{"name": "short", "paths": ["/api"]}, {"name": "long", "paths": ["/api/v1"]}],
        {"path": "/api/v1/users"},
        "long",
    ),
    (
        "a trailing-slash prefix beats the same prefix without it",
        [{"name": "bare", "paths": ["/api"]}, {"name": "slash", "paths": ["/api/"]}],
        {"path": "/api/x"},
        "slash",
    ),
    (
        "a literal segment beats a parameter at the same depth",
        [{"name": "param", "paths": ["/users/{id}"]}, {"name": "me", "paths": ["/users/me"]}],
        {"path": "/users/me"},
        "me",
    ),
    (
        "a literal beats a mixed segment beats a parameter",
        [
            {"name": "param", "paths": ["/img/{file}"]},
            {"name": "mixed", "paths": ["/img/{name}.png"]},
        ],
        {"path": "/img/cat.png"},
        "mixed",
    ),
    (
        "literals count from the left",
        [{"name": "right", "paths": ["/{kind}/7"]}, {"name": "left", "paths": ["/users/{id}"]}],
        {"path": "/users/7"},
        "left",
    ),
    (
        "a deeper template beats a shallower plain prefix",
        [{"name": "plain", "paths": ["/api/v1"]}, {"name": "deep", "paths": ["/api/{v}/users"]}],
        {"path": "/api/v1/users"},
        "deep",
    ),
    (
        "a plain prefix beats a catch-all at the same depth",
        [{"name": "rest", "paths": ["/files/{p*}"]}, {"name": "plain", "paths": ["/files"]}],
        {"path": "/files/a"},
        "plain",
    ),
    (
        "a plain path beats a regex with default priority",
        [{"name": "regex", "paths": ["~^/api/v1/users$"]}, {"name": "plain", "paths": ["/"]}],
        {"path": "/api/v1/users"},
        "plain",
    ),
    (
        "a regex with positive priority beats every plain path",
        [
            {"name": "plain", "paths": ["/api/v1/users"], "priority": 50},
            {"name": "regex", "paths": ["~^/api/"], "priority": 1},
        ],
        {"path": "/api/v1/users"},
        "regex",
    ),
    (
        "a regex beats a route without a path condition",
        [{"name": "pathless", "methods": ["GET"]}, {"name": "regex", "paths": ["~^/x"]}],
        {"path": "/x"},
        "regex",
    ),
    (
        "a plain path beats a route without a path condition",
        [{"name": "pathless", "methods": ["GET"]}, {"name": "plain", "paths": ["/"]}],
        {"path": "/x"},
        "plain",
    ),
    (
        "more header/query conditions win at equal path",
        [
            {"name": "one", "paths": ["/"], "headers": {"x-a": "1"}},
            {"name": "two", "paths": ["/"], "headers": {"x-a": "1"}, "query": {"v": "2"}},
        ],
        {"headers": [(b"x-a", b"1")], "query": "v=2"},
        "two",
    ),
    (
        "conditions do not outrank path length",
        [
            {"name": "cond", "paths": ["/"], "headers": {"x-a": "1"}},
            {"name": "long", "paths": ["/x"]},
        ],
        {"path": "/x", "headers": [(b"x-a", b"1")]},
        "long",
    ),
    (
        "a method condition wins at equal conditions",
        [{"name": "any", "paths": ["/"]}, {"name": "get", "paths": ["/"], "methods": ["GET"]}],
        {},
        "get",
    ),
    (
        "priority breaks the remaining tie",
        [
            {"name": "low", "paths": ["/"], "priority": 1},
            {"name": "high", "paths": ["/"], "priority": 5},
        ],
        {},
        "high",
    ),
    (
        "priority does not outrank path length",
        [{"name": "short", "paths": ["/a"], "priority": 99}, {"name": "long", "paths": ["/a/b"]}],
        {"path": "/a/b"},
        "long",
    ),
    (
        "config order breaks a full tie",
        [{"name": "first", "paths": ["/"]}, {"name": "second", "paths": ["/"]}],
        {},
        "first",
    ),
    (
        "promoted regexes: higher priority first",
        [
            {"name": "p1", "paths": ["~^/"], "priority": 1},
            {"name": "p9", "paths": ["~^/x"], "priority": 9},
        ],
        {"path": "/x"},
        "p9",
    ),
    (
        "regexes of equal rank: config order",
        [{"name": "first", "paths": ["~^/"]}, {"name": "second", "paths": ["~^/x"]}],
        {"path": "/x"},
        "first",
    ),
    (
        "the best candidate failing its method falls through to the next",
        [
            {"name": "api", "paths": ["/api"]},
            {"name": "post", "paths": ["/api/v1"], "methods": ["POST"]},
        ],
        {"path": "/api/v1/x"},
        "api",
    ),
    (
        "a host tier with no match falls through to routes without hosts",
        [
            {"name": "nohost", "paths": ["/"]},
            {"name": "host", "hosts": ["gw.local"], "headers": {"x-a": "1"}},
        ],
        {},
        "nohost",
    ),
]


@pytest.mark.parametrize(
    ("routes", "request_fields", "expected"),
    [case[1:] for case in PRECEDENCE],
    ids=[case[0] for case in PRECEDENCE],
)
def test_precedence(
    routes: list[dict[str, Any]], request_fields: dict[str, Any], expected: str
) -> None:
    assert winner(build(*routes), **request_fields) == expected
    # Declaration order must not change the answer unless the rule is config order.
    if expected != "first":
        assert winner(build(*reversed(routes)), **request_fields) == expected


def test_the_deepest_of_a_routes_paths_is_reported() -> None:
    router = build({"name": "multi", "paths": ["/a", "/a/{b}/c"]})
    assert lookup(router, "/a/x/c/d") == RouteMatch("multi", {"b": "x"}, "/a/x/c", "/a/{b}/c")
    assert lookup(router, "/a/x") == RouteMatch("multi", {}, "/a", "/a")


def test_a_route_without_paths_matches_with_an_empty_matched_path() -> None:
    assert lookup(build({"name": "h", "hosts": ["gw.local"]}), "/x") == RouteMatch(
        "h", {}, "", ""
    )


# ------------------------------------------------------------------ 405 support

def test_allowed_methods() -> None:
    router = build(
        {"paths": ["/items"], "methods": ["GET", "HEAD"]},
        {"paths": ["/items/{id}"], "methods": ["PUT", "DELETE"]},
        {"paths": ["/admin"], "methods": ["POST"], "headers": {"x-admin": "1"}},
        {"paths": ["/open"]},
        {"hosts": ["other.test"], "paths": ["/items"], "methods": ["PATCH"]},
    )
    assert lookup(router, "/items/7", method="POST") is None
    # Every route whose other conditions hold contributes, across path depths.
    allowed = router.allowed_methods("gw.local", "/items/7", [], "")
    assert allowed == {"GET", "HEAD", "PUT", "DELETE"}
    assert router.allowed_methods("gw.local", "/items", [], "") == {"GET", "HEAD"}
    # Host routes and no-host routes both count for that host.
    assert router.allowed_methods("other.test:80", "/items", [], "") == {"GET", "HEAD", "PATCH"}
    # Header conditions still apply: without the header the answer is 404.
    assert router.allowed_methods("gw.local", "/admin", [], "") == frozenset()
    assert router.allowed_methods("gw.local", "/admin", [(b"x-admin", b"1")], "") == {"POST"}
    assert router.allowed_methods("gw.local", "/nothing", [], "") == frozenset()
    assert router.allowed_methods("gw.local", "/open", [], "") == HTTP_METHODS


def test_allowed_methods_agrees_with_match() -> None:
    router = build(
        {"paths": ["/a"], "methods": ["GET"]},
        {"paths": ["/a/b"], "methods": ["POST"], "query": {"v": "1"}},
        {"paths": ["~^/a/b"], "methods": ["PUT"], "priority": 3},
        {"hosts": ["*.local"], "paths": ["/a/{x}"], "methods": ["DELETE"]},
    )
    for path in ("/a", "/a/b", "/a/c", "/b"):
        for query in ("", "v=1"):
            allowed = router.allowed_methods("gw.local", path, [], query)
            matching = {
                m for m in HTTP_METHODS if lookup(router, path, method=m, query=query) is not None
            }
            assert allowed == matching, (path, query)


# ------------------------------------------------------------------ scale

def test_ten_thousand_routes_match_correctly() -> None:
    routes: list[tuple[Route, int]] = []
    for i in range(10_000):
        fields: dict[str, Any] = {"name": f"svc{i}"}
        if i % 4 == 0:
            fields["hosts"] = [f"svc{i}.example.com"]
        if i % 5 == 0:
            fields["methods"] = ["POST"]
        fields["paths"] = [f"/svc{i}/items/{{id}}"] if i % 3 == 0 else [f"/svc{i}"]
        routes.append((Route(**fields), i))
    routes.append((Route(name="wild", hosts=["*.example.com"], paths=["/"]), -1))
    router = Router(routes)

    for i in range(0, 10_000, 7):
        host = f"svc{i}.example.com" if i % 4 == 0 else "gw.local"
        method = "POST" if i % 5 == 0 else "GET"
        path = f"/svc{i}/items/{i * 3}/more" if i % 3 == 0 else f"/svc{i}/more"
        found = router.match(method, host, path, [], "")
        assert found is not None, path
        assert found.payload == i
        assert found.params == ({"id": str(i * 3)} if i % 3 == 0 else {})
        assert found.matched_path == path.removesuffix("/more")
        # Wrong method: 405 with exactly this route's methods (no other route matches).
        if i % 5 == 0 and i % 4 != 0:
            assert router.match("GET", host, path, [], "") is None
            assert router.allowed_methods(host, path, [], "") == {"POST"}
    # The host-bound routes do not answer for another host; the wildcard catches the rest.
    assert router.match("GET", "gw.local", "/svc4/more", [], "") is None
    wild = router.match("GET", "x.example.com", "/svc4/more", [], "")
    assert wild is not None and wild.payload == -1
    assert router.match("GET", "gw.local", "/svc10000", [], "") is None
    assert router.match("GET", "gw.local", "/svc1x", [], "") is None


def test_the_example_in_docs_routing_md_runs_as_documented() -> None:
    docs = Path(__file__).parents[2] / "docs" / "routing.md"
    code = docs.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    assert namespace["found"] == RouteMatch("users-service", {"id": "7"}, "/users/7", "/users/{id}")
    assert namespace["router"].allowed_methods("gw.example.com", "/users/7", [], "") == {"GET"}


# ---------------------------------------------------------------- remembered answers


def test_remembered_answers_equal_fresh_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Router, "CACHE_SIZE", 4)  # clears itself often
    router = build(
        {"name": "users", "paths": ["/users/{id}"], "methods": ["GET"]},
        {"name": "admin", "paths": ["/users/admin"], "hosts": ["admin.example.com"]},
        {"name": "all", "paths": ["/"]},
    )
    fresh = build(
        {"name": "users", "paths": ["/users/{id}"], "methods": ["GET"]},
        {"name": "admin", "paths": ["/users/admin"], "hosts": ["admin.example.com"]},
        {"name": "all", "paths": ["/"]},
    )
    cases = [(m, h, p) for m in ("GET", "POST") for h in ("x.test", "admin.example.com")
             for p in ("/users/7", "/users/admin", "/nope", "/users/8")]
    for _ in range(3):  # repeated: answers come from memory the second time
        for method, host, path in cases:
            got = router.match(method, host, path, [], "")
            want = fresh._match(method, host, path, [], "")
            assert (got and (got.payload, got.params, got.matched_path)) == (
                want and (want.payload, want.params, want.matched_path)), (method, host, path)


def test_routes_with_header_or_query_conditions_are_never_remembered() -> None:
    router = build(
        {"name": "beta", "paths": ["/api"], "headers": {"x-beta": "1"}},
        {"name": "api", "paths": ["/api"]},
    )
    assert winner(router, "/api", headers=[(b"x-beta", b"1")]) == "beta"
    assert winner(router, "/api") == "api"
    assert winner(router, "/api", headers=[(b"x-beta", b"1")]) == "beta"
