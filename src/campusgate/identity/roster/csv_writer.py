"""Writing OneRoster 1.1 CSV bundles: what the demo district (``demo.py``) and
generated test districts (the ``roster-import`` benchmark) are made of.

The headers are OneRoster 1.1's (CSV Tables, section 3) in the order a student
information system exports them; the manifest declares every file ``bulk``.  Rows are
lists of strings in header order.  The zip's timestamps are fixed, so the same rows
make the same bytes.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

__all__ = ["HEADERS_11", "bundle_zip", "csv_file", "manifest_11"]

_COMMON = ("sourcedId", "status", "dateLastModified")

#: File name -> header.  ``users.csv`` may add a ``password`` column at the end.
HEADERS_11: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "orgs.csv": (*_COMMON, "name", "type", "identifier", "parentSourcedId"),
    "academicSessions.csv": (*_COMMON, "title", "type", "startDate", "endDate",
                             "parentSourcedId", "schoolYear"),
    "courses.csv": (*_COMMON, "schoolYearSourcedId", "title", "courseCode", "grades",
                    "orgSourcedId", "subjects"),
    "classes.csv": (*_COMMON, "title", "grades", "courseSourcedId", "classCode",
                    "classType", "location", "schoolSourcedId", "termSourcedIds",
                    "subjects", "periods"),
    "users.csv": (*_COMMON, "enabledUser", "orgSourcedIds", "role", "username", "userIds",
                  "givenName", "familyName", "middleName", "identifier", "email", "sms",
                  "phone", "agentSourcedIds", "grades"),
    "enrollments.csv": (*_COMMON, "classSourcedId", "schoolSourcedId", "userSourcedId",
                        "role", "primary", "beginDate", "endDate"),
})


def csv_file(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """One CSV file, UTF-8 with CRLF line ends (RFC 4180), header first."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def manifest_11(source_system: str) -> bytes:
    """``manifest.csv`` of a 1.1 bundle whose files are all ``bulk``."""
    stems = sorted(name.removesuffix(".csv") for name in HEADERS_11)
    return csv_file(["propertyName", "value"], [
        ["manifest.version", "1.0"], ["oneroster.version", "1.1"],
        *[[f"file.{stem}", "bulk"] for stem in stems],
        ["source.systemName", source_system]])


def bundle_zip(files: Mapping[str, bytes]) -> bytes:
    """The files as a deflated zip, entries at the root, fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=(2026, 8, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED  # a ZipInfo's own default: stored
            archive.writestr(entry, data)
    return buffer.getvalue()
