"""Model providers: one module per wire format, each a :class:`~.base.Translator`.

:func:`translator` finds one by its ``type`` (the ``ai.providers[].type`` of the
config).  Each module registers itself in :data:`TRANSLATORS` below, by name -- one
line per provider.
"""

from __future__ import annotations

from importlib import import_module

from campusgate.ai.providers.base import Translator

__all__ = ["TRANSLATORS", "translator"]

#: Provider type -> "module:attribute" of its translator (imported when first used).
TRANSLATORS: dict[str, str] = {
    "bedrock": "bedrock:BEDROCK",
    "ollama": "ollama:OLLAMA",
    "gemini": "gemini:GEMINI",
    "cohere": "cohere:COHERE",
    "anthropic": "anthropic:ANTHROPIC",
    "openai": "openai:OPENAI",
    "openai-compatible": "openai:OPENAI_COMPATIBLE",
    "mistral": "mistral:MISTRAL",
    "azure": "azure:AZURE",
}


def translator(kind: str) -> Translator:
    """The translator of provider type ``kind`` (KeyError when there is none)."""
    module, _, attribute = TRANSLATORS[kind].partition(":")
    found: Translator = getattr(import_module(f"campusgate.ai.providers.{module}"),
                                attribute)
    return found
