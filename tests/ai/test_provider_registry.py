"""Every provider type the issue names has a translator that keeps the contract's
shape (ai/providers/__init__.py, ai/providers/base.py)."""

from __future__ import annotations

import pytest

from campusgate.ai.providers import TRANSLATORS, translator

#: The issue's list: OpenAI, Azure OpenAI, Anthropic, Gemini, Bedrock, Mistral, Cohere,
#: Ollama, and any OpenAI-compatible endpoint by base URL.
NAMED = {"openai", "azure", "anthropic", "gemini", "bedrock", "mistral", "cohere", "ollama",
         "openai-compatible"}
METHODS = ("chat_request", "chat_response", "chat_stream", "error", "embeddings_request",
           "embeddings_response")


def test_every_named_provider_is_registered() -> None:
    assert set(TRANSLATORS) == NAMED


@pytest.mark.parametrize("kind", sorted(NAMED))
def test_each_translator_has_the_contracts_shape(kind: str) -> None:
    found = translator(kind)
    assert found.name == kind
    assert isinstance(found.default_base_url, str)
    for method in METHODS:
        assert callable(getattr(found, method)), f"{kind} has no {method}"


def test_an_unknown_type_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        translator("carrier-pigeon")
