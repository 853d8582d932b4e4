"""The configuration example of docs/ai.md is one campusgate loads and serves."""

from __future__ import annotations

import re
from pathlib import Path

from campusgate.ai.gateway.access import model_plan, visible_models
from campusgate.ai.gateway.runtime import AiRuntime
from campusgate.config.loader import load_config_text
from campusgate.keyring import Keyring
from campusgate.proxy.consumers import ConsumerInfo

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "ai.md").read_text()


def test_the_ai_example_loads_and_plans_as_the_page_says() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)
    config = load_config_text(block, "docs/ai.md", env={"OPENAI_API_KEY": "sk-doc"})
    assert config.ai is not None
    assert config.ai.provider("openai-main").api_key == "sk-doc"  # type: ignore[union-attr]
    state = AiRuntime(Keyring(b"k" * 32)).build(config.ai)
    assert state is not None
    plan = [t.id for t in model_plan(state, "gpt-fast", None, 0.0)]
    assert set(plan[:2]) == {"openai-main/gpt-4o-mini", "local/llama3.2"}
    assert plan[2:] == ["claude/claude-3-5-haiku-latest"]
    lab = ConsumerInfo("physics-lab", "physics-lab", None, ("staff",), ())
    assert visible_models(state, lab) == ["gpt-fast", "claude-fast"]
    assert visible_models(state, None) == ["gpt-fast"]
