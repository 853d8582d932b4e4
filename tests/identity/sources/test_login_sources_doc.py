"""The example of docs/login-sources.md is one campusgate loads."""

from __future__ import annotations

import re
from pathlib import Path

from campusgate.config.identity_sources import ClassLinkSource, OidcSource
from campusgate.config.loader import load_config_text

PAGE = (Path(__file__).resolve().parents[3] / "docs" / "login-sources.md").read_text()


def test_the_login_sources_example_loads() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)
    env = {"QUIZ_SECRET": "q" * 32, "CLASSLINK_SECRET": "c" * 32, "GOOGLE_SECRET": "g" * 32}
    config = load_config_text(block, "docs/login-sources.md", env=env)
    assert config.identity is not None
    classlink, google = config.identity.sources
    assert isinstance(classlink, ClassLinkSource) and classlink.client_secret == "c" * 32
    assert isinstance(google, OidcSource) and google.provision == "link-only"
