"""The test tree's layout: pytest imports test modules by their file name (the
directories have no ``__init__.py``), so two test files of the same name in
different directories stop the whole run at collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def test_every_helper_module_has_a_name_of_its_own() -> None:
    names = Counter(path.name for path in TESTS.rglob("*.py")
                    if not path.name.startswith("test_") and path.name != "conftest.py")
    assert [name for name, count in names.items() if count > 1] == []
