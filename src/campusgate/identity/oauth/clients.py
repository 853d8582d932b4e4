"""Registered clients as Authlib sees them (RFC 6749 2; RFC 7591 2 metadata).

:class:`OAuthClient` adapts an :class:`~campusgate.config.identity.IdentityClient`
(the config entity) to Authlib's ``ClientMixin``: the questions Authlib's grants ask
of a client are answered here, and only here.

- **Redirect URIs** are compared by exact string (RFC 9700 2.1, 4.1.3), with the one
  exception RFC 8252 7.3 makes for native apps: on a loopback ``http`` URI the port
  may differ, because the app picks a free one at run time.  The host must still be
  the registered one (``127.0.0.1`` is not ``localhost``).
- **Secrets** are checked as keyed hashes (``hk1$...``, ``config/sealing.py``) in
  constant time; a client has no plaintext secret at run time.
- **Authentication method**: a client may authenticate only with its registered
  ``token_endpoint_auth_method``; a public client (``none``) may not introspect.
- **Scopes**: a request may name only scopes the client is allowed; it must name
  at least one (RFC 6749 3.3 leaves "default or fail" to the server: we fail, so
  that no client gets scopes it did not ask for).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin  # type: ignore[import-untyped]

from campusgate.config.identity import IdentityClient, is_loopback_host
from campusgate.keyring import Keyring

__all__ = ["OAuthClient", "normalise_scope", "redirect_uri_matches"]

#: Endpoints a public client may not call (it cannot keep a secret to prove who it is).
_CONFIDENTIAL_ONLY = frozenset({"introspection"})


def normalise_scope(scopes: Iterable[str]) -> list[str]:
    """Scope tokens in order of first appearance, duplicates dropped."""
    return list(dict.fromkeys(scopes))


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Whether ``presented`` is ``registered``: identical strings, or the same
    loopback ``http`` URI on another port (RFC 8252 7.3)."""
    if presented == registered:
        return True
    try:
        want, got = urlsplit(registered), urlsplit(presented)
        got.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        want.scheme == got.scheme == "http"
        and is_loopback_host(want.hostname)
        and want.hostname == got.hostname
        and got.username is None and got.password is None
        and want.path == got.path
        and want.query == got.query
        and not got.fragment and "#" not in presented
    )


class OAuthClient(ClientMixin):  # type: ignore[misc]
    """One registered client, answering Authlib's questions about it."""

    def __init__(self, config: IdentityClient, keyring: Keyring) -> None:
        self.config = config
        self.client_id = config.client_id
        self._keyring = keyring

    def __repr__(self) -> str:
        return f"<OAuthClient {self.client_id}>"

    # ------------------------------------------------------------ identity
    def get_client_id(self) -> str:
        return self.client_id

    @property
    def public(self) -> bool:
        return self.config.public

    @property
    def id_token_signed_response_alg(self) -> str:
        return self.config.id_token_signed_response_alg

    # ------------------------------------------------------------ redirects
    def get_default_redirect_uri(self) -> str | None:
        """The redirect URI a request may leave out: only when there is just one."""
        uris = self.config.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(registered, redirect_uri)
                   for registered in self.config.redirect_uris)

    # ------------------------------------------------------------ authentication
    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.config.client_secret_hash
        if stored is None:
            return False
        return hmac.compare_digest(self._keyring.hash_key(client_secret), stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method != self.config.token_endpoint_auth_method:
            return False
        return not (method == "none" and endpoint in _CONFIDENTIAL_ONLY)

    # ------------------------------------------------------------ grants and scopes
    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.config.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.config.grant_types

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """``scope`` normalised, or None when it is empty or names a scope the client
        may not have (Authlib answers ``invalid_scope``)."""
        requested = normalise_scope((scope or "").split())
        if not requested or not set(requested) <= set(self.config.scopes):
            return None
        return " ".join(requested)

    def scopes_within(self, scope: str | None) -> list[str]:
        """``scope`` ∩ the client's scopes; all of them when ``scope`` is empty."""
        allowed = self.config.scopes
        requested = normalise_scope((scope or "").split())
        if not requested:
            return list(allowed)
        return [s for s in requested if s in allowed]
