"""ai/json_codec.py: the AI path's JSON, with orjson or the standard library, gives
the same bytes and the same verdicts either way."""

from __future__ import annotations

import importlib
import json
import math
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from campusgate.ai import json_codec

PAYLOADS: list[Any] = [
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Grüße, 世界 🌍"}],
     "temperature": 0.2, "max_tokens": 64, "stream": False, "stop": None},
    {"id": "chatcmpl-1", "choices": [{"index": 0, "logprobs": None}],
     "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
    [1, -2.5, 0.1, True, "tab\there \"quoted\" \\ back", {}],
]


def stdlib(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture(params=["installed", "stdlib only"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[ModuleType]:
    if request.param == "installed":
        yield json_codec
        return
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson -> ImportError
    try:
        yield importlib.reload(json_codec)
    finally:
        monkeypatch.undo()
        importlib.reload(json_codec)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_compact_utf8_as_the_standard_library_writes_it(codec: ModuleType,
                                                         payload: Any) -> None:
    assert codec.dumps(payload) == stdlib(payload)
    assert codec.loads(codec.dumps(payload)) == payload


def test_floats_keep_their_value(codec: ModuleType) -> None:
    values = [1e-7, 1e300, -0.0, 2.5e-05, 123456.789]
    assert codec.loads(codec.dumps(values)) == values  # the spelling may differ: 1e-7


def test_what_orjson_refuses_the_standard_library_decides(codec: ModuleType) -> None:
    assert codec.dumps({1: 2**70}) == b'{"1":1180591620717411303424}'
    assert math.isnan(codec.loads(b'{"x": NaN}')["x"])
    assert codec.loads('{"t": "é"}'.encode("utf-16")) == {"t": "é"}
    with pytest.raises(ValueError, match="Expecting property name enclosed in double"):
        codec.loads(b'{"a": 1,}')
    with pytest.raises(ValueError, match="Expecting ',' delimiter"):
        codec.loads(b'{"a": 1 "b": 2}')


def test_the_fast_path_is_used_when_installed() -> None:
    pytest.importorskip("orjson")
    assert json_codec.FAST
