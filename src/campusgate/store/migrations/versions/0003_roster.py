"""Sign-in sources and rosters: local accounts linked to upstream logins (ClassLink,
OpenID providers), and districts' OneRoster data (orgs, sessions, courses, classes,
users, enrollments).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_user_links",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "subject", name="pk_identity_user_links"),
    )
    op.create_index(
        "ix_identity_user_links_user_id", "identity_user_links", ["user_id"], unique=False
    )
    op.create_table(
        "roster_academic_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sourced_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("start_date", sa.String(length=10), nullable=True),
        sa.Column("end_date", sa.String(length=10), nullable=True),
        sa.Column("parent_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("school_year", sa.String(length=4), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_academic_sessions"),
        sa.UniqueConstraint(
            "tenant_id", "sourced_id", name="uq_roster_academic_sessions_tenant_id"
        ),
    )
    op.create_table(
        "roster_classes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sourced_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("class_code", sa.String(length=255), nullable=True),
        sa.Column("class_type", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("course_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("school_sourced_id", sa.String(length=255), nullable=False),
        sa.Column("term_sourced_ids", sa.Text(), nullable=False),
        sa.Column("grades", sa.Text(), nullable=False),
        sa.Column("subjects", sa.Text(), nullable=False),
        sa.Column("periods", sa.Text(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_classes"),
        sa.UniqueConstraint("tenant_id", "sourced_id", name="uq_roster_classes_tenant_id"),
    )
    op.create_index(
        "ix_roster_classes_school",
        "roster_classes",
        ["tenant_id", "school_sourced_id"],
        unique=False,
    )
    op.create_table(
        "roster_courses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sourced_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("course_code", sa.String(length=255), nullable=True),
        sa.Column("school_year_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("org_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("grades", sa.Text(), nullable=False),
        sa.Column("subjects", sa.Text(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_courses"),
        sa.UniqueConstraint("tenant_id", "sourced_id", name="uq_roster_courses_tenant_id"),
    )
    op.create_table(
        "roster_enrollments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sourced_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("class_sourced_id", sa.String(length=255), nullable=False),
        sa.Column("school_sourced_id", sa.String(length=255), nullable=False),
        sa.Column("user_sourced_id", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=True),
        sa.Column("begin_date", sa.String(length=10), nullable=True),
        sa.Column("end_date", sa.String(length=10), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_enrollments"),
        sa.UniqueConstraint("tenant_id", "sourced_id", name="uq_roster_enrollments_tenant_id"),
    )
    op.create_index(
        "ix_roster_enrollments_class",
        "roster_enrollments",
        ["tenant_id", "class_sourced_id"],
        unique=False,
    )
    op.create_index(
        "ix_roster_enrollments_user",
        "roster_enrollments",
        ["tenant_id", "user_sourced_id"],
        unique=False,
    )
    op.create_table(
        "roster_orgs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sourced_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=True),
        sa.Column("parent_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_orgs"),
        sa.UniqueConstraint("tenant_id", "sourced_id", name="uq_roster_orgs_tenant_id"),
    )
    op.create_table(
        "roster_tenants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_tenants"),
        sa.UniqueConstraint("name", name="uq_roster_tenants_name"),
    )
    op.create_table(
        "roster_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sourced_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("enabled_user", sa.Boolean(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("middle_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("sms", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("grades", sa.Text(), nullable=False),
        sa.Column("org_sourced_ids", sa.Text(), nullable=False),
        sa.Column("agent_sourced_ids", sa.Text(), nullable=False),
        sa.Column("user_ids", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_users"),
        sa.UniqueConstraint("tenant_id", "sourced_id", name="uq_roster_users_tenant_id"),
    )
    op.create_index("ix_roster_users_account_id", "roster_users", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_roster_users_account_id", table_name="roster_users")
    op.drop_table("roster_users")
    op.drop_table("roster_tenants")
    op.drop_table("roster_orgs")
    op.drop_index("ix_roster_enrollments_user", table_name="roster_enrollments")
    op.drop_index("ix_roster_enrollments_class", table_name="roster_enrollments")
    op.drop_table("roster_enrollments")
    op.drop_table("roster_courses")
    op.drop_index("ix_roster_classes_school", table_name="roster_classes")
    op.drop_table("roster_classes")
    op.drop_table("roster_academic_sessions")
    op.drop_index("ix_identity_user_links_user_id", table_name="identity_user_links")
    op.drop_table("identity_user_links")
