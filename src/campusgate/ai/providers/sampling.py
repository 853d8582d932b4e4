"""OpenAI's sampling parameters under a provider's own names.

Most providers take the same knobs as Chat Completions under other names
(``top_p`` -> Gemini's ``topP``, Cohere's ``p``); the output limit comes as
``max_completion_tokens`` (current) or ``max_tokens`` (deprecated, still sent by
many clients: the current one wins) and ``stop`` as a string or a list.
"""

from __future__ import annotations

from collections.abc import Mapping

from campusgate.ai.types import ChatRequest, Json

__all__ = ["sampling_parameters"]


def sampling_parameters(request: ChatRequest, names: Mapping[str, str], *,
                        max_tokens: str, stop: str) -> Json:
    """The parameters of ``request`` that are set, renamed by ``names`` (OpenAI's name
    -> the provider's), the output limit as ``max_tokens`` and the stop sequences as a
    list named ``stop``."""
    out: Json = {theirs: request[ours] for ours, theirs in names.items()
                 if request.get(ours) is not None}
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if limit is not None:
        out[max_tokens] = limit
    sequences = request.get("stop")
    if sequences:
        out[stop] = [sequences] if isinstance(sequences, str) else list(sequences)
    return out
