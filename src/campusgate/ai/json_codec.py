"""The JSON of the AI request path: client bodies, provider requests and answers,
stream events.

Each call of a chat completion parses and writes JSON about four times (the client's
request, the provider's request, its answer, the client's answer).  With ``orjson``
installed those four cost about 2.5 us instead of 18 us for a short chat, and the
gateway's worker spends about 40 us less CPU per ai-openai request (``benchmarks/``);
without it the standard library is used, writing
the same JSON: compact separators, UTF-8 kept as is (not ``\\u`` escapes); only a
float's spelling may differ (``1e-7``, not ``1e-07``).

Where orjson refuses what the standard library takes -- ``NaN``/``Infinity`` in a
body, an integer past 64 bits to write, a key that is not a string -- the standard
library decides, so what is valid and what each error says do not depend on which
is installed.  One difference is left: orjson reads an integer past 64 bits as a
float (no chat parameter is that large).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FAST", "dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - the standard library only
    orjson = None  # type: ignore[assignment]

#: Whether orjson does the work.
FAST = orjson is not None


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """``data`` parsed (``ValueError``, as :func:`json.loads` raises it, if invalid)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library's verdict and message
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError: the standard library decides
            pass
    return _std_dumps(value)
