"""The roster store: importing bundles (one transaction; ids stable across re-imports;
bulk and delta), and the read API the ClassLink sandbox uses -- on SQLite and on
PostgreSQL."""

from __future__ import annotations

import pytest
from roster_bundles import BUNDLE_11, edited, zip_bundle

from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.roster.bundle import Bundle, ImportRefused, Progress
from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.store import RosterStore, TenantExists


def bundle_of(files: dict[str, str] | None = None) -> Bundle:
    return read_bundle(zip_bundle(files or dict(BUNDLE_11)))


async def test_the_read_api_answers_what_was_imported(roster: RosterStore) -> None:
    tenant = await roster.create_tenant("lakeside")
    await roster.apply(tenant.id, bundle_of())
    assert await roster.tenants() == [tenant]
    assert await roster.tenant(tenant.id) == tenant
    assert await roster.tenant(tenant.id + 1) is None

    district = await roster.district(tenant.id)
    assert district is not None and district.name == "Lakeside District"
    assert [o.sourced_id for o in await roster.orgs(tenant.id, "school")] == ["s1", "s2"]
    assert len(await roster.orgs(tenant.id)) == 3
    school = await roster.org(tenant.id, "s1")
    assert school is not None and school.parent_sourced_id == "d1"

    sam = await roster.person(tenant.id, "u2")
    assert sam is not None
    assert (sam.username, sam.role, sam.grades, sam.middle_name) == (
        "sam.lee", "student", ("09",), "J")
    assert await roster.person_for_account(sam.account_id or "") == sam
    assert await roster.person(tenant.id, "nobody") is None

    [(algebra, enrollment)] = await roster.classes_of(sam)
    assert (algebra.sourced_id, algebra.school_sourced_id, algebra.periods) == (
        "k1", "s1", ("1",))
    assert enrollment.role == "student" and enrollment.is_primary is False
    assert [p.sourced_id for p in await roster.members(tenant.id, "k1", "student")] == ["u2"]
    assert [p.username for p in await roster.members(tenant.id, "k1", "teacher")] == [
        "ms.rivera"]

    course = await roster.course(tenant.id, "c1")
    assert course is not None and course.grades == ("09", "10")
    term = await roster.academic_session(tenant.id, "t1")
    assert term is not None and (term.start_date, term.parent_sourced_id) == (
        "2026-08-17", "y1")
    assert (await roster.school_class(tenant.id, "k2")) is not None


async def test_tenants_are_separate_and_names_unique(roster: RosterStore) -> None:
    one = await roster.create_tenant("one")
    two = await roster.create_tenant("two")
    with pytest.raises(TenantExists):
        await roster.create_tenant("one")
    await roster.apply(one.id, bundle_of())
    # Same sourcedIds in another district are other people.
    files = edited(dict(BUNDLE_11), "users.csv", "ms.rivera", "ana.r2")
    for old, new in (("sam.lee", "sam.l2"), ("kim.park", "kim.p2"), ("dr.adams", "dr.a2")):
        files = edited(files, "users.csv", old, new)
    await roster.apply(two.id, read_bundle(zip_bundle(files)))
    first, second = await roster.person(one.id, "u1"), await roster.person(two.id, "u1")
    assert first is not None and second is not None
    assert (first.username, second.username) == ("ms.rivera", "ana.r2")
    assert first.id != second.id and first.account_id != second.account_id


async def test_progress_is_reported_per_stage(roster: RosterStore) -> None:
    tenant = await roster.create_tenant("lakeside")
    events: list[Progress] = []
    await roster.apply(tenant.id, bundle_of(), events.append)
    last = {e.stage: (e.done, e.total) for e in events}
    assert last == {"passwords": (1, 1), "orgs": (3, 3), "academicSessions": (2, 2),
                    "courses": (2, 2), "classes": (2, 2), "users": (4, 4),
                    "enrollments": (3, 3), "accounts": (4, 4)}


async def import_cycle(roster: RosterStore, directory: IdentityDirectory) -> None:
    """Import, re-import, change, fail: what a district's nightly sync goes through."""
    tenant = await roster.create_tenant("lakeside")
    first = await roster.apply(tenant.id, bundle_of())
    assert first.created["users"] == 4 and first.accounts["created"] == 4
    ids = {sid: await roster.person(tenant.id, sid) for sid in ("u1", "u2", "u3")}
    kim_account = ids["u3"].account_id if ids["u3"] else None
    assert kim_account is not None

    # The same bundle again: nothing to write; the ids stay.
    again = await roster.apply(tenant.id, bundle_of())
    assert again.created["users"] == again.updated["users"] == 0
    assert again.accounts == {"created": 0, "updated": 0, "disabled": 0}
    for sid, before in ids.items():
        after = await roster.person(tenant.id, sid)
        assert after is not None and before is not None
        assert (after.id, after.account_id) == (before.id, before.account_id)

    # Bulk: a class, its enrollment and a student gone from the files are removed.
    files = edited(dict(BUNDLE_11), "classes.csv",
                   "k2,,,Science 7 - P2,07,c2,SCI7-2,scheduled,Lab 2,s2,t1,Science,2\n", "")
    files = edited(files, "enrollments.csv", "e3,,,k2,s2,u3,student,false,2026-08-17,\n", "")
    files = edited(files, "users.csv", "u3,,,true,s2,student,kim.park,,Kim,Park,,S3,,,,,07,\n",
                   "")
    files = edited(files, "classes.csv", "Algebra I - P1", "Algebra I - Period 1")
    changed = await roster.apply(tenant.id, bundle_of(files))
    assert (changed.deleted["classes"], changed.deleted["users"],
            changed.deleted["enrollments"]) == (1, 1, 1)
    assert changed.updated == {"orgs": 0, "academicSessions": 0, "courses": 0,
                               "classes": 1, "users": 0, "enrollments": 0}
    assert await roster.school_class(tenant.id, "k2") is None
    assert await roster.person(tenant.id, "u3") is None
    algebra = await roster.school_class(tenant.id, "k1")
    assert algebra is not None and algebra.title == "Algebra I - Period 1"
    kim = await directory.get_user(kim_account)
    assert kim is not None and kim.disabled

    # A failing import changes nothing: here the last step, accounts, is refused.
    await directory.create_user("taken.name")
    broken = edited(dict(BUNDLE_11), "users.csv", "sam.lee", "taken.name")
    broken = edited(broken, "orgs.csv", "Lakeside High", "Renamed High")
    with pytest.raises(ImportRefused) as refused:
        await roster.apply(tenant.id, bundle_of(broken))
    assert [str(p) for p in refused.value.problems] == [
        "users.csv:3: username 'taken.name' belongs to another account"]
    high = await roster.org(tenant.id, "s1")
    assert high is not None and high.name == "Lakeside High"
    assert await roster.school_class(tenant.id, "k2") is None
    assert await roster.person(tenant.id, "u3") is None
    sam = await roster.person(tenant.id, "u2")
    assert sam is not None and sam.username == "sam.lee"


async def test_an_import_cycle_on_sqlite(roster: RosterStore,
                                         identity_ctx: IdentityContext) -> None:
    await import_cycle(roster, identity_ctx.directory)


async def test_an_import_cycle_on_postgresql(pg_directory: IdentityDirectory) -> None:
    await import_cycle(RosterStore(pg_directory.engine, pg_directory.keyring), pg_directory)


async def test_a_delta_upserts_and_deletes_what_is_tobedeleted(roster: RosterStore) -> None:
    tenant = await roster.create_tenant("lakeside")
    await roster.apply(tenant.id, bundle_of())
    delta = {
        "manifest.csv": "propertyName,value\noneroster.version,1.1\n"
                        "file.users,delta\nfile.enrollments,delta\n",
        "users.csv": BUNDLE_11["users.csv"].splitlines()[0] + "\n"
        "u3,tobedeleted,,true,s2,student,kim.park,,Kim,Park,,S3,,,,,07,\n"
        "u5,active,,true,s2,student,new.kid,,New,Kid,,S5,,,,,07,\n",
        "enrollments.csv": BUNDLE_11["enrollments.csv"].splitlines()[0] + "\n"
        "e3,tobedeleted,,k2,s2,u3,student,false,,\n"
        "e5,active,,k2,s2,u5,student,false,,\n",
    }
    result = await roster.apply(tenant.id, read_bundle(zip_bundle(delta)))
    assert (result.created["users"], result.deleted["users"]) == (1, 1)
    assert "orgs" not in result.created  # files the delta does not carry are untouched
    assert await roster.person(tenant.id, "u3") is None
    assert [p.username for p in await roster.members(tenant.id, "k2", "student")] == [
        "new.kid"]
    assert await roster.person(tenant.id, "u1") is not None


async def test_inactive_rows_stay_out_of_lists(roster: RosterStore) -> None:
    tenant = await roster.create_tenant("lakeside")
    files = edited(dict(BUNDLE_11), "enrollments.csv", "e2,,,k1", "e2,tobedeleted,,k1")
    await roster.apply(tenant.id, bundle_of(files))
    sam = await roster.person(tenant.id, "u2")
    assert sam is not None and await roster.classes_of(sam) == []
    assert await roster.members(tenant.id, "k1", "student") == []


async def test_a_large_district_imports_in_batches(roster: RosterStore) -> None:
    header = BUNDLE_11["users.csv"].splitlines()[0]
    people = "".join(f"p{n},,,true,s1,student,student{n},,S,N{n},,,,,,,09,\n"
                     for n in range(1200))
    enrolled = "".join(f"x{n},,,k1,s1,p{n},student,false,,\n" for n in range(1200))
    files = {**BUNDLE_11, "users.csv": header + "\n" + people,
             "enrollments.csv": BUNDLE_11["enrollments.csv"].splitlines()[0] + "\n" + enrolled}
    tenant = await roster.create_tenant("big")
    result = await roster.apply(tenant.id, bundle_of(files))
    assert result.created["users"] == 1200 and result.accounts["created"] == 1200
    assert len(await roster.members(tenant.id, "k1", "student")) == 1200
    assert len(await roster.page("users", tenant.id, offset=1100, limit=500)) == 100
