"""Roll-ups: access records summed per minute, hour and day, per worker
(``store/rollup_tables.py``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY = ("period", "dims", "bucket", "worker_id", "route", "service", "consumer", "model",
        "upstream", "status", "error")


def upgrade() -> None:
    op.create_table(
        "rollups",
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("dims", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("upstream", sa.String(length=300), nullable=False),
        sa.Column("status", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("error", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in (
            "requests", "errors", "rate_limited", "bytes_in", "bytes_out", "input_tokens",
            "output_tokens", "cached_tokens", "cost_nanousd")),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("upstream_requests", sa.BigInteger(), nullable=False),
        sa.Column("upstream_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("upstream_latency", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(*_KEY, name="pk_rollups"),
    )
    op.create_index("ix_rollups_route", "rollups", ["period", "dims", "route", "bucket"])
    op.create_index("ix_rollups_consumer", "rollups", ["period", "dims", "consumer", "bucket"])


def downgrade() -> None:
    op.drop_index("ix_rollups_consumer", table_name="rollups")
    op.drop_index("ix_rollups_route", table_name="rollups")
    op.drop_table("rollups")
