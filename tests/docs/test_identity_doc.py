"""The configuration example of docs/identity.md is one campusgate loads."""

from __future__ import annotations

import re
from pathlib import Path

from campusgate.config.loader import load_config_text

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "identity.md").read_text()


def test_the_identity_example_loads_with_its_secrets_from_the_environment() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)
    env = {"LMS_SECRET": "l" * 32, "SYNC_SECRET": "s" * 32}
    config = load_config_text(block, "docs/identity.md", env=env)
    assert config.identity is not None
    assert {c.client_id for c in config.identity.clients} == {"lms", "gradebook-mobile",
                                                              "nightly-sync"}
    assert config.identity.client("lms").client_secret == "l" * 32  # type: ignore[union-attr]
