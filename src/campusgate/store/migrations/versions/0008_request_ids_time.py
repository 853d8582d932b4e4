"""An index on ``access_request_ids.time_ms``: retention deletes those rows by time
(``observe/retention.py``), which without it scanned the whole table once per chunk.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_access_request_ids_time", "access_request_ids", ["time_ms"])


def downgrade() -> None:
    op.drop_index("ix_access_request_ids_time", table_name="access_request_ids")
