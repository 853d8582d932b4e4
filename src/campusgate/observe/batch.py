"""A batch of access records held as columns: what the log writer hands every sink.

The writer finishes a batch of rows into columns (``capture.finish_rows``) and the
stages that run on every batch -- the store sink's segment, the roll-ups, the
metrics tally -- read those columns with C-level builtins (``min``, ``set``,
``sum``, ``map``, ``list.count``, an ``itemgetter`` per group), never a record at a
time.  :class:`AccessRecord` objects are built only when a sink iterates the batch
(the file, http, syslog and otlp sinks), once, and shared by them.  Measured with
callgrind: the writer's loop cost about 36,500 instructions per record when every
stage read records; see docs/observability.md, "Counted in instructions".

A batch never changes once built: its columns are tuples (or lists nobody mutates),
shared by sinks that run concurrently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, cast, overload

from campusgate.observe.record import FIELDS, AccessRecord

__all__ = ["FEW", "INDEX", "Columns", "Group", "RecordBatch", "group", "measured",
           "pick"]

#: A field's column index.
INDEX: dict[str, int] = {name: index for index, name in enumerate(FIELDS)}
#: Fewer records of one group than this are added one by one (the columns' fixed
#: costs -- a gather, a sort, the sums -- would outweigh them).
FEW = 12

#: A group's record indexes, increasing.
Group = Sequence[int]
#: A batch's values, one sequence per field in ``FIELDS`` order.
Columns = Sequence[Sequence[Any]]


class RecordBatch(Sequence[AccessRecord]):
    """Records as ``len(FIELDS)`` columns of equal length, in ``FIELDS`` order.

    A ``Sequence[AccessRecord]`` too, for the sinks that write records one by one:
    the records are built on first use, by C calls from the columns."""

    __slots__ = ("_records", "_sorted", "columns")

    def __init__(self, columns: Columns, records: list[AccessRecord] | None = None) -> None:
        if len(columns) != len(FIELDS):
            raise ValueError(f"a batch has {len(FIELDS)} columns, not {len(columns)}")
        self.columns = columns
        self._records = records
        self._sorted: dict[int, tuple[Sequence[float], list[float]]] = {}

    def sorted(self, values: Sequence[float]) -> list[float]:
        """``sorted(values)``, shared: the roll-ups and the metrics both count a
        group's latencies into buckets from them, and in the usual batch (one
        group) both ask for the same whole column -- sorted once, not twice (a
        sort of a batch's latencies is most of what either stage costs).  The
        list is shared: read it, never change it."""
        known = self._sorted.get(id(values))
        if known is not None and known[0] is values:
            return known[1]
        ordered = sorted(values)
        self._sorted[id(values)] = (values, ordered)
        return ordered

    @classmethod
    def of(cls, records: Iterable[AccessRecord]) -> RecordBatch:
        """``records`` as a batch (the same object when it is one already)."""
        if isinstance(records, RecordBatch):
            return records
        rows = list(records)
        if not rows:
            return cls([()] * len(FIELDS), rows)
        return cls(list(zip(*rows, strict=True)), rows)

    @property
    def records(self) -> list[AccessRecord]:
        """The batch as :class:`AccessRecord` s (built once, on first use)."""
        records = self._records
        if records is None:
            records = self._records = list(map(tuple.__new__, repeat(AccessRecord),
                                               zip(*self.columns, strict=True)))
        return records

    def column(self, name: str) -> Sequence[Any]:
        return self.columns[INDEX[name]]

    def __len__(self) -> int:
        return len(self.columns[0])

    @overload
    def __getitem__(self, index: int) -> AccessRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[AccessRecord]: ...
    def __getitem__(self, index: int | slice) -> AccessRecord | list[AccessRecord]:
        return self.records[index]

    def __iter__(self) -> Iterator[AccessRecord]:
        return iter(self.records)

    def __repr__(self) -> str:
        return f"RecordBatch({len(self)} records)"


def group(keys: Sequence[Sequence[Any]]) -> dict[tuple[Any, ...], Group]:
    """The record indexes of each distinct combination of the key columns ``keys``
    (each group's indexes in the records' order).

    The usual batch -- one route, one status -- is found to be one group by a
    ``list.count`` per key column (C, identity first), with no tuple built."""
    count = len(keys[0])
    if not count:
        return {}
    if all(column.count(column[0]) == count for column in keys):
        return {tuple(column[0] for column in keys): range(count)}
    groups: dict[tuple[Any, ...], list[int]] = {}
    get = groups.get
    for index, key in enumerate(zip(*keys, strict=True)):
        same = get(key)
        if same is None:
            groups[key] = [index]
        else:
            same.append(index)
    return cast("dict[tuple[Any, ...], Group]", groups)


def pick(column: Sequence[Any], indexes: Group) -> Sequence[Any]:
    """The values of ``column`` at ``indexes`` (increasing), in order."""
    if len(indexes) == len(column):
        return column  # every index: the column itself
    if len(indexes) == 1:
        return (column[indexes[0]],)
    values: tuple[Any, ...] = itemgetter(*indexes)(column)
    return values


def measured(latencies: Sequence[float | None]) -> Sequence[float]:
    """The latencies that were measured (an upstream latency is None when no upstream
    was called), in order; ``latencies`` itself when all were."""
    if None in latencies:
        return [ms for ms in latencies if ms is not None]
    return cast("Sequence[float]", latencies)
