"""The identity provider scenarios as run: their campusgate instances and their load.

Each scenario gets a campusgate of its own (``cgbench/idp.py`` generates the
config), pinned like every proxy under test.  Before any load the harness reads the
OpenID discovery document and takes the endpoints from it, and checks with one real
request that each endpoint answers what a client needs (a token of the right
format; a sign-in and a complete code flow, done by the driver before its clock
starts; a 401 without a token and a 200 with one on the ``jwt`` route): a
misconfigured instance would otherwise measure error pages.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cgbench import auth, idp
from cgbench.procs import StartError, free_port, http_request

if TYPE_CHECKING:
    from cgbench.bench import Bench

__all__ = ["IdentityBench"]

BENCH_DIR = Path(__file__).resolve().parents[1]
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class _Instance:
    name: str
    port: int
    admin: int
    pid: int
    #: authorization_endpoint, token_endpoint, jwks_uri: paths, from discovery.
    endpoints: dict[str, str]


class IdentityBench:
    """Runs ``idp-tokens``, ``idp-flows``, ``idp-jwt`` and ``idp-sso`` for one
    :class:`Bench`."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def run(self, names: list[str]) -> None:
        scenarios = {"idp-tokens": self.tokens, "idp-flows": self.flows,
                     "idp-jwt": self.jwt, "idp-sso": self.sso}
        if idp.IDP_JWT in names or idp.IDP_SSO in names:
            self.bench.plain_reference()
        for name in idp.IDP_SCENARIOS:
            if name in names:
                self.bench.scenarios[name] = scenarios[name]()

    # ------------------------------------------------------------ instances

    def start(self, name: str, route: str | None = None) -> _Instance:
        b = self.bench
        port, admin = free_port(), free_port()
        text = idp.idp_yaml(proxy_port=port, admin_port=admin, upstream_port=b.upstream_port,
                            storage=b.home(name) / "campusgate.db", route=route)
        started = time.monotonic()
        # The identity app is built on its first request: the probe builds it.
        pid = b.launch_campusgate(name, text, port, admin, "/.well-known/openid-configuration")
        status, body = http_request(port, "GET", "/.well-known/openid-configuration")
        try:
            endpoints = idp.endpoints_from_discovery(json.loads(body), idp.issuer_of(port))
        except (ValueError, idp.IdpError) as exc:
            raise StartError(f"{name}: discovery ({status}): {exc}") from exc
        b.say(f"{name}: identity provider up in {time.monotonic() - started:.1f} s")
        return _Instance(name, port, admin, pid, endpoints)

    def fetch_token(self, inst: _Instance, fmt: str,
                    conn: http.client.HTTPConnection | None = None) -> str:
        """One client_credentials token of format ``fmt`` (``jwt`` or ``opaque``)."""
        client = idp.TOKEN_CLIENTS[fmt]
        status, body = http_request(
            inst.port, "POST", inst.endpoints["token_endpoint"],
            idp.client_credentials_body().encode(),
            {**_FORM, "Authorization": idp.basic_auth(client, idp.SECRETS[client])}, conn=conn)
        try:
            return idp.token_from_response(status, body, fmt)
        except idp.IdpError as exc:
            raise StartError(f"{inst.name}: {exc}\n"
                             + self.bench.procs.log_tail(inst.name)) from exc

    # ------------------------------------------------------------ scenarios

    def tokens(self) -> dict[str, Any]:
        """client_credentials tokens per second, JWT and opaque, with wrk."""
        b = self.bench
        inst = self.start("campusgate-idp-tokens")
        path = inst.endpoints["token_endpoint"]
        cells: dict[str, Any] = {}
        for fmt, client in idp.TOKEN_CLIENTS.items():
            self.fetch_token(inst, fmt)
            script = b.home(inst.name) / f"token-{fmt}.lua"
            script.write_text(idp.token_lua(client, idp.SECRETS[client]))
            cells[fmt] = b.throughput(f"idp-tokens/{fmt}", inst.port, path, script=script,
                                      pid=inst.pid, timeout=idp.TOKEN_TIMEOUT)
        b.procs.stop(inst.name)
        return {"grant": "client_credentials", "client_auth": "client_secret_basic",
                "scope": idp.API_SCOPE, "wrk_timeout_s": idp.TOKEN_TIMEOUT, "formats": cells}

    def flows(self) -> dict[str, Any]:
        """Sign-ins per second and code flows per second, with the browser driver."""
        b = self.bench
        inst = self.start("campusgate-idp-flows")
        self.create_user(inst)
        result: dict[str, Any] = {"client": idp.FLOW_CLIENT, "scope": idp.FLOW_SCOPE}
        result["signin"] = self.drive(inst, "signin", b.settings.signin_browsers)
        result["flows"] = self.drive(inst, "flows", b.settings.browsers)
        b.procs.stop(inst.name)
        return result

    def jwt(self) -> dict[str, Any]:
        """The plain route with the ``jwt`` plugin on campusgate-issued tokens."""
        b = self.bench
        inst = self.start("campusgate-idp-jwt", route="jwt")
        if (status := http_request(inst.port, "GET", "/")[0]) != 401:
            raise StartError(f"{inst.name}: the jwt route answered {status} without a token")
        conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=30)
        try:
            tokens = [self.fetch_token(inst, "jwt", conn) for _ in range(idp.JWT_TOKEN_COUNT)]
        finally:
            conn.close()
        if len(set(tokens)) != len(tokens):
            raise StartError(f"{inst.name}: the token endpoint issued the same token twice")
        b.check_admitted(inst.name, inst.port, (f"Authorization: Bearer {tokens[0]}",),
                         rate_limited=False)
        cells: dict[str, Any] = {}
        for body, path in b.bodies().items():
            script = b.home(inst.name) / f"jwt-{body}.lua"
            script.write_text(auth.jwt_lua(tokens, path))
            cells[body] = b.throughput(f"{idp.IDP_JWT}/{body}", inst.port, path,
                                       script=script, pid=inst.pid)
        b.procs.stop(inst.name)
        return {"plugins": idp.IDP_JWT_SUMMARY, "bodies": cells,
                "jwks_uri": inst.endpoints["jwks_uri"]}

    def sso(self) -> dict[str, Any]:
        """The plain route behind the ``sso`` plugin, with signed-in browsers' cookies."""
        b = self.bench
        inst = self.start("campusgate-idp-sso", route="sso")
        self.create_user(inst)
        if (status := http_request(inst.port, "GET", "/", headers={"Accept": "text/html"})[0]
                ) != 302:
            raise StartError(f"{inst.name}: the sso route answered {status} without a session")
        cookies = [self.sso_session(inst) for _ in range(idp.SSO_SESSIONS)]
        if len(set(cookies)) != len(cookies):
            raise StartError(f"{inst.name}: two sign-ins got the same session cookie")
        b.check_admitted(inst.name, inst.port, (f"Cookie: {cookies[0]}",), rate_limited=False)
        cells: dict[str, Any] = {}
        for body, path in b.bodies().items():
            script = b.home(inst.name) / f"sso-{body}.lua"
            script.write_text(auth.rotating_header_lua("Cookie", cookies, path))
            cells[body] = b.throughput(f"{idp.IDP_SSO}/{body}", inst.port, path,
                                       script=script, pid=inst.pid)
        b.procs.stop(inst.name)
        return {"plugins": idp.IDP_SSO_SUMMARY, "bodies": cells}

    # ------------------------------------------------------------ helpers

    def sso_session(self, inst: _Instance) -> str:
        """One browser's sign-in through the ``sso`` plugin: the ``name=value`` of its
        session cookie."""
        base = f"http://127.0.0.1:{inst.port}"
        html = {"Accept": "text/html"}
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as browser:
            page = browser.get("/", headers=html)
            try:
                form = idp.login_form(page.text)
            except idp.IdpError as exc:
                raise StartError(f"{inst.name}: no login page after the sso redirect "
                                 f"({page.status_code} {page.url})") from exc
            fields = {**form.hidden, "username": idp.USERNAME, "password": idp.PASSWORD}
            done = browser.post(str(page.url.join(form.action)), data=fields, headers=html)
            session = browser.cookies.get("campusgate_sso")
            if done.status_code != 200 or not session:
                raise StartError(f"{inst.name}: signing in through sso ended with "
                                 f"{done.status_code} at {done.url}\n"
                                 + self.bench.procs.log_tail(inst.name))
            return f"campusgate_sso={session}"

    def create_user(self, inst: _Instance) -> None:
        """The browsers' user, through the admin API (``POST /identity/users``)."""
        b = self.bench
        token = idp.admin_token_from_log(b.procs.log_path(inst.name).read_text(errors="replace"))
        if token is None:
            raise StartError(f"{inst.name}: no admin token in its log (not a first start?)")
        status, body = http_request(
            inst.admin, "POST", "/identity/users",
            json.dumps({"username": idp.USERNAME, "password": idp.PASSWORD}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        if status not in (200, 201):
            raise StartError(f"{inst.name}: creating the user answered {status}: "
                             f"{body[:300].decode(errors='replace')}")

    def drive(self, inst: _Instance, mode: str, browsers: int) -> dict[str, Any]:
        """``runs`` runs of the browser driver (``cgbench/flows.py``); the median by rate."""
        b, s = self.bench, self.bench.settings
        argv = [sys.executable, "-m", "cgbench.flows", "--port", str(inst.port),
                "--mode", mode, "--browsers", str(browsers), "--duration", str(s.duration),
                "--warmup", str(s.warmup), "--worker-pid", str(inst.pid),
                "--authorize-path", inst.endpoints["authorization_endpoint"],
                "--token-path", inst.endpoints["token_endpoint"]]
        if s.load_cpu is not None:
            argv = ["taskset", "-c", s.load_cpu, *argv]
        runs: list[dict[str, Any]] = []
        for _ in range(s.runs):
            out = subprocess.run(argv, capture_output=True, text=True, check=False,
                                 cwd=BENCH_DIR, timeout=s.warmup + s.duration + 300)
            if out.returncode != 0:
                raise StartError(f"{inst.name}: the {mode} driver failed: "
                                 f"{out.stderr.strip()[-2000:]}\n" + b.procs.log_tail(inst.name))
            runs.append(json.loads(out.stdout))
        best = sorted(runs, key=lambda r: float(r["rate"]))[(len(runs) - 1) // 2]
        errors = sum(int(r["errors"]) for r in runs)
        lat = best.get("latency", {})
        b.say(f"idp-flows/{mode}: {best['rate']:,.1f}/s, p50 {lat.get('p50_ms', 0):.1f} ms, "
              f"p99 {lat.get('p99_ms', 0):.1f} ms, worker CPU {best.get('cpu_us_per_op')} us/op, "
              f"driver busy {best.get('driver_busy')}" + (f", {errors} ERRORS" if errors else ""))
        return {"runs": runs, "median": best}

