"""docs/classlink-sandbox.md: its configuration example is one campusgate loads, and
its scope table is the default scope map."""

from __future__ import annotations

import re
from pathlib import Path

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.config.loader import load_config_text

PAGE = (Path(__file__).resolve().parents[3] / "docs" / "classlink-sandbox.md").read_text()


def test_the_example_loads() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)
    config = load_config_text(block, "docs/classlink-sandbox.md",
                              env={"READING_APP_SECRET": "r" * 32})
    assert config.identity is not None
    sandbox = config.identity.classlink_sandbox
    assert sandbox is not None and sandbox.enabled
    assert (sandbox.state_id, sandbox.state_name) == (44, "Texas")


def test_the_scope_table_is_the_default_map() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `([\w ]+)` \|", PAGE, flags=re.M)
    assert len(rows) == 5
    sandbox = ClassLinkSandbox()
    for classlink, campusgate in rows:
        assert sandbox.translate_scope(classlink) == campusgate
