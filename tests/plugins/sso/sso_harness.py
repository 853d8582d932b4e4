"""Helpers of the sso plugin tests (``from sso_harness import ...``): an upstream that
echoes what it received, a gateway with the identity provider and sso routes, and a
browser that signs in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from identity_harness import ServedGateway, free_port, html_forms, serve_gateway

__all__ = ["JWT_SECRET", "PASSWORD", "SSO_SECRET", "Browser", "echo_upstream",
           "sso_gateway"]

SSO_SECRET = "sso-secret-0123456789abcdef"
JWT_SECRET = "upstream-jwt-secret-0123456789abcdef"
PASSWORD = "correct horse battery staple"
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON: its path and the headers it came with."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"path": self.path, "method": self.command,
                           "headers": [[k.lower(), v] for k, v in self.headers.items()]})
        data = body.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def echo_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


IDENTITY = f"""\
  clients:
    - client_id: grades-sso
      name: Grades
      client_secret: {SSO_SECRET}
      redirect_uris: ["{{issuer}}/grades/_sso/callback", "{{issuer}}/staff/_sso/callback"]
      post_logout_redirect_uris: ["{{issuer}}/grades/"]
      scopes: [openid, profile, email, roster]
      require_consent: false
"""

_CLIENT = f'issuer: "{{issuer}}", client_id: grades-sso, client_secret: {SSO_SECRET}'


def _services(upstream: str, dead: str) -> str:
    return f"""\
  - name: grades
    url: {upstream}
    routes:
      - {{name: grades, paths: [/grades]}}
      - name: staff
        paths: [/staff]
        plugins:
          - name: sso
            config: {{{_CLIENT}, rules: {{roles: [teacher, administrator]}}}}
      - name: down
        paths: [/down]
        plugins:
          - name: sso
            config: {{issuer: "{dead}", client_id: grades-sso, client_secret: {SSO_SECRET}}}
    plugins:
      - name: sso
        config:
          issuer: "{{issuer}}"
          client_id: grades-sso
          client_secret: {SSO_SECRET}
          end_provider_session: true
          upstream_jwt: {{secret: {JWT_SECRET}, audience: grades}}
"""


@contextmanager
def sso_gateway(workdir: Path, upstream: str) -> Iterator[ServedGateway]:
    """campusgate serve with the identity provider, a teacher and a student, and the
    upstream behind ``/grades`` (sso), ``/staff`` (sso, teachers only) and ``/down``
    (sso with a provider that is not there)."""
    dead = f"http://127.0.0.1:{free_port()}"
    gateway = serve_gateway(workdir, IDENTITY, _services(upstream, dead))
    try:
        gateway.create_user("kim", PASSWORD, name="Kim Lee", email="kim@north.example.edu",
                            claims={"role": "teacher", "tenant_id": "2001",
                                    "school_ids": ["s-north"], "groups": ["staff"]})
        gateway.create_user("sam", PASSWORD, name="Sam Park",
                            claims={"role": "student", "tenant_id": "2001"})
        yield gateway
    finally:
        gateway.stop()


class Browser:
    """An httpx client that follows redirects itself, as a browser would, and signs in
    on the provider's login page when it gets there."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, headers=HTML, timeout=15)
        #: Every response seen, in order.
        self.trail: list[httpx.Response] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        answer = self.client.get(url, **kwargs)
        self.trail.append(answer)
        return answer

    def visit(self, url: str, username: str | None = None) -> httpx.Response:
        """Follow ``url`` to its end, signing in as ``username`` if asked to."""
        answer = self.get(url)
        for _ in range(12):
            if answer.is_redirect:
                answer = self.get(urljoin(str(answer.url), answer.headers["location"]))
                continue
            forms = html_forms(answer.text) if "text/html" in answer.headers.get(
                "content-type", "") else []
            login = next((f for f in forms if "password" in f.fields), None)
            if login is None or username is None:
                return answer
            data = login.submit_values(username=username, password=PASSWORD)
            answer = self.client.post(urljoin(str(answer.url), login.action or str(answer.url)),
                                      data=data)
            self.trail.append(answer)
        raise AssertionError("too many steps")
