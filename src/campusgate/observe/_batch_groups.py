"""A batch of records grouped by a key, for the stages that sum a batch per key (the
roll-ups, the metrics tally): each group is then summed column by column, in the
records' order, which costs a fraction of adding the records one at a time -- when
the groups are large.  A batch of small groups is better added record by record:
:func:`group_by` says so by returning None, and a caller adds a group of fewer than
:data:`FEW` records one by one."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from campusgate.observe.record import AccessRecord

__all__ = ["FEW", "group_by"]

K = TypeVar("K", bound=Hashable)

#: Fewer records of one group than this are added one by one (the columns' fixed
#: costs would outweigh them).
FEW = 12
#: A batch whose first ``_SAMPLE`` records make groups of fewer than ``_SPARSE`` on
#: average is not grouped (it would cost more than it saves).
_SAMPLE = 512
_SPARSE = 4


def group_by(records: list[AccessRecord], key: Callable[[AccessRecord], K]
             ) -> dict[K, list[AccessRecord]] | None:
    """``records`` by ``key`` (an ``operator.attrgetter``: C speed), each group in
    the records' order; None when the first records make small groups."""
    groups: dict[K, list[AccessRecord]] = {}
    _into(groups, records[:_SAMPLE], key)
    if len(groups) * _SPARSE > min(len(records), _SAMPLE):
        return None
    _into(groups, records[_SAMPLE:], key)
    return groups


def _into(groups: dict[K, list[AccessRecord]], records: list[AccessRecord],
          key: Callable[[AccessRecord], K]) -> None:
    get = groups.get
    for record in records:
        k = key(record)
        same = get(k)
        if same is None:
            groups[k] = [record]
        else:
            same.append(record)
