"""The school pieces together, on a cluster: an app behind the ``sso`` plugin, whose
users sign in at campusgate's identity provider through ClassLink (the stand-in),
served by two workers sharing Redis (sign-in state, sessions, codes) and PostgreSQL
(accounts and their links).  Every request opens a new connection, so one sign-in
crosses workers many times; the rule on the route reads the role ClassLink gave."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from classlink_standin import CLIENT_SECRET, ClassLinkStandIn
from identity_harness import ServedGateway, serve_gateway
from redis_servers import RedisServer
from sources_harness import Stop, browse

SSO_SECRET = "gradebook-sso-secret-0123456789"
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)

SERVICES = f"""\
  - name: gradebook
    url: builtin://echo
    routes:
      - {{name: gradebook, paths: [/gradebook]}}
    plugins:
      - name: sso
        config:
          issuer: "{{issuer}}"
          client_id: gradebook
          client_secret: {SSO_SECRET}
          rules: {{roles: [teacher, administrator]}}
"""


def identity_yaml(standin: str) -> str:
    return f"""\
  clients:
    - client_id: gradebook
      client_secret: {SSO_SECRET}
      redirect_uris: ["{{issuer}}/gradebook/_sso/callback"]
      scopes: [openid, profile, email, roster]
      require_consent: false
  sources:
    - type: classlink
      client_id: campusgate-at-classlink
      client_secret: ${{CLASSLINK_SECRET}}
      launchpad_url: {standin}
      api_url: {standin}
"""


def visit(gateway: ServedGateway, path: str) -> httpx.Response:
    """A new browser opens ``path`` of the app and signs in with ClassLink: the page it
    ends on (the app, or a refusal)."""
    with httpx.Client(limits=FRESH_CONNECTIONS, timeout=30,
                      headers={"accept": "text/html"}) as browser:
        try:
            left = browse(browser, gateway.proxy + path)
        except Stop as stop:
            return stop.response
    raise AssertionError(f"the sign-in left the servers for {left}")


@pytest.mark.timeout(240)  # two worker processes start: slow on a busy 2-core box
async def test_an_sso_app_signs_in_through_classlink_across_workers(
        tmp_path: Path, pg_dsn: str) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    standin = ClassLinkStandIn().start()
    try:
        gateway = await asyncio.to_thread(
            serve_gateway, tmp_path, identity_yaml(standin.url), SERVICES,
            {"CLASSLINK_SECRET": CLIENT_SECRET}, storage=pg_dsn, state=redis.url,
            workers=2)
        try:
            teacher = await asyncio.to_thread(visit, gateway, "/gradebook/report?term=2")
            assert teacher.status_code == 200, teacher.text
            assert str(teacher.url).endswith("/gradebook/report?term=2")
            seen = {k.lower(): v for k, v in json.loads(teacher.text)["headers"].items()}
            assert seen["x-forwarded-role"] == "teacher"
            assert seen["x-forwarded-tenant"] == "2001"
            assert seen["x-forwarded-email"] == "ada@springfield.k12.us"

            standin.person = {**standin.person, "Role": "Student", "SourcedId": "s-2002",
                              "UserId": 4712, "LoginId": "bstudent",
                              "Email": "b@springfield.k12.us"}
            student = await asyncio.to_thread(visit, gateway, "/gradebook/report")
            assert student.status_code == 403
        finally:
            assert await asyncio.to_thread(gateway.stop) == 0
    finally:
        standin.stop()
        redis.kill()
