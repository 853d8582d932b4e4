"""Settings of the ``sso`` plugin (see :mod:`campusgate.plugins.sso`), checked when the
config loads: URLs are http(s), ``openid`` is among the scopes, paths are paths, the
plugin's three paths differ, and the nested ``rules``, ``headers`` and
``upstream_jwt`` models (:mod:`campusgate.plugins._sso_rules`) hold their own checks.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campusgate.auth import http_url
from campusgate.plugins._sso_rules import AccessRules, IdentityHeaders, UpstreamJwt
from campusgate.plugins.base import PluginConfig

__all__ = ["CookieSettings", "SsoConfig"]

_COOKIE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_RELATIVE_OR_PATH = re.compile(r"^/?[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


class CookieSettings(BaseModel):
    """The session cookie."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Its name (sign-ins in progress use ``<name>_s_<state>``).
    name: str = "campusgate_sso"
    path: str = "/"
    #: null: this host only (the safest).
    domain: str | None = None
    #: Seconds a session lasts after sign-in, however active.
    lifetime: int = Field(default=28800, ge=60)
    #: Seconds without a request after which the session ends; 0: no idle timeout.
    idle_timeout: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _COOKIE_NAME.match(value):
            raise ValueError("a cookie name is 1-40 letters, digits, '_' or '-'")
        return value


class SsoConfig(PluginConfig):
    """Settings of the ``sso`` plugin."""

    #: The OpenID provider, found by discovery (``/.well-known/openid-configuration``
    #: under it): normally campusgate's own ``identity.issuer``.
    issuer: str
    #: The plugin's confidential client at the provider.
    client_id: str = Field(min_length=1)
    #: Its secret (a ``${ENV}`` reference; sent with HTTP Basic).
    client_secret: str = Field(min_length=1)
    #: Scopes asked for; ``openid`` is required, ``roster`` brings role, district,
    #: schools and groups from campusgate.
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email", "roster"])
    #: The app's public origin (``https://app.example.edu``); null: from the request's
    #: Host and scheme (``X-Forwarded-Proto`` from a trusted proxy counts).
    public_url: str | None = None
    #: Where the app lives; null: the first segment of the request path.
    base_path: str | None = None
    #: The redirect URI's path; relative paths are under ``base_path``.
    callback_path: str = "_sso/callback"
    #: Starts a sign-in; ``?rd=/path`` says where to come back to.
    login_path: str = "_sso/login"
    #: Ends the session; ``?rd=/path`` says where to go afterwards.
    logout_path: str = "_sso/logout"
    #: The session cookie: ``name``, ``path``, ``domain``, ``lifetime`` (seconds after
    #: sign-in), ``idle_timeout`` (seconds without a request; 0: none).
    cookie: CookieSettings = Field(default_factory=CookieSettings)
    #: Who may pass: ``roles``, ``districts``, ``schools``, ``groups``, ``email_domains``.
    rules: AccessRules = Field(default_factory=AccessRules)
    #: Identity headers for the upstream (set one to null to not send it).
    headers: IdentityHeaders = Field(default_factory=IdentityHeaders)
    #: The identity as a signed JWT: ``{header, secret, lifetime, issuer, audience}``.
    upstream_jwt: UpstreamJwt | None = None
    #: Where logout sends the browser: a path, or an absolute URL; null: ``base_path``.
    logout_redirect: str | None = None
    #: Logout also ends the provider's session (RP-initiated logout: register the
    #: ``logout_redirect`` URL as a post-logout redirect URI of the client).
    end_provider_session: bool = False
    #: Seconds to wait for the provider.
    timeout: float = Field(default=5.0, gt=0, le=60)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value).rstrip("/")

    @field_validator("base_path", "callback_path", "login_path", "logout_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and (not _RELATIVE_OR_PATH.match(value) or "//" in value):
            raise ValueError(f"{value!r} is not a path")
        return value

    @model_validator(mode="after")
    def _checks(self) -> SsoConfig:
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        paths = {self.callback_path, self.login_path, self.logout_path}
        if len(paths) != 3:
            raise ValueError("callback_path, login_path and logout_path must differ")
        return self
