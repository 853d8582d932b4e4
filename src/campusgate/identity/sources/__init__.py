"""Upstream login sources: sign in with ClassLink or any OpenID Connect provider.

campusgate's identity provider is a confidential client of the source (state, nonce,
PKCE), checks its ID token, learns who the person is (and, for ClassLink, their
district, school, role and classes), links or creates the local account, and then
answers the application's own request as after a local sign-in -- so apps get
standard OIDC tokens with refresh tokens and roster claims.

Modules: ``start`` (the button, a LaunchPad launch), ``flow`` (state, nonce, PKCE),
``provider`` (endpoints from discovery), ``connections`` (one HTTP client per source,
its endpoints and key sets kept), ``exchange`` (code for tokens, user info),
``profile`` (answers into a profile), ``links`` (accounts), ``callback``, ``errors``.
What they share with the ``sso`` plugin lives in :mod:`campusgate.auth`:
``discovery``, ``provider_cache`` (kept with backoff on failures), ``pkce``,
``token_request``, ``retry`` (backoff with jitter) and ``id_token``.
"""

from __future__ import annotations

from starlette.routing import Route

from campusgate.identity.paths import SOURCES
from campusgate.identity.sources.callback import callback
from campusgate.identity.sources.start import launch, start

__all__ = ["routes"]


def routes(issuer_path: str) -> list[Route]:
    base = issuer_path + SOURCES + "/{name}"
    return [Route(base + "/start", start, methods=["GET"]),
            Route(base + "/launch", launch, methods=["GET"]),
            Route(base + "/callback", callback, methods=["GET"])]
