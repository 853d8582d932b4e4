"""campusgate as a ClassLink test district: ClassLink's own paths, answered by the
identity provider (opt-in: ``identity.classlink_sandbox``, ``config/classlink_sandbox.py``).

An app written for ClassLink calls two hosts: LaunchPad (``/oauth2/v2/auth``,
``/oauth2/v2/token``) and the data API (``/v2/my/...``, ``/v2/oneroster/my/...``).
Both are served here under the issuer, so the app changes two base URLs and nothing
else.  Behind ClassLink's wire format everything is campusgate's own: the standard
authorization endpoint (login, consent, sessions, redirect URI match, PKCE), the real
authorization code grant, campusgate's tokens, the roster read API.

- ``authorize``: ``/oauth2/v2/auth`` translated onto ``/oauth2/authorize``;
- ``token``: ``/oauth2/v2/token``, ClassLink's form in, ClassLink's answer out;
- ``caller``: the bearer token of a data API request, checked;
- ``my`` and ``oneroster``: the data API endpoints; ``shapes`` their JSON (no I/O).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from campusgate.identity.classlink import authorize, my, oneroster, token

__all__ = ["routes"]


def routes(issuer_path: str) -> list[BaseRoute]:
    """Every ClassLink-shaped route; each answers 404 while the sandbox is off."""
    found: list[BaseRoute] = []
    for module in (authorize, token, my, oneroster):
        found += module.routes(issuer_path)
    return found
