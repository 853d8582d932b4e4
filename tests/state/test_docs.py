"""The examples of docs/state.md work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from campusgate.state import StateBackend, open_state

PAGE = (Path(__file__).parents[2] / "docs" / "state.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE, re.S)


def test_the_headers_example_runs() -> None:
    [example] = [b for b in blocks("python") if "rate_limit_headers(decision) ==" in b]
    exec(compile(example, "docs/state.md", "exec"), {})


@pytest.mark.parametrize("url", re.findall(r"state: (\S+)", blocks("yaml")[0]))
async def test_every_state_url_opens(url: str) -> None:
    state: StateBackend = open_state(url)
    assert state.kind == ("memory" if url == "memory" else "redis")
    await state.close()
