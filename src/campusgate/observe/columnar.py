"""A segment body in binary columns (format 3), read back: plain code, no I/O.

The store sink writes a batch's columns in C (``_rowpack_columns.c``, from the
columns the log writer already holds) instead of as JSON text: no Python object is
made per value, and the body zstd compresses is about a third of the JSON's size,
with the bytes that repeat (the high bytes of the times, the routes' indexes) next to
each other.  Installs without the C module write format 2 (JSON); every install
reads both (:func:`campusgate.observe.segments.parse`).

Layout (little-endian)::

    magic b"\\0CGS", format u8 (3), flags u8 (1: some string is not ASCII),
    columns u16, rows u32, names: u32 length + JSON list of the columns' names,
    then each column: a kind byte and its payload

=====  ======  ================================================================
kind   name    payload
=====  ======  ================================================================
0      none    nothing: every value None
1      float   8 bytes a row, byte-shuffled (every row's byte 0, then every row's
               byte 1, ...), then the None rows: u32 count, u32 indexes
2      int     as float, signed 64-bit
3      same    u16: an earlier column holding the same values row for row
4      dict    u16 count of distinct values, each a u32 length (``0xFFFFFFFF``:
               None) and UTF-8, then one u8 index a row
5      str     a u32 length a row (``0xFFFFFFFF``: None), then the UTF-8 bytes
6      json    u32 length, the column as a JSON list
7      hex     u16 bytes per value, then the values (every one the same even
               number of lowercase hex digits: request, trace and span ids) as
               bytes, shuffled as numbers are
=====  ======  ================================================================
"""

from __future__ import annotations

import re
import sys
from array import array
from itertools import accumulate
from typing import Any

import orjson

__all__ = ["FLAG_NON_ASCII", "FORMAT", "MAGIC", "in_hex_value", "may_hold", "read"]

MAGIC = b"\x00CGS"
FORMAT = 3
#: Flags: some string (or JSON column) holds bytes that are not ASCII.
FLAG_NON_ASCII = 1
NULL_LENGTH = 0xFFFFFFFF
#: The most rows a body may claim (a batch holds at most ``batch_size``, 100,000):
#: a damaged head must not make a reader build a list of billions of Nones.
MAX_ROWS = 1_000_000
NONE, FLOAT, INT, SAME, DICT, STR, JSON, HEX = range(8)
_HEAD = 16
_BIG_ENDIAN = sys.byteorder == "big"
_LOWER_HEX = re.compile("[0-9a-f]+")


class _Reader:
    """A cursor over a body; every read checks it stays inside."""

    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    def take(self, size: int) -> memoryview:
        start, end = self.at, self.at + size
        if size < 0 or end > len(self.data):
            raise ValueError("it ends inside a column")
        self.at = end
        return self.data[start:end]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u32s(self, count: int) -> array[int]:
        values = array("I")
        values.frombytes(self.take(4 * count))
        if _BIG_ENDIAN:
            values.byteswap()
        return values


def read(body: bytes) -> tuple[list[str], list[list[Any]]]:
    """The column names and columns of a format-3 body (``ValueError`` when it is
    not one, or damaged)."""
    r, count, rows = _open(body)
    try:
        names = orjson.loads(r.take(r.u32()))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"its column names are not JSON: {exc}") from None
    if not (isinstance(names, list) and len(names) == count
            and all(isinstance(name, str) for name in names)):
        raise ValueError("its column names do not match its columns")
    columns: list[list[Any]] = []
    for _ in range(count):
        kind, parts = _parts(r, rows)
        columns.append(_decode(kind, parts, rows, columns))
    if r.at != len(body):
        raise ValueError("bytes after its last column")
    return names, columns


def may_hold(body: bytes, value: str) -> bool:
    """Whether a format-3 body may hold the string ``value``, a string of plain
    printable ASCII (no quote or backslash, which a JSON column escapes): never
    False when it does.  It is in the body as it is (a str, dict or JSON column),
    or, being lowercase hex, as bytes among a hex column's values (the columns are
    walked, not decoded).  A damaged body may hold anything."""
    if value.encode() in body:
        return True
    width, odd = divmod(len(value), 2)
    if odd or not width or not in_hex_value(value):
        return False
    needle = bytes.fromhex(value)
    try:
        r, count, rows = _open(body)
        r.take(r.u32())  # the names
        for _ in range(count):
            kind, parts = _parts(r, rows)
            if kind == HEX and parts[0] == width and needle in _unshuffled(
                    parts[1], rows, width):
                return True
    except ValueError:
        return True
    return False


def in_hex_value(text: str) -> bool:
    """Whether ``text`` could be part of a hex column's value (lowercase hex digits
    only): such a value is kept as bytes, so a search cannot find ``text`` in the
    body as it is."""
    return _LOWER_HEX.fullmatch(text) is not None


def _open(body: bytes) -> tuple[_Reader, int, int]:
    """A reader past the body's head, with its ``(columns, rows)``."""
    if len(body) < _HEAD or body[:4] != MAGIC or body[4] != FORMAT:
        raise ValueError("not a segment body in binary columns")
    r = _Reader(body)
    r.take(6)
    count, rows = r.u16(), r.u32()
    if rows > MAX_ROWS:
        raise ValueError(f"a body claiming {rows} rows")
    return r, count, rows


def _parts(r: _Reader, rows: int) -> tuple[int, Any]:
    """One column's kind and its payload's parts, read past but not decoded: the
    one place that knows each kind's layout."""
    kind = r.u8()
    if kind == NONE:
        return kind, None
    if kind in (FLOAT, INT):
        return kind, (r.take(8 * rows), r.u32s(r.u32()))
    if kind == SAME:
        return kind, r.u16()
    if kind == DICT:
        table = [r.take(size) if (size := r.u32()) != NULL_LENGTH else None
                 for _ in range(r.u16())]
        return kind, (table, r.take(rows))
    if kind == STR:
        lengths = r.u32s(rows)
        return kind, (lengths, r.take(sum(lengths) - NULL_LENGTH * lengths.count(NULL_LENGTH)))
    if kind == JSON:
        return kind, r.take(r.u32())
    if kind == HEX:
        width = r.u16()
        if not width:
            raise ValueError("a hex column of empty values")
        return kind, (width, r.take(width * rows))
    raise ValueError(f"a column of unknown kind {kind}")


def _decode(kind: int, parts: Any, rows: int, earlier: list[list[Any]]) -> list[Any]:
    """A column's values from :func:`_parts`."""
    if kind == NONE:
        return [None] * rows
    if kind in (FLOAT, INT):
        planes, nones = parts
        return _numbers(planes, nones, rows, "d" if kind == FLOAT else "q")
    if kind == SAME:
        if parts >= len(earlier):
            raise ValueError("a column the same as one not read yet")
        return earlier[parts]
    if kind == DICT:
        raw, indexes = parts
        table = [None if value is None else _text(value) for value in raw]
        if rows and max(indexes) >= len(table):
            raise ValueError("an index past its column's values")
        return list(map(table.__getitem__, indexes))
    if kind == STR:
        lengths, blob = parts
        return _strings(lengths, blob)
    if kind == HEX:
        width, planes = parts
        text = _unshuffled(planes, rows, width).hex()
        step = 2 * width
        return [text[at:at + step] for at in range(0, step * rows, step)]
    try:  # JSON
        values = orjson.loads(parts)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"a column that is not JSON: {exc}") from None
    if not isinstance(values, list) or len(values) != rows:
        raise ValueError("a JSON column of another length")
    return values


def _unshuffled(planes: memoryview, rows: int, width: int) -> bytearray:
    """Values of ``width`` bytes from their planes (every value's byte 0, then ...)."""
    values = bytearray(width * rows)
    for byte in range(width):
        values[byte::width] = planes[byte * rows:(byte + 1) * rows]
    return values


def _numbers(planes: memoryview, nones: array[int], rows: int, code: str) -> list[Any]:
    values = array(code)
    values.frombytes(_unshuffled(planes, rows, 8))
    if _BIG_ENDIAN:
        values.byteswap()
    column: list[Any] = values.tolist()
    for index in nones:
        if index >= rows:
            raise ValueError("a None past its column's end")
        column[index] = None
    return column


def _strings(lengths: array[int], blob: memoryview) -> list[Any]:
    """A str column's values: ``lengths`` (:data:`NULL_LENGTH`: None), and the
    UTF-8 bytes of the others one after the other in ``blob``."""
    text = _text(blob)
    ascii_only = len(text) == len(blob)  # a character is a byte: slice the text
    if NULL_LENGTH not in lengths:
        ends = list(accumulate(lengths))
        if ascii_only:
            return [text[end - size:end] for size, end in zip(lengths, ends, strict=True)]
    else:
        ends = list(accumulate(0 if size == NULL_LENGTH else size for size in lengths))
    return [None if size == NULL_LENGTH
            else text[end - size:end] if ascii_only else _text(blob[end - size:end])
            for size, end in zip(lengths, ends, strict=True)]


def _text(data: memoryview) -> str:
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"a string that is not UTF-8: {exc}") from None
