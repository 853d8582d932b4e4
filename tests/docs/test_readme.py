"""Every YAML block in the README is a configuration campusgate loads, given the
environment variables it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from campusgate.config.loader import load_config_text

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", README, flags=re.S)


def test_the_readme_has_yaml_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_readme_yaml_block_loads(block: str) -> None:
    names = re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", block)  # without a :-default
    env = {name: f"{name.lower()}-0123456789abcdef" for name in names}
    config = load_config_text(block, "README.md", env=env)
    assert (config.services or config.upstreams or config.identity or config.ai
            or "observe" in config.model_fields_set)
