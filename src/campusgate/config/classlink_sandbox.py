"""The ClassLink-shaped sandbox (``identity.classlink_sandbox``): opt-in settings.

When enabled, campusgate's identity provider also answers ClassLink's own paths --
``/oauth2/v2/auth`` and ``/oauth2/v2/token`` (LaunchPad's) and ``/v2/my/...``,
``/v2/oneroster/my/...`` (the data API's) -- under its issuer, so an app written for
ClassLink works against campusgate by changing its two base URLs
(``identity/classlink/``, ``docs/classlink-sandbox.md``).  Off by default: without
this section those paths are 404 and discovery is unchanged.

ClassLink's scopes are not campusgate's: :attr:`ClassLinkSandbox.scopes` says which
campusgate scopes each one asks for.  ``openid`` is always added, because ClassLink
always answers a code with an ID token.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from campusgate.config.common import StrictModel

__all__ = ["DEFAULT_SCOPE_MAP", "ClassLinkSandbox"]

#: ClassLink scope -> the campusgate scopes it asks for (plus ``openid``, always).
DEFAULT_SCOPE_MAP: dict[str, list[str]] = {
    "profile": ["profile"],
    "email": ["email"],
    "oneroster": ["roster"],
    "openid": [],
    "full": ["profile", "email", "roster"],
}


def _default_scope_map() -> dict[str, list[str]]:
    return {name: list(scopes) for name, scopes in DEFAULT_SCOPE_MAP.items()}


class ClassLinkSandbox(StrictModel):
    """campusgate as a ClassLink test district (see the module docstring)."""

    #: Serve ClassLink's paths.  The section present and ``enabled: false`` keeps the
    #: settings while the paths answer 404.
    enabled: bool = True
    #: ClassLink scope -> campusgate scopes.  A scope not listed here is passed on as
    #: it is (and must be one the client is allowed, like any scope).
    scopes: dict[str, list[str]] = Field(default_factory=_default_scope_map)
    #: ``TenantId`` / ``Tenant`` shown for a local account that has no roster record.
    default_tenant_id: int = Field(default=0, ge=0)
    default_tenant_name: str = Field(default="campusgate", max_length=200)
    #: ``StateId`` / ``StateName`` of every answer (left out when not set).
    state_id: int | None = Field(default=None, ge=0)
    state_name: str | None = Field(default=None, max_length=100)

    @field_validator("scopes")
    @classmethod
    def _scope_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, targets in value.items():
            for token in (name, *targets):
                if not token or any(c <= " " or c in '"\\' for c in token):
                    raise ValueError(f"invalid scope token {token!r} in the scope map")
        return value

    def translate_scope(self, scope: str) -> str:
        """A ClassLink ``scope`` parameter as campusgate scopes (``openid`` first)."""
        wanted = ["openid"]
        for name in scope.split():
            wanted += self.scopes.get(name, [name])
        return " ".join(dict.fromkeys(wanted))
