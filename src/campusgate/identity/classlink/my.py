"""ClassLink's ``/v2/my/...`` endpoints: who the caller is (scope ``profile``).

- ``GET /v2/my/info`` -- ClassLink's user info (``shapes.my_info``);
  ``LastAccessTime`` is when the caller signed in for this token.
- ``GET /v2/my/profileinfo`` -- the OpenID Connect claims the token's scopes release
  (as campusgate's UserInfo endpoint answers them).
- ``GET /v2/my/district`` -- the caller's district (``shapes.district_info``).

All under the issuer's path; ``Cache-Control: no-store`` (they are about a person).
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from campusgate.identity.claims import released_claims
from campusgate.identity.classlink.caller import Caller, protected
from campusgate.identity.classlink.placement import placement
from campusgate.identity.classlink.shapes import district_info, my_info

__all__ = ["MY_DISTRICT", "MY_INFO", "MY_PROFILEINFO", "NO_STORE", "routes"]

MY_INFO = "/v2/my/info"
MY_PROFILEINFO = "/v2/my/profileinfo"
MY_DISTRICT = "/v2/my/district"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def info(request: Request, caller: Caller) -> Response:
    where = await placement(caller.ctx, caller.user)
    signed_in = caller.token.auth_time or caller.ctx.now()
    return JSONResponse(my_info(caller.user, where, caller.sandbox,
                                datetime.fromtimestamp(signed_in, UTC)), headers=NO_STORE)


async def profile_info(request: Request, caller: Caller) -> Response:
    claims = released_claims(caller.user, caller.token.scopes, caller.ctx.config.scopes)
    return JSONResponse(claims, headers=NO_STORE)


async def district(request: Request, caller: Caller) -> Response:
    where = await placement(caller.ctx, caller.user)
    return JSONResponse(district_info(caller.user, where, caller.sandbox),
                        headers=NO_STORE)


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + path, protected("profile", handler), methods=["GET"])
            for path, handler in ((MY_INFO, info), (MY_PROFILEINFO, profile_info),
                                  (MY_DISTRICT, district))]
