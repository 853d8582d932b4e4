"""The end-to-end tests' served gateway (``ai_harness.py``), one per module."""

from collections.abc import Iterator

import pytest
from ai_harness import AiGateway, ai_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AiGateway]:
    """One served gateway per test module (starting one takes about a second)."""
    with ai_gateway(tmp_path_factory.mktemp("ai-gateway")) as served:
        yield served
