"""Access records in segments (``store/access_tables.py``): ``access_records`` (one row
per request) gives way to ``access_segments`` (one compressed row per batch) and
``access_request_ids``.  Records already in ``access_records`` are moved into
segments of up to 5,000 records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Records per segment when moving old rows.
_CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "access_segments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("time_min_ms", sa.BigInteger(), nullable=False),
        sa.Column("time_max_ms", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("rid_min", sa.Text(), nullable=True),
        sa.Column("rid_max", sa.Text(), nullable=True),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_segments"),
    )
    op.create_index("ix_access_segments_time", "access_segments", ["time_max_ms", "id"])
    op.create_table(
        "access_request_ids",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_request_ids"),
    )
    op.create_index("ix_access_request_ids_request_id", "access_request_ids",
                    ["request_id"])
    _move_records()
    op.drop_index("ix_access_records_request_id", table_name="access_records")
    op.drop_index("ix_access_records_time", table_name="access_records")
    op.drop_table("access_records")


def _move_records() -> None:
    """Every ``access_records`` row into segments, oldest first."""
    import json

    from campusgate.observe import segments
    from campusgate.observe.record import FIELDS, AccessRecord

    conn = op.get_bind()
    insert_segment = sa.text(
        "INSERT INTO access_segments (time_min_ms, time_max_ms, records, rid_min, "
        "rid_max, terms, body) VALUES (:time_min_ms, :time_max_ms, :records, :rid_min, "
        ":rid_max, :terms, :body)")
    last = -1
    while True:
        rows = conn.execute(sa.text("SELECT * FROM access_records WHERE id > :last "
                                    "ORDER BY id LIMIT :n"), {"last": last, "n": _CHUNK}
                            ).mappings().all()
        if not rows:
            return
        last = rows[-1]["id"]
        batch = []
        for row in rows:
            values = {name: row[name] for name in FIELDS if name != "time"}
            redactions = values.get("ai_redactions")
            values["ai_redactions"] = json.loads(redactions) if redactions else None
            batch.append(AccessRecord(time=row["time_ms"] / 1000, **values))
        segment = segments.encode(batch)
        params = {"time_min_ms": segment.time_min_ms, "time_max_ms": segment.time_max_ms,
                  "records": segment.records, "rid_min": segment.rid_min,
                  "rid_max": segment.rid_max, "terms": segment.terms, "body": segment.body}
        if conn.dialect.name == "postgresql":
            segment_id = conn.execute(sa.text(insert_segment.text + " RETURNING id"),
                                      params).scalar_one()
        else:
            segment_id = conn.execute(insert_segment, params).lastrowid
        if segment.loose_ids:
            conn.execute(sa.text("INSERT INTO access_request_ids (request_id, segment_id, "
                                 "time_ms) VALUES (:r, :s, :t)"),
                         [{"r": r, "s": segment_id, "t": t} for r, t in segment.loose_ids])


def downgrade() -> None:
    # the one-row-per-request table comes back, empty: segments are not unpacked
    op.create_table(
        "access_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=False),
        sa.Column("span_id", sa.Text(), nullable=False),
        sa.Column("parent_span_id", sa.Text(), nullable=True),
        sa.Column("listener", sa.Text(), nullable=False),
        sa.Column("worker", sa.Integer(), nullable=False),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("service", sa.Text(), nullable=True),
        sa.Column("upstream", sa.Text(), nullable=True),
        sa.Column("consumer", sa.Text(), nullable=True),
        sa.Column("credential", sa.Text(), nullable=True),
        sa.Column("client_ip", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("upstream_latency_ms", sa.Float(), nullable=True),
        sa.Column("overhead_ms", sa.Float(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("rate_limit", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("ai_provider", sa.Text(), nullable=True),
        sa.Column("ai_model", sa.Text(), nullable=True),
        sa.Column("ai_provider_model", sa.Text(), nullable=True),
        sa.Column("ai_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("ai_output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("ai_cached_tokens", sa.BigInteger(), nullable=True),
        sa.Column("ai_cost", sa.Text(), nullable=True),
        sa.Column("ai_redactions", sa.Text(), nullable=True),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_records"),
    )
    op.create_index("ix_access_records_time", "access_records", ["time_ms", "id"], unique=False)
    op.create_index("ix_access_records_request_id", "access_records", ["request_id"], unique=False)

    op.drop_index("ix_access_request_ids_request_id", table_name="access_request_ids")
    op.drop_table("access_request_ids")
    op.drop_index("ix_access_segments_time", table_name="access_segments")
    op.drop_table("access_segments")
