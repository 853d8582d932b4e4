"""Records as JSON, for the sinks that speak it (file, http, syslog).

A record (a named tuple) becomes a dict with :meth:`AccessRecord.as_dict`'s keys by
one ``zip`` with the field names; a batch is encoded by one compact encoder.  Called
off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from campusgate.observe.record import FIELDS, AccessRecord

__all__ = ["json_array", "json_lines", "record_dicts", "record_json"]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def record_dicts(batch: Sequence[AccessRecord]) -> list[dict[str, Any]]:
    names = FIELDS
    return [dict(zip(names, r, strict=True)) for r in batch]


def record_json(record: AccessRecord) -> str:
    """One record as compact JSON (UTF-8 text, one line)."""
    return _encode(dict(zip(FIELDS, record, strict=True)))


def json_lines(batch: Sequence[AccessRecord]) -> bytes:
    """One compact JSON object per line, each line ending in ``\\n``."""
    if not batch:
        return b""
    return ("\n".join(map(_encode, record_dicts(batch))) + "\n").encode()


def json_array(batch: Sequence[AccessRecord]) -> bytes:
    return _encode(record_dicts(batch)).encode()
