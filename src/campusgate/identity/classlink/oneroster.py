"""ClassLink's ``/v2/oneroster/my/...`` endpoints: the caller's roster, in OneRoster
1.1's REST JSON (scope ``roster``, what ClassLink's ``oneroster`` becomes).

- ``GET /v2/oneroster/my/info`` -- ``{"user": {...}}``, the caller's roster record
  (404 for an account that is not rostered);
- ``GET /v2/oneroster/my/classes`` -- ``{"classes": [...]}``, their active classes
  (each with ``metadata.role``: how they are enrolled in it);
- ``GET /v2/oneroster/my/classes/{sourcedId}/students`` and ``.../teachers`` -- the
  class's active students or teachers, for a caller enrolled in it (404 otherwise:
  other classes are not theirs to see).  The list is given twice: as ``users``
  (OneRoster's ``getStudentsForClass``) and as ``students`` / ``teachers`` -- the
  node ClassLink's official libraries read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from campusgate.identity.classlink.caller import Caller, Handler, protected
from campusgate.identity.classlink.my import NO_STORE
from campusgate.identity.classlink.shapes import oneroster_class, oneroster_user

__all__ = ["MY_CLASSES", "MY_ROSTER_INFO", "routes"]

MY_ROSTER_INFO = "/v2/oneroster/my/info"
MY_CLASSES = "/v2/oneroster/my/classes"
#: Path segment -> the enrollment role it lists.
_MEMBERS = {"students": "student", "teachers": "teacher"}


def _not_found(description: str) -> Response:
    return JSONResponse({"error": "not_found", "error_description": description},
                        status_code=404, headers=NO_STORE)


async def info(request: Request, caller: Caller) -> Response:
    person = await caller.ctx.roster.person_for_account(caller.user.id)
    if person is None:
        return _not_found("this account has no roster record")
    return JSONResponse({"user": oneroster_user(person)}, headers=NO_STORE)


async def classes(request: Request, caller: Caller) -> Response:
    roster = caller.ctx.roster
    person = await roster.person_for_account(caller.user.id)
    found = await roster.classes_of(person) if person is not None else []
    return JSONResponse({"classes": [oneroster_class(c, e) for c, e in found]},
                        headers=NO_STORE)


def members(kind: str) -> Handler:
    """The handler of ``.../{sourcedId}/students`` or ``.../teachers``."""
    role = _MEMBERS[kind]

    async def handler(request: Request, caller: Caller) -> Response:
        roster = caller.ctx.roster
        class_id: str = request.path_params["sourced_id"]
        person = await roster.person_for_account(caller.user.id)
        mine = await roster.classes_of(person) if person is not None else []
        if person is None or not any(c.sourced_id == class_id for c, _ in mine):
            return _not_found("no such class among the caller's classes")
        users = [oneroster_user(p) for p in
                 await roster.members(person.tenant_id, class_id, role)]
        return JSONResponse({"users": users, kind: users}, headers=NO_STORE)

    return handler


def routes(issuer_path: str) -> list[Route]:
    base = issuer_path + MY_CLASSES
    return [
        Route(issuer_path + MY_ROSTER_INFO, protected("roster", info), methods=["GET"]),
        Route(base, protected("roster", classes), methods=["GET"]),
        *(Route(f"{base}/{{sourced_id}}/{kind}", protected("roster", members(kind)),
                methods=["GET"]) for kind in _MEMBERS),
    ]
