"""The sandbox's settings (config/classlink_sandbox.py) as an operator writes them."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError
from sandbox_kit import sandbox_config

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.config.identity import IdentityConfig


def test_off_unless_configured() -> None:
    assert IdentityConfig(issuer="https://id.example.edu").classlink_sandbox is None
    assert sandbox_config().classlink_sandbox == ClassLinkSandbox()
    assert ClassLinkSandbox().enabled


def test_from_yaml() -> None:
    config = IdentityConfig.model_validate(yaml.safe_load("""
issuer: https://id.example.edu
classlink_sandbox:
  default_tenant_id: 7
  default_tenant_name: Sandbox ISD
  scopes: {profile: [profile, email], oneroster: [roster]}
"""))
    sandbox = config.classlink_sandbox
    assert sandbox is not None
    assert (sandbox.default_tenant_id, sandbox.default_tenant_name) == (7, "Sandbox ISD")
    assert sandbox.translate_scope("profile") == "openid profile email"
    assert sandbox.translate_scope("full") == "openid full"  # not mapped any more


@pytest.mark.parametrize("settings", [
    {"scopes": {"profile": ["pro file"]}},
    {"scopes": {"": ["profile"]}},
    {"scopes": {"profile": ['say"hi']}},
    {"default_tenant_id": -1},
    {"unknown": True},
])
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ClassLinkSandbox.model_validate(settings)
