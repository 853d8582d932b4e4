"""Small OneRoster bundles for the roster tests, as editable text: a district with two
schools, a year with a term, two courses and classes, a teacher, two students and an
administrator (1.1 and 1.2 flavours), and :func:`zip_bundle` to pack them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

COMMON = "sourcedId,status,dateLastModified"

MANIFEST_11 = """propertyName,value
manifest.version,1.0
oneroster.version,1.1
file.academicSessions,bulk
file.orgs,bulk
file.courses,bulk
file.classes,bulk
file.users,bulk
file.enrollments,bulk
file.demographics,absent
"""

ORGS = f"""{COMMON},name,type,identifier,parentSourcedId
d1,,,Lakeside District,district,LSD,
s1,,,Lakeside High,school,LHS,d1
s2,,,Lakeside Middle,school,LMS,d1
"""

SESSIONS = f"""{COMMON},title,type,startDate,endDate,parentSourcedId,schoolYear
y1,,,2026-2027,schoolYear,2026-08-17,2027-06-11,,2027
t1,,,Fall,term,2026-08-17,2027-01-15,y1,2027
"""

COURSES = f"""{COMMON},schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects
c1,,,y1,Algebra I,ALG1,"09,10",s1,Mathematics
c2,,,y1,Science 7,SCI7,07,s2,Science
"""

CLASSES = (f"{COMMON},title,grades,courseSourcedId,classCode,classType,location,"
           "schoolSourcedId,termSourcedIds,subjects,periods\n"
           'k1,,,Algebra I - P1,"09,10",c1,ALG1-1,scheduled,Room 101,s1,t1,Mathematics,1\n'
           "k2,,,Science 7 - P2,07,c2,SCI7-2,scheduled,Lab 2,s2,t1,Science,2\n")

USERS_11 = (f"{COMMON},enabledUser,orgSourcedIds,role,username,userIds,givenName,"
            "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
            "password\n"
            "u1,,,true,s1,teacher,ms.rivera,,Ana,Rivera,,T1,ana.rivera@lakeside.example"
            ",,,,,teach-pass\n"
            "u2,,,true,s1,student,sam.lee,,Sam,Lee,J,S2,sam.lee@lakeside.example,,,,09,\n"
            "u3,,,true,s2,student,kim.park,,Kim,Park,,S3,,,,,07,\n"
            'u4,,,true,"d1,s1,s2",administrator,dr.adams,,Dee,Adams,,A4,'
            "dee.adams@lakeside.example,,,,,\n")

ENROLLMENTS = (f"{COMMON},classSourcedId,schoolSourcedId,userSourcedId,role,primary,"
               "beginDate,endDate\n"
               "e1,,,k1,s1,u1,teacher,true,,\n"
               "e2,,,k1,s1,u2,student,false,,\n"
               "e3,,,k2,s2,u3,student,false,2026-08-17,\n")

#: The valid 1.1 bundle: file name -> text.
BUNDLE_11: Mapping[str, str] = {
    "manifest.csv": MANIFEST_11, "orgs.csv": ORGS, "academicSessions.csv": SESSIONS,
    "courses.csv": COURSES, "classes.csv": CLASSES, "users.csv": USERS_11,
    "enrollments.csv": ENROLLMENTS,
}

USERS_12 = (f"{COMMON},enabledUser,username,userIds,givenName,familyName,middleName,"
            "identifier,email,sms,phone,agentSourcedIds,grades,password,"
            "userMasterIdentifier,preferredGivenName,preferredMiddleName,"
            "preferredFamilyName,primaryOrgSourcedId,pronouns\n"
            "u1,active,2026-08-01T00:00:00Z,true,ms.rivera,,Ana,Rivera,,T1,"
            "ana.rivera@lakeside.example,,,,,,,Annie,,,s1,she/her\n"
            "u2,active,2026-08-01T00:00:00Z,true,sam.lee,,Sam,Lee,,S2,,,,,09,,,,,,s1,\n"
            "u4,active,2026-08-01T00:00:00Z,true,dr.adams,,Dee,Adams,,A4,,,,,,,,,,,d1,\n")

ROLES_12 = (f"{COMMON},userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,"
            "userProfileSourcedId\n"
            "r1,active,2026-08-01T00:00:00Z,u1,primary,teacher,,,s1,\n"
            "r2,active,2026-08-01T00:00:00Z,u2,primary,student,,,s1,\n"
            "r3,active,2026-08-01T00:00:00Z,u4,secondary,teacher,,,s2,\n"
            "r4,active,2026-08-01T00:00:00Z,u4,primary,districtAdministrator,,,d1,\n")

#: A valid 1.2 bundle (no manifest: the version comes from the headers).
BUNDLE_12: Mapping[str, str] = {
    "orgs.csv": ORGS, "academicSessions.csv": SESSIONS, "courses.csv": COURSES,
    "classes.csv": CLASSES, "users.csv": USERS_12, "roles.csv": ROLES_12,
    "enrollments.csv": "\n".join(ENROLLMENTS.splitlines()[:3]) + "\n",
}


def zip_bundle(files: Mapping[str, str | bytes], folder: str = "") -> bytes:
    """A zip of ``files`` (text is encoded UTF-8), optionally inside ``folder``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            archive.writestr(folder + name, data)
    return buffer.getvalue()


def edited(files: Mapping[str, str], name: str, old: str, new: str) -> dict[str, str]:
    """``files`` with one text replacement in ``name`` (which must contain ``old``)."""
    assert old in files[name], (name, old)
    return {**files, name: files[name].replace(old, new)}
