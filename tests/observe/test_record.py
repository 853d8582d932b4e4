"""The access record as a row: its fields by name and in order agree."""

from __future__ import annotations

import pytest
from access_samples import sample

from campusgate.observe.record import FIELDS, status_class


def test_a_record_is_a_row_in_field_order() -> None:
    record = sample(ai_model="gpt-fast", ai_cost="0.0012")
    assert len(record) == len(FIELDS) == 36
    assert record.as_dict() == {name: getattr(record, name) for name in FIELDS}
    assert list(record) == [getattr(record, name) for name in FIELDS]


def test_a_record_cannot_be_changed() -> None:
    record = sample()
    with pytest.raises(AttributeError):
        record.status = 500  # type: ignore[misc]
    assert record._replace(status=500).status == 500
    assert record.status == 200


@pytest.mark.parametrize(("status", "klass"), [(0, 0), (99, 0), (101, 1), (204, 2),
                                                 (404, 4), (503, 5), (600, 0)])
def test_status_class(status: int, klass: int) -> None:
    assert status_class(status) == klass
