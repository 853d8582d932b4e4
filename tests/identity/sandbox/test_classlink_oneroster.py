"""ClassLink's ``/v2/oneroster/my/...`` endpoints (identity/classlink/oneroster.py):
the bearer's roster in OneRoster 1.1's JSON, only their own classes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_kit import add_district

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User


@pytest.fixture
async def ada(sandbox_ctx: IdentityContext) -> User:
    return await sandbox_ctx.directory.create_user("ada", name="Ada Lovelace")


@pytest.fixture
async def rostered(sandbox_ctx: IdentityContext, ada: User, ben: User) -> None:
    await add_district(sandbox_ctx.directory.engine, ada_account=ada.id,
                       ben_account=ben.id)


async def test_my_info_is_the_oneroster_user(http: httpx.AsyncClient, bearer: Any,
                                             ben: User, rostered: None) -> None:
    answer = await http.get("/v2/oneroster/my/info",
                            headers=await bearer(ben, "oneroster"))
    assert answer.status_code == 200, answer.text
    user = answer.json()["user"]
    assert (user["sourcedId"], user["role"], user["enabledUser"]) == \
        ("st-ben", "student", "true")
    assert user["orgs"] == [{"sourcedId": "s1", "type": "org"}]
    assert user["userIds"] == [{"type": "SIS", "identifier": "st-ben"}]
    assert user["dateLastModified"] == "2026-09-01T08:30:15.250Z"


async def test_my_classes(http: httpx.AsyncClient, bearer: Any, ben: User,
                          rostered: None) -> None:
    answer = await http.get("/v2/oneroster/my/classes",
                            headers=await bearer(ben, "oneroster"))
    classes = answer.json()["classes"]
    assert [c["sourcedId"] for c in classes] == ["cls-bio"]  # not Art: not his
    assert classes[0]["school"] == {"sourcedId": "s1", "type": "org"}
    assert classes[0]["course"] == {"sourcedId": "c-bio", "type": "course"}
    assert classes[0]["metadata"] == {"role": "student"}


@pytest.mark.parametrize(("who", "kind", "expected"), [
    ("ben", "students", ["st-ben", "st-cy"]),  # Dee's enrollment is tobedeleted
    ("ben", "teachers", ["t-ada"]),
    ("ada", "students", ["st-ben", "st-cy"]),
])
async def test_class_members(http: httpx.AsyncClient, bearer: Any, ben: User, ada: User,
                             rostered: None, who: str, kind: str,
                             expected: list[str]) -> None:
    user = {"ben": ben, "ada": ada}[who]
    answer = await http.get(f"/v2/oneroster/my/classes/cls-bio/{kind}",
                            headers=await bearer(user, "oneroster"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # ``users`` for OneRoster clients, the role's node for ClassLink's libraries
    assert [u["sourcedId"] for u in body["users"]] == expected
    assert body[kind] == body["users"]


@pytest.mark.parametrize("path", ["/v2/oneroster/my/classes/cls-art/students",
                                  "/v2/oneroster/my/classes/nope/teachers"])
async def test_someone_elses_class_is_404(http: httpx.AsyncClient, bearer: Any, ben: User,
                                          rostered: None, path: str) -> None:
    answer = await http.get(path, headers=await bearer(ben, "oneroster"))
    assert answer.status_code == 404


async def test_an_unrostered_account(http: httpx.AsyncClient, bearer: Any,
                                     ben: User) -> None:
    headers = await bearer(ben, "oneroster")
    assert (await http.get("/v2/oneroster/my/info", headers=headers)).status_code == 404
    classes = await http.get("/v2/oneroster/my/classes", headers=headers)
    assert classes.json() == {"classes": []}


async def test_the_oneroster_paths_need_the_oneroster_scope(
        http: httpx.AsyncClient, bearer: Any, ben: User, rostered: None) -> None:
    headers = await bearer(ben, "profile")
    for path in ("/v2/oneroster/my/info", "/v2/oneroster/my/classes",
                 "/v2/oneroster/my/classes/cls-bio/students"):
        answer = await http.get(path, headers=headers)
        assert answer.status_code == 403
        assert 'scope="roster"' in answer.headers["www-authenticate"]
