"""Generated configuration: the nginx upstream, the nginx proxy, campusgate, wrk scripts.

Everything here is a pure function from ports, paths and counts to file text, so the
generated files can be tested and read without starting anything.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HELLO_BODY",
    "JSON_BODY",
    "NO_ACCESS_LOG",
    "RouteTarget",
    "campusgate_yaml",
    "lua_string",
    "nginx_proxy_conf",
    "nginx_upstream_conf",
    "route_targets",
    "routes_lua",
]

HELLO_BODY = "hello"
#: The ``observe:`` section of every instance that measures the proxy without logging.
NO_ACCESS_LOG: dict[str, object] = {"access_log": {"enabled": False}}


def _json_body() -> str:
    # About 1 KB; letters and digits only, so it is safe inside a quoted nginx string
    # (no quote, no backslash, no ``$`` that nginx would read as a variable).
    items = [{"id": i, "name": f"student{i:03d}", "grade": 1 + i % 12, "active": i % 3 != 0}
             for i in range(16)]
    return json.dumps({"school": "bench", "students": items}, separators=(",", ":"))


JSON_BODY = _json_body()

# Headers the nginx proxy adds so it does the same work campusgate does on each
# request: forwarded-for/proto/host and a request id, both ways.
_NGINX_PROXY_HEADERS = """
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $request_id;
            add_header X-Request-Id $request_id always;"""


def _nginx_common(prefix: Path, workers: int, run_as: str | None, cpus: str | None) -> str:
    user = f"user {run_as};\n" if run_as else ""
    affinity = f"worker_cpu_affinity {cpus};\n" if cpus else ""
    return f"""{user}worker_processes {workers};
{affinity}daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
    multi_accept on;
}}
"""


def _nginx_http_common(prefix: Path) -> str:
    return f"""    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
"""


def nginx_upstream_conf(prefix: Path, port: int, workers: int, run_as: str | None = None,
                        cpus: str | None = None) -> str:
    """The origin every scenario calls: ``/json`` answers ~1 KB of JSON, all else "hello".

    ``cpus`` is an nginx ``worker_cpu_affinity`` value (e.g. ``"01 10"``) or None.
    """
    return _nginx_common(prefix, workers, run_as, cpus) + f"""http {{
{_nginx_http_common(prefix)}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /json {{
            default_type application/json;
            return 200 '{JSON_BODY}';
        }}
        location / {{
            default_type text/plain;
            return 200 '{HELLO_BODY}';
        }}
    }}
}}
"""


def nginx_proxy_conf(prefix: Path, port: int, upstream_port: int, run_as: str | None = None,
                     cpus: str | None = None) -> str:
    """The baseline: one nginx worker reverse-proxying with keep-alive upstream connections."""
    return _nginx_common(prefix, 1, run_as, cpus) + f"""http {{
{_nginx_http_common(prefix)}
    upstream origin {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";{_NGINX_PROXY_HEADERS}
        }}
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """One request wrk sends in the routing scenario: a path and an optional Host."""

    path: str
    host: str | None = None


def _route(i: int) -> tuple[dict[str, object], RouteTarget]:
    """Route number ``i`` and a request that it (and only it) matches.

    Nine in ten are plain prefixes (``/svc{i}``), one in twenty a template
    (``/t{i}/users/{id}/orders``), one in twenty a host route (``h{i}.bench.test``).
    """
    name = f"r{i}"
    if i % 20 == 7:
        route: dict[str, object] = {"name": name, "paths": [f"/t{i}/users/{{id}}/orders"],
                                    "strip_path": False}
        return route, RouteTarget(f"/t{i}/users/{i * 7}/orders")
    if i % 20 == 13:
        host = f"h{i}.bench.test"
        route = {"name": name, "hosts": [host], "paths": ["/api"], "strip_path": False}
        return route, RouteTarget("/api/items", host)
    route = {"name": name, "paths": [f"/svc{i}"], "methods": ["GET", "HEAD"]}
    return route, RouteTarget(f"/svc{i}/items/{i}")


def campusgate_yaml(*, proxy_port: int, admin_port: int, upstream_port: int, storage: Path,
                    routes: int = 1, services: int = 1, state: str = "memory",
                    route_plugins: Sequence[dict[str, object]] = (),
                    global_plugins: Sequence[dict[str, object]] = (),
                    consumers: Sequence[dict[str, object]] = (),
                    identity: dict[str, object] | None = None,
                    access_log: bool = False) -> str:
    """A campusgate config in front of the origin.

    ``routes=1`` is one catch-all route on ``/`` (the ``plain`` scenario), which gets
    ``route_plugins``.  Otherwise ``routes`` generated routes (see
    :func:`route_targets`) are spread round-robin over ``services`` services that all
    point at the same origin.  ``global_plugins``, ``consumers`` and ``state`` are
    used as given (the authentication scenarios: ``cgbench/auth.py``), and so is
    ``identity``, the identity provider's section (``cgbench/idp.py``).

    ``access_log``: False (every scenario but ``access-log``'s logging instance) says
    ``observe: {access_log: {enabled: false}}``, the proxy without access records, as
    the nginx proxy runs without its access log; True leaves ``observe:`` out, so the
    instance logs as a user's does by default (store sink, roll-ups, metrics).
    """
    url = f"http://127.0.0.1:{upstream_port}"
    if routes == 1:
        route: dict[str, object] = {"name": "all", "paths": ["/"], "strip_path": False}
        if route_plugins:
            route["plugins"] = list(route_plugins)
        svc_list: list[dict[str, object]] = [{"name": "bench", "url": url, "routes": [route]}]
    else:
        buckets: list[list[dict[str, object]]] = [[] for _ in range(services)]
        for i in range(routes):
            buckets[i % services].append(_route(i)[0])
        svc_list = [{"name": f"svc{n}", "url": url, "routes": bucket}
                    for n, bucket in enumerate(buckets)]
    doc = {
        "listeners": {"proxy": {"address": f"127.0.0.1:{proxy_port}"},
                      "admin": {"address": f"127.0.0.1:{admin_port}"}},
        "storage": f"sqlite:///{storage}",
        "state": state,
        "services": svc_list,
    }
    if global_plugins:
        doc["plugins"] = list(global_plugins)
    if consumers:
        doc["consumers"] = list(consumers)
    if identity is not None:
        doc["identity"] = identity
    if not access_log:
        doc["observe"] = NO_ACCESS_LOG
    # JSON is valid YAML, and json.dumps is much faster than yaml.dump for 10k routes.
    return json.dumps(doc, indent=1) + "\n"


def route_targets(routes: int, seed: int = 1) -> list[RouteTarget]:
    """One matching request per generated route, in a fixed shuffled order."""
    targets = [_route(i)[1] for i in range(routes)]
    random.Random(seed).shuffle(targets)
    return targets


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def routes_lua(targets: list[RouteTarget]) -> str:
    """A wrk script cycling through ``targets``; requests are formatted once, at init."""
    rows = ",\n".join(
        f"  {{{lua_string(t.path)}, {lua_string(t.host) if t.host else 'nil'}}}"
        for t in targets
    )
    return f"""-- generated by benchmarks/cgbench/configs.py
local targets = {{
{rows}
}}
local reqs = {{}}
local n = 0
local i = 0

function init(args)
  for k, t in ipairs(targets) do
    local headers = nil
    if t[2] then headers = {{["Host"] = t[2]}} end
    reqs[k] = wrk.format("GET", t[1], headers)
  end
  n = #reqs
  -- each wrk thread starts at a different offset
  i = math.random(n) - 1
end

function request()
  i = i % n + 1
  return reqs[i]
end
"""
