"""An app written for ClassLink, pointed at a real ``campusgate serve`` by changing its
two base URLs, works unchanged: the browser signs in through campusgate, the app
posts ClassLink's token form and reads ``/v2/my/info`` and the OneRoster paths."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from identity_harness import ServedGateway, serve_gateway, sign_in
from sandbox_kit import CLASSIC_CALLBACK, SECRETS, District, add_district

from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine

IDENTITY = f"""\
  clients:
    - client_id: classic
      name: Classic App
      client_secret: {SECRETS["classic"]}
      token_endpoint_auth_method: client_secret_post
      redirect_uris: [{CLASSIC_CALLBACK}]
      scopes: [openid, profile, email, roster]
  classlink_sandbox:
    state_name: Texas
    state_id: 44
"""


class ClassLinkApp:
    """A client written the way ClassLink's official libraries (``classlink-oauth2``)
    call ClassLink; only the two base URLs are the sandbox's."""

    def __init__(self, launchpad: str, nodeapi: str) -> None:
        self.auth_url = f"{launchpad}/oauth2/v2/auth"
        self.exchange_url = f"{launchpad}/oauth2/v2/token"
        self.info_url = f"{nodeapi}/"
        self.client_id, self.client_secret = "classic", SECRETS["classic"]

    def get_code_url(self, scope: str, redirect_uri: str) -> str:
        payload = {"client_id": self.client_id, "scope": scope,
                   "redirect_uri": redirect_uri, "response_type": "code"}
        return f"{self.auth_url}?{urlencode(payload)}"

    def get_token(self, code: str) -> dict[str, Any]:
        payload = {"client_id": self.client_id, "client_secret": self.client_secret,
                   "code": code}
        body: dict[str, Any] = httpx.post(self.exchange_url, data=payload).json()
        return body

    def get_info(self, bearer: str, endpoint: str) -> Any:
        answer = httpx.get(f"{self.info_url}{endpoint}",
                           headers={"Authorization": f"bearer {bearer}"})
        return answer.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedGateway,
                                                                       District]]:
    workdir = tmp_path_factory.mktemp("sandbox")
    gateway = serve_gateway(workdir, IDENTITY)
    try:
        ada = gateway.create_user("ada", "ada-password-123", name="Ada Lovelace")
        ben = gateway.create_user("ben", "ben-password-123", email="ben@lincoln.example.edu")
        district = asyncio.run(_roster(workdir, ada["user"]["id"], ben["user"]["id"]))
        yield gateway, district
    finally:
        gateway.stop()


async def _roster(workdir: Path, ada: str, ben: str) -> District:
    engine = create_engine(async_url(f"sqlite:///{workdir / 'data' / 'cg.db'}"))
    try:
        return await add_district(engine, ada_account=ada, ben_account=ben)
    finally:
        await engine.dispose()


def _sign_in(gateway: ServedGateway, url: str, username: str, consent: str) -> httpx.URL:
    with httpx.Client(base_url=gateway.proxy) as browser:
        return sign_in(browser, url, username, f"{username}-password-123", consent=consent)


def test_an_app_written_for_classlink_works_unchanged(
        served: tuple[ServedGateway, District]) -> None:
    gateway, district = served
    app = ClassLinkApp(launchpad=gateway.proxy, nodeapi=gateway.proxy)
    back = _sign_in(gateway, app.get_code_url("profile oneroster", CLASSIC_CALLBACK),
                    "ben", "allow")
    assert str(back).startswith(CLASSIC_CALLBACK)
    query = parse_qs(back.query.decode())
    assert query["response_type"] == ["code"]  # as ClassLink's redirect has it

    token = app.get_token(query["code"][0])
    assert set(token) == {"access_token", "token_type", "response_type", "id_token",
                          "expires_in"}

    info = app.get_info(token["access_token"], "v2/my/info")
    assert info["UserId"] == district.ben_row_id
    assert (info["TenantId"], info["Tenant"]) == (district.tenant_id,
                                                  "Lincoln Unified School District")
    assert (info["StateId"], info["StateName"]) == (44, "Texas")
    assert (info["Role"], info["SourcedId"], info["Building"]) == \
        ("Student", "st-ben", "Lincoln High")

    classes = app.get_info(token["access_token"], "v2/oneroster/my/classes")
    assert [c["title"] for c in classes["classes"]] == ["Biology 9"]
    teachers = app.get_info(token["access_token"],
                            "v2/oneroster/my/classes/cls-bio/teachers")
    assert [t["givenName"] for t in teachers["teachers"]] == ["Ada"]

    again = httpx.post(app.exchange_url, data={
        "client_id": "classic", "client_secret": SECRETS["classic"],
        "code": query["code"][0]})
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_declining_sends_access_denied(served: tuple[ServedGateway, District]) -> None:
    gateway, _ = served
    app = ClassLinkApp(launchpad=gateway.proxy, nodeapi=gateway.proxy)
    back = _sign_in(gateway, app.get_code_url("profile", CLASSIC_CALLBACK), "ada", "deny")
    assert parse_qs(back.query.decode())["error"] == ["access_denied"]


def test_a_teacher_of_the_demo_district(served: tuple[ServedGateway, District]) -> None:
    """``seed-demo`` (the roster import) links people to accounts: a demo teacher
    signs in the ClassLink way and sees their classes and students."""
    gateway, _ = served
    with gateway.admin_client() as admin:
        seeded = admin.post("/identity/roster/demo", json={"password": "demo-password-1"},
                            timeout=120)
    assert seeded.status_code == 201, seeded.text
    teacher = next(p for p in seeded.json()["people"] if p["role"] == "teacher")
    app = ClassLinkApp(launchpad=gateway.proxy, nodeapi=gateway.proxy)
    with httpx.Client(base_url=gateway.proxy) as browser:
        back = sign_in(browser, app.get_code_url("full", CLASSIC_CALLBACK),
                       teacher["username"], "demo-password-1")
    token = app.get_token(parse_qs(back.query.decode())["code"][0])["access_token"]

    info = app.get_info(token, "v2/my/info")
    assert (info["Role"], info["TenantId"]) == ("Teacher", seeded.json()["tenant"]["id"])
    assert info["DisplayName"] == teacher["name"]
    classes = app.get_info(token, "v2/oneroster/my/classes")["classes"]
    assert classes and all(c["metadata"]["role"] == "teacher" for c in classes)
    students = app.get_info(
        token, f"v2/oneroster/my/classes/{classes[0]['sourcedId']}/students")["students"]
    assert students and all(s["role"] == "student" for s in students)
