"""The ``roster-import`` scenario's pure parts: a big district as a OneRoster 1.1 CSV
bundle, the campusgate config that imports it, and its figures.

The district (:func:`district_bundle`) is deterministic for a size: ``people`` people,
one teacher for every 20 students, a school per 1,000 people, a class per 25 people
(2,000 for 50,000) spread over the schools and taught by one teacher of that school,
each student in 4 classes of their school, 40 district-wide courses, a school year and
two terms.  No ``password`` column: argon2id hashing (tens of milliseconds a person,
on the first import only) would be the whole measurement, so the figure is the import
itself -- checking, writing rows, making accounts.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campusgate.identity.roster.csv_writer import (
    HEADERS_11,
    bundle_zip,
    csv_file,
    manifest_11,
)
from cgbench.configs import campusgate_yaml

__all__ = ["COURSES", "DEFAULT_PEOPLE", "ENROLLMENTS_PER_STUDENT", "ROSTER_IMPORT",
           "DistrictShape", "district_bundle", "district_files", "district_shape", "figures",
           "roster_rows", "roster_yaml"]

ROSTER_IMPORT = "roster-import"
DEFAULT_PEOPLE = 50_000
ENROLLMENTS_PER_STUDENT = 4
COURSES = 40


@dataclass(frozen=True)
class DistrictShape:
    """How many of each: the counts a bundle of ``people`` people has."""

    people: int
    teachers: int
    students: int
    schools: int
    classes: int

    @property
    def enrollments(self) -> int:
        return self.students * ENROLLMENTS_PER_STUDENT + self.classes

    @property
    def rows(self) -> int:
        """Every CSV row: orgs (schools + the district), sessions, courses, classes,
        people, enrollments."""
        return (self.schools + 1) + 3 + COURSES + self.classes + self.people \
            + self.enrollments


def district_shape(people: int) -> DistrictShape:
    """The counts for ``people`` people (at least 25: a teacher and a class)."""
    people = max(25, people)
    schools = max(1, people // 1000)
    teachers = max(schools, people // 21)
    classes = max(schools, people // 25)
    return DistrictShape(people, teachers, people - teachers, schools, classes)


def district_files(people: int, seed: int = 5) -> dict[str, bytes]:
    """The district's CSV files by name (see the module docstring)."""
    shape = district_shape(people)
    rng = random.Random(seed)
    schools = [f"sch{n:03d}" for n in range(shape.schools)]
    orgs = [["dist", "", "", "Bench Unified School District", "district", "BUSD", ""]]
    orgs += [[s, "", "", f"Bench School {n}", "school", f"BS{n}", "dist"]
             for n, s in enumerate(schools)]
    sessions = [["y1", "", "", "2026-2027", "schoolYear", "2026-08-17", "2027-06-11", "",
                 "2027"],
                ["t1", "", "", "Fall", "term", "2026-08-17", "2027-01-15", "y1", "2027"],
                ["t2", "", "", "Spring", "term", "2027-01-19", "2027-06-11", "y1", "2027"]]
    courses = [[f"crs{n:02d}", "", "", "y1", f"Course {n}", f"C{n}", f"{9 + n % 4:02d}",
                "dist", "Mathematics"] for n in range(COURSES)]
    teachers = [f"t{n:06d}" for n in range(shape.teachers)]
    teachers_at = {s: [t for i, t in enumerate(teachers) if i % shape.schools == k]
                   for k, s in enumerate(schools)}
    classes_at: dict[str, list[str]] = {s: [] for s in schools}
    classes, enrollments = [], []
    for n in range(shape.classes):
        school, sid = schools[n % shape.schools], f"cls{n:05d}"
        classes_at[school].append(sid)
        classes.append([sid, "", "", f"Class {n}", f"{9 + n % 4:02d}", f"crs{n % COURSES:02d}",
                        f"K{n}", "scheduled", f"Room {n % 300}", school,
                        "t1" if n % 2 else "t2", "Mathematics", str(1 + n % 7)])
        pool = teachers_at[school]
        enrollments.append([f"e{sid}", "", "", sid, school, pool[n // shape.schools % len(pool)],
                            "teacher", "true", "", ""])
    users = [[t, "", "", "true", schools[i % shape.schools], "teacher", f"teacher{i}",
              "", "Teacher", f"Number{i}", "", f"T{i}", f"teacher{i}@bench.example",
              "", "", "", ""] for i, t in enumerate(teachers)]
    for i in range(shape.students):
        sid, school = f"s{i:06d}", schools[i % shape.schools]
        grade = f"{9 + i % 4:02d}"
        users.append([sid, "", "", "true", school, "student", f"student{i}", "", "Student",
                      f"Number{i}", "", f"S{i}", f"student{i}@bench.example", "", "", "",
                      grade])
        for cls in rng.sample(classes_at[school], min(ENROLLMENTS_PER_STUDENT,
                                                      len(classes_at[school]))):
            enrollments.append([f"e{sid}{cls}", "", "", cls, school, sid, "student", "false",
                                "", ""])
    tables = {"orgs.csv": orgs, "academicSessions.csv": sessions, "courses.csv": courses,
              "classes.csv": classes, "users.csv": users, "enrollments.csv": enrollments}
    return {"manifest.csv": manifest_11("campusgate benchmark"),
            **{name: csv_file(HEADERS_11[name], rows) for name, rows in tables.items()}}


def district_bundle(people: int, seed: int = 5) -> bytes:
    """The district as a zip, as a district's SIS exports it."""
    return bundle_zip(district_files(people, seed))


def roster_rows(files: dict[str, bytes]) -> dict[str, int]:
    """Rows per CSV file (header and manifest not counted)."""
    return {name.removesuffix(".csv"): data.count(b"\n") - 1
            for name, data in files.items() if name != "manifest.csv"}


def roster_yaml(*, proxy_port: int, admin_port: int, upstream_port: int,
                storage: Path | str) -> str:
    """campusgate with its plain route, storing in ``storage``: a SQLite file path, or
    a ``postgresql://`` URL."""
    text = campusgate_yaml(proxy_port=proxy_port, admin_port=admin_port,
                           upstream_port=upstream_port, storage=Path("roster.db"))
    doc = json.loads(text)
    doc["storage"] = (str(storage) if str(storage).startswith("postgresql")
                      else f"sqlite:///{storage}")
    return json.dumps(doc, indent=1) + "\n"


def figures(seconds: float, shape: DistrictShape) -> dict[str, Any]:
    """People and rows per second of one timed import or insert."""
    return {"seconds": round(seconds, 3),
            "people_per_s": round(shape.people / seconds, 1) if seconds > 0 else None,
            "rows_per_s": round(shape.rows / seconds, 1) if seconds > 0 else None}
