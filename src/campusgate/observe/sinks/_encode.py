"""Records as JSON, for the sinks that speak it (file, http, syslog).

A record becomes a dict by :meth:`AccessRecord.as_dict` (a named tuple's fields
zipped with its values); a batch is encoded by one compact encoder.  Called off the
event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from campusgate.observe.record import AccessRecord

__all__ = ["json_array", "json_lines", "record_dicts", "record_json"]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def record_dicts(batch: Sequence[AccessRecord]) -> list[dict[str, Any]]:
    return list(map(AccessRecord.as_dict, batch))


def record_json(record: AccessRecord) -> str:
    """One record as compact JSON (UTF-8 text, one line)."""
    return _encode(record.as_dict())


def json_lines(batch: Sequence[AccessRecord]) -> bytes:
    """One compact JSON object per line, each line ending in ``\\n``."""
    if not batch:
        return b""
    return ("\n".join(map(_encode, record_dicts(batch))) + "\n").encode()


def json_array(batch: Sequence[AccessRecord]) -> bytes:
    return _encode(record_dicts(batch)).encode()
