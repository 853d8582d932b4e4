"""Upstream login sources of the identity provider (``identity.sources``).

A login source is another identity provider people may sign in with instead of a
local password: ClassLink (a preset: only the client id and secret to enter) or any
OpenID Connect provider found by its discovery document (Google, Microsoft Entra, a
district's own IdP).  campusgate is a confidential client of the source
(``identity/sources/``); the login page shows one button per source.

The client secret arrives in plaintext (``${ENV}`` allowed) and is sealed into
``client_secret_encrypted`` (``enc1$``, the installation keyring: campusgate must send
it back to the source, so it is encrypted, not hashed; ``config/sealing.py``).

``provision`` decides what a first sign-in does: ``auto`` creates the local account
just in time; ``link-only`` only links an existing account whose email the source
says it has verified (an unverified email never links: whoever controls the source
could otherwise take over any local account).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from campusgate.config import identity  # is_loopback_host (identity imports this module)
from campusgate.config.common import StrictModel

__all__ = [
    "CLASSLINK_SCOPES",
    "SOURCE_NAME_PATTERN",
    "ClassLinkSource",
    "LoginSource",
    "OidcSource",
]

SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: The scope values ClassLink knows.
CLASSLINK_SCOPES = ("profile", "email", "oneroster", "openid", "full")
ClassLinkScope = Literal["profile", "email", "oneroster", "openid", "full"]


def _classlink_scopes() -> list[ClassLinkScope]:
    return ["openid", "profile", "oneroster"]


def _check_url(value: str, what: str) -> str:
    """An https URL (http only on a loopback host, for local stand-ins)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an https URL")
    if parts.scheme == "http" and not identity.is_loopback_host(parts.hostname):
        raise ValueError(f"{what} must use https (http only for localhost)")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not have a query or fragment")
    return value.rstrip("/")


class _Source(StrictModel):
    """What every login source has."""

    name: str = Field(pattern=SOURCE_NAME_PATTERN)
    #: The login page's button: "Sign in with <label>".
    label: str | None = Field(default=None, max_length=100)
    client_id: str = Field(min_length=1, max_length=512)
    #: Plaintext (from YAML or the admin API); sealed into ``client_secret_encrypted``.
    client_secret: str | None = Field(default=None, min_length=1, max_length=4096)
    client_secret_encrypted: str | None = Field(default=None, pattern=r"^enc1\$")
    #: ``auto``: create a local account on first sign-in; ``link-only``: only link an
    #: existing account with the same verified email.
    provision: Literal["auto", "link-only"] = "auto"
    #: Seconds to wait for each answer of the source.
    timeout: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _one_secret(self) -> _Source:
        if (self.client_secret is None) == (self.client_secret_encrypted is None):
            raise ValueError(f"login source {self.name!r} needs exactly one of "
                             "client_secret or client_secret_encrypted")
        return self

    @property
    def button(self) -> str:
        return self.label or self.name


class ClassLinkSource(_Source):
    """Sign in with ClassLink: LaunchPad's OAuth 2.0 endpoints and its user API."""

    type: Literal["classlink"]
    name: str = Field(default="classlink", pattern=SOURCE_NAME_PATTERN)
    label: str | None = Field(default="ClassLink", max_length=100)
    #: ``openid`` for a signed ID token, ``profile`` for who the person is (role,
    #: district, school), ``oneroster`` for their classes.
    scopes: list[ClassLinkScope] = Field(default_factory=_classlink_scopes)
    #: Where LaunchPad lives (authorize, token, discovery, keys).
    launchpad_url: str = "https://launchpad.classlink.com"
    #: Where ClassLink's user API lives (``/v2/my/info``).
    api_url: str = "https://nodeapi.classlink.com"

    @field_validator("launchpad_url", "api_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _check_url(value, "a ClassLink base URL")

    @property
    def issuer(self) -> str:
        """The ``iss`` of ClassLink's ID tokens: LaunchPad itself."""
        return self.launchpad_url


class OidcSource(_Source):
    """Any OpenID Connect provider, configured from its discovery document."""

    type: Literal["oidc"]
    #: The provider's issuer; its discovery document is at
    #: ``issuer + /.well-known/openid-configuration`` unless ``discovery_url`` says.
    issuer: str
    discovery_url: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    #: The claim that becomes the local username on first sign-in.
    username_claim: str = "preferred_username"
    #: Claims of the source copied into the account's roster claims, as
    #: ``{roster claim: source claim}`` (e.g. ``{role: edu_role, tenant_id: tid}``).
    roster_claims: dict[str, str] = Field(default_factory=dict)
    #: Only people whose email is in one of these domains may sign in (empty: anyone).
    email_domains: list[str] = Field(default_factory=list)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _check_url(value, "issuer")

    @field_validator("discovery_url")
    @classmethod
    def _discovery(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "discovery_url")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("an OpenID Connect source's scopes must include openid")
        return value

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in value if d.strip()]

    @property
    def discovery(self) -> str:
        return self.discovery_url or self.issuer + "/.well-known/openid-configuration"


LoginSource = Annotated[ClassLinkSource | OidcSource, Field(discriminator="type")]
