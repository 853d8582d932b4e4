"""Segment bodies in binary columns: written in C (``_rowpack_columns.c``), read
back by ``observe/columnar.py``.  Every kind of column comes back with its values and
their types; a damaged body is refused, never misread."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import orjson
import pytest
import zstandard

from campusgate.observe import columnar
from campusgate.observe._speedups import speedups

_MODULE = speedups()
pytestmark = pytest.mark.skipif(_MODULE is None, reason="the C helpers are not built")


def written(*columns: list[Any]) -> tuple[bytes, list[list[Any] | None]]:
    assert _MODULE is not None
    names = [f"c{i}" for i in range(len(columns))]
    text, distinct = _MODULE.columns_body(list(columns), orjson.dumps(names), orjson.dumps)
    return text, distinct


def body(*columns: list[Any]) -> bytes:
    return written(*columns)[0]


def kinds(text: bytes) -> list[int]:
    """The kind byte of each column, read as the reader walks them."""
    r, count, rows = columnar._open(text)
    r.take(r.u32())
    return [columnar._parts(r, rows)[0] for _ in range(count)]


def same(a: list[Any], b: list[Any]) -> bool:
    """Equal, type for type (1 is not 1.0, nor True), NaN equal to NaN."""
    return len(a) == len(b) and all(
        type(x) is type(y) and (x == y or (isinstance(x, float) and math.isnan(x)
                                           and math.isnan(y)))
        for x, y in zip(a, b, strict=True))


def test_every_kind_of_column_comes_back_with_its_types() -> None:
    request_ids = [f"{i:032x}" for i in range(300)]
    columns: list[list[Any]] = [
        [1.7e9 + i / 7 for i in range(300)],  # float
        [None if i % 3 else 0.1 * i for i in range(300)],  # float with None
        [float("inf"), float("-inf"), float("nan"), -0.0] + [1.0] * 296,
        [i - 150 for i in range(300)],  # int
        [None, 2**63 - 1, -(2**63)] + [7] * 297,  # int64's ends
        [None] * 300,  # none
        ["GET" if i % 2 else "POST" for i in range(300)],  # dict
        [None if i % 5 == 0 else "route-a" for i in range(300)],  # dict with None
        request_ids,  # str: 300 distinct values
        list(request_ids),  # same objects as the column before
        [f"{i:032x}" for i in range(300)],  # equal values, other objects
        [None if i % 50 == 0 else f"/users/{i}" for i in range(300)],  # str with None
        [f"{i:016x}".upper() for i in range(300)],  # str: hex, but upper case
        [f"{i:x}" for i in range(300)],  # str: hex of odd and even lengths
        [f"{i:015x}" for i in range(300)],  # str: an odd number of digits
        [{"email": 1}] + [None] * 299,  # json: a dict
        [True] + [None] * 299,  # json: a bool is not an int
        [2**63] + [1] * 299,  # json: an int past int64 (orjson writes up to 2**64 - 1)
        [1, 1.5] + [None] * 298,  # json: mixed numbers
    ]
    text = body(*columns)
    names, back = columnar.read(text)
    assert names == [f"c{i}" for i in range(len(columns))]
    for column, read in zip(columns, back, strict=True):
        assert same(column, read), (column[:5], read[:5])
    c = columnar
    assert kinds(text) == [c.FLOAT] * 3 + [c.INT] * 2 + [c.NONE, c.DICT, c.DICT, c.HEX,
                                                         c.SAME, c.HEX, c.STR, c.STR, c.STR,
                                                         c.STR] + [c.JSON] * 4
    assert not text[5] & columnar.FLAG_NON_ASCII


def test_strings_that_are_not_ascii_come_back_and_are_flagged() -> None:
    names = ["naïve 日本", "a\nb\t\"c\"\\", "", "😀"]
    text = body(names * 100, names[:2] + [None] * 398)
    assert columnar.read(text)[1] == [names * 100, names[:2] + [None] * 398]
    assert text[5] & columnar.FLAG_NON_ASCII


def test_a_string_with_no_utf8_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(orjson.JSONEncodeError):
        body(["fine", "lone \ud800 surrogate"])


def test_the_usual_batch_keeps_fewer_bytes_than_json() -> None:
    rng, rows = random.Random(5), 5000
    columns = [[1.7e9 + i / 30000 + rng.random() / 1e5 for i in range(rows)],
               ["route-a"] * rows, [rng.uniform(0.1, 2.0) for _ in range(rows)],
               [200] * rows, [f"{rng.getrandbits(128):032x}" for _ in range(rows)]]
    packed = zstandard.ZstdCompressor(level=1).compress
    assert len(packed(body(*columns))) < 0.9 * len(packed(orjson.dumps(columns)))


def test_a_batch_of_no_rows_and_of_no_columns() -> None:
    assert columnar.read(body([], [])) == (["c0", "c1"], [[], []])
    assert columnar.read(body()) == ([], [])


def test_columns_of_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="unequal"):
        body([1.0, 2.0], [1.0])


def _damaged() -> list[bytes]:
    good = body([1.5, None], ["a", "b"], ["x", "x"])
    nones = body([None, None])
    head = good[:16 + len(b'["c0","c1","c2"]')]
    return [
        b"",
        good[:10],  # a head cut short
        b"\x00CGX" + good[4:],  # not the magic
        good[:4] + b"\x04" + good[5:],  # a format this version does not know
        good[:-1],  # the last column cut short
        good + b"\x00",  # bytes after the last column
        head + b"\x09" + good[len(head) + 1:],  # a kind this version does not know
        good[:12] + struct.pack("<I", 2) + b"[]" + good[len(head):],  # names not matching
        good[:12] + struct.pack("<I", 3) + b"[1," + good[len(head):],  # names not JSON
        head + bytes([columnar.SAME]) + struct.pack("<H", 5),  # same as a later column
        body(["a", "b"])[:-1] + b"\x07",  # a dictionary index past its values
        body(["\xff", "b"]).replace(b"\xc3\xbf", b"\xff\xfe"),  # not UTF-8
        nones[:8] + struct.pack("<I", 4_000_000_000) + nones[12:],  # billions of Nones
    ]


@pytest.mark.parametrize("text", _damaged() if _MODULE is not None else [])
def test_a_damaged_body_raises_value_error(text: bytes) -> None:
    with pytest.raises(ValueError):
        columnar.read(text)


def test_the_distinct_values_of_the_columns_that_have_few_come_with_the_body() -> None:
    routes = ["a", "b", None] * 100
    _, distinct = written([1.5] * 300, routes, list(routes), [f"{i}" for i in range(300)],
                          [None] * 300, [{"x": 1}] * 300)
    assert distinct == [None, ["a", "b", None], ["a", "b", None], None, [None], None]


@pytest.mark.parametrize(("ids", "span"), [
    (["b" * 32, "a" * 32, "0" * 32, "f" * 32], ("0" * 32, "f" * 32)),
    (["0123456789abcdef" * 2], ("0123456789abcdef" * 2,) * 2),
    ([], None),
    (["a" * 32, "A" * 32], None),  # uppercase is not what the gateway makes
    (["a" * 32, "a" * 31], None),
    (["a" * 32, "g" * 32], None),
    (["a" * 32, "é" * 32], None),
    (["a" * 32, None], None),
])
def test_id_range_only_for_ids_the_gateway_made(ids: list[Any], span: Any) -> None:
    assert _MODULE is not None
    assert _MODULE.id_range(ids) == span


def test_hex_ids_are_kept_as_bytes_and_come_back_as_the_same_digits() -> None:
    rng = random.Random(3)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(1000)]
    spans = [f"{rng.getrandbits(64):016x}" for _ in range(1000)]
    text = body(ids, spans, ["00"] * 1000)
    assert kinds(text) == [columnar.HEX] * 3
    assert columnar.read(text)[1] == [ids, spans, ["00"] * 1000]
    assert len(text) < 16 + 20 + 1000 * (16 + 8 + 1) + 3 * 3  # a byte per two digits


def test_a_column_that_stops_being_hex_at_its_last_value_is_written_as_strings() -> None:
    ids = [f"{i:032x}" for i in range(299)]
    late = [*ids, "0" * 31 + "g"]  # every value looked at, the last one is not hex
    few = ["00"] * 299 + ["0G"]
    text = body(late, few, [*ids, "f" * 32])
    assert kinds(text) == [columnar.STR, columnar.DICT, columnar.HEX]
    assert columnar.read(text)[1] == [late, few, [*ids, "f" * 32]]


def test_may_hold_finds_strings_and_hex_ids_and_never_rules_out_a_damaged_body() -> None:
    ids = [f"{i:032x}" for i in range(1, 101)]
    text = body([1.5] * 100, ["route-a"] * 100, ids, [f"/p/{i}" for i in range(100)])
    assert columnar.may_hold(text, ids[42]) and columnar.may_hold(text, "route-a")
    assert columnar.may_hold(text, "/p/99")
    assert not columnar.may_hold(text, f"{1000:032x}") and not columnar.may_hold(text, "/q")
    assert columnar.may_hold(text[:-2], f"{1000:032x}")  # cut short: may hold anything
