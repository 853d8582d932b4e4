"""The store's tables (SQLAlchemy Core).  Migrations in ``migrations/versions`` create
them; ``tests/store/test_migrations.py`` checks the two agree.

Times are ``DateTime(timezone=True)`` where people read them, and epoch seconds
(``BigInteger``) where tokens and keys are compared with JWT ``iat``/``exp``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "admin_tokens",
    "config_revisions",
    "identity_consents",
    "identity_grants",
    "identity_refresh_tokens",
    "identity_signing_keys",
    "identity_user_links",
    "identity_users",
    "metadata",
    "roster_academic_sessions",
    "roster_classes",
    "roster_courses",
    "roster_enrollments",
    "roster_orgs",
    "roster_tenants",
    "roster_users",
    "settings",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: One row per revision of the entities.  ``revision`` is assigned by the writer as
#: latest + 1, so two racing writers collide on the primary key instead of both
#: succeeding: that collision is how optimistic concurrency is enforced.
config_revisions = Table(
    "config_revisions",
    metadata,
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(200), nullable=False),
    Column("entities", Text, nullable=False),
)

#: Small key/value settings of the installation.
settings = Table(
    "settings",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Admin API tokens: only a SHA-256 of each token is kept, plus a short visible prefix
#: so operators can tell tokens apart.  Revoked tokens stay, with ``revoked_at`` set.
admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


# ---------------------------------------------------------------- identity provider
# Users, consents, grants, refresh tokens and signing keys of the built-in OpenID
# provider (``identity/directory.py``).  Its clients are entities (config revisions).

#: Local accounts.  ``username`` is stored lowercased (unique, case-insensitive);
#: ``claims`` is a JSON object of further OIDC claims; ``password_hash`` is argon2id.
identity_users = Table(
    "identity_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("email", String(320), nullable=True, index=True),
    Column("email_verified", Boolean, nullable=False),
    Column("name", String(200), nullable=True),
    Column("given_name", String(200), nullable=True),
    Column("family_name", String(200), nullable=True),
    Column("claims", Text, nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: What a user allowed a client: ``scopes`` space-separated, sorted.
identity_consents = Table(
    "identity_consents",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("client_id", String(128), primary_key=True, index=True),
    Column("scopes", Text, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

#: One authorization (a refresh-token family).  ``auth_time`` is epoch seconds.
identity_grants = Table(
    "identity_grants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("scope", Text, nullable=False),
    Column("auth_time", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_identity_grants_user_id_client_id", "user_id", "client_id"),
)

#: Refresh tokens by SHA-256 (hex) only; times in epoch seconds.  ``used_at`` is set
#: once, atomically, on redemption: a second use is a replay.
identity_refresh_tokens = Table(
    "identity_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", String(36), nullable=False, index=True),
    Column("client_id", String(128), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("scope", Text, nullable=False),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

#: Token-signing keys; the private JWK is encrypted with the installation keyring.
identity_signing_keys = Table(
    "identity_signing_keys",
    metadata,
    Column("kid", String(100), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk_encrypted", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
)

#: A local account's identity at an upstream login source (ClassLink, an OpenID
#: provider): ``subject`` is what the source calls the person -- for ClassLink
#: ``<TenantId>:<SourcedId>`` (a SourcedId is unique only within a district), for an
#: OpenID provider its ``sub``.  One account may be linked to several sources.
identity_user_links = Table(
    "identity_user_links",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("subject", String(320), primary_key=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True), nullable=True),
)


# ---------------------------------------------------------------- roster (OneRoster)
# Districts, schools, courses, classes, people and enrollments, in the OneRoster 1.1 /
# 1.2 data model (``identity/roster/``).  Every row belongs to a tenant (a district);
# ``sourced_id`` is unique within its tenant only.  The integer ``id`` of each row is
# stable across re-imports (rows are matched on tenant + sourced id) and is what the
# ClassLink-shaped endpoints show as ``UserId``, ``BuildingId``, ``TenantId``.
# List-valued fields (grades, subjects, org ids, ...) are JSON arrays in Text; ``extra``
# is a JSON object of the columns and ``metadata.*`` values the model has no field for.

#: A district whose roster campusgate holds (ClassLink's "tenant").
roster_tenants = Table(
    "roster_tenants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Organisations: the district, its schools (``type`` district, school, department,
#: local, state, national).
roster_orgs = Table(
    "roster_orgs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("sourced_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("identifier", String(255), nullable=True),
    Column("parent_sourced_id", String(255), nullable=True),
    Column("extra", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "sourced_id"),
)

#: School years, terms, semesters, grading periods (dates ISO ``YYYY-MM-DD``).
roster_academic_sessions = Table(
    "roster_academic_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("sourced_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("title", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("start_date", String(10), nullable=True),
    Column("end_date", String(10), nullable=True),
    Column("parent_sourced_id", String(255), nullable=True),
    Column("school_year", String(4), nullable=True),
    Column("extra", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "sourced_id"),
)

roster_courses = Table(
    "roster_courses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("sourced_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("title", String(255), nullable=False),
    Column("course_code", String(255), nullable=True),
    Column("school_year_sourced_id", String(255), nullable=True),
    Column("org_sourced_id", String(255), nullable=True),
    Column("grades", Text, nullable=False),
    Column("subjects", Text, nullable=False),
    Column("extra", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "sourced_id"),
)

#: ``class_type`` homeroom or scheduled; ``term_sourced_ids``, ``periods``: JSON arrays.
roster_classes = Table(
    "roster_classes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("sourced_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("title", String(255), nullable=False),
    Column("class_code", String(255), nullable=True),
    Column("class_type", String(32), nullable=False),
    Column("location", String(255), nullable=True),
    Column("course_sourced_id", String(255), nullable=True),
    Column("school_sourced_id", String(255), nullable=False),
    Column("term_sourced_ids", Text, nullable=False),
    Column("grades", Text, nullable=False),
    Column("subjects", Text, nullable=False),
    Column("periods", Text, nullable=False),
    Column("extra", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "sourced_id"),
    Index("ix_roster_classes_school", "tenant_id", "school_sourced_id"),
)

#: People.  ``role`` is the OneRoster role (student, teacher, administrator, aide,
#: guardian, parent, ...; for 1.2 bundles the primary role from ``roles.csv``);
#: ``org_sourced_ids`` the orgs they belong to.  ``account_id`` is the local account
#: (``identity_users.id``) that signs in as this person, if any.
roster_users = Table(
    "roster_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("sourced_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("enabled_user", Boolean, nullable=False),
    Column("username", String(200), nullable=False),
    Column("given_name", String(200), nullable=False),
    Column("family_name", String(200), nullable=False),
    Column("middle_name", String(200), nullable=True),
    Column("role", String(40), nullable=False),
    Column("identifier", String(255), nullable=True),
    Column("email", String(320), nullable=True),
    Column("sms", String(64), nullable=True),
    Column("phone", String(64), nullable=True),
    Column("grades", Text, nullable=False),
    Column("org_sourced_ids", Text, nullable=False),
    Column("agent_sourced_ids", Text, nullable=False),
    Column("user_ids", Text, nullable=False),
    Column("account_id", String(36), nullable=True, index=True),
    Column("extra", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "sourced_id"),
)

#: Who is in which class, as what (student, teacher, aide, administrator).
roster_enrollments = Table(
    "roster_enrollments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("sourced_id", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("class_sourced_id", String(255), nullable=False),
    Column("school_sourced_id", String(255), nullable=False),
    Column("user_sourced_id", String(255), nullable=False),
    Column("role", String(40), nullable=False),
    Column("is_primary", Boolean, nullable=True),
    Column("begin_date", String(10), nullable=True),
    Column("end_date", String(10), nullable=True),
    Column("extra", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "sourced_id"),
    Index("ix_roster_enrollments_user", "tenant_id", "user_sourced_id"),
    Index("ix_roster_enrollments_class", "tenant_id", "class_sourced_id"),
)

# The observe plane's tables live beside their code, on this metadata.
from campusgate.store import access_tables, alert_tables, rollup_tables  # noqa: E402,F401
