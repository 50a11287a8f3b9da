"""Initial schema: runs, steps, events, retention policies.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rundossier.storage.db.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rd_run",
        sa.Column("run_id", sa.String(30), primary_key=True),
        sa.Column("orchestrator", sa.String(16), nullable=False),
        sa.Column("flow_id", sa.String(250), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("parent_run_id", sa.String(30)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("queued_at", UTCDateTime()),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("error_type", sa.String(200)),
        sa.Column("error_message", sa.Text),
        sa.Column("failure_class", sa.String(40)),
        sa.Column("fingerprint", sa.String(32)),
        sa.Column("root_step_id", sa.String(250)),
        sa.Column("trace_uri", sa.Text),
        sa.Column("trace_bytes", sa.Integer),
        sa.Column("spooled", sa.Boolean, nullable=False),
        sa.Column("blobs_expired", sa.Boolean, nullable=False),
        sa.Column("blobs_expired_at", UTCDateTime()),
        sa.Column("host", sa.String(250)),
        sa.Column("agent", sa.String(250)),
        sa.Column("traceparent", sa.String(60)),
        sa.Column("params_hash", sa.String(64)),
        sa.Column("code_version", sa.String(100)),
        sa.Column("tags", sa.JSON),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("orchestrator", "flow_id", "run_key", name="uq_rd_run_key"),
    )
    op.create_index("ix_rd_run_flow", "rd_run", ["flow_id", "run_id"])
    op.create_index("ix_rd_run_status", "rd_run", ["status", "run_id"])
    op.create_index("ix_rd_run_fingerprint", "rd_run", ["fingerprint", "run_id"])
    op.create_index("ix_rd_run_orchestrator", "rd_run", ["orchestrator", "run_id"])

    op.create_table(
        "rd_step",
        sa.Column("run_id", sa.String(30), primary_key=True),
        sa.Column("step_id", sa.String(250), primary_key=True),
        sa.Column("try_number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("task_id", sa.String(250)),
        sa.Column("map_index", sa.Integer),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("queued_at", UTCDateTime()),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("error_type", sa.String(200)),
        sa.Column("error_message", sa.Text),
        sa.Column("fingerprint", sa.String(32)),
        sa.Column("trace_uri", sa.Text),
        sa.Column("trace_bytes", sa.Integer),
        sa.Column("log_uri", sa.Text),
        sa.Column("log_bytes", sa.Integer),
        sa.Column("log_lines_stdout", sa.Integer, nullable=False),
        sa.Column("log_lines_stderr", sa.Integer, nullable=False),
        sa.Column("upstream", sa.JSON),
        sa.Column("host", sa.String(250)),
        sa.Column("spooled", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_rd_step_fingerprint", "rd_step", ["fingerprint"])

    op.create_table(
        "rd_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(30), nullable=False),
        sa.Column("step_id", sa.String(250)),
        sa.Column("try_number", sa.Integer),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("raw_ref", sa.Text),
        sa.Column("data", sa.JSON),
    )
    op.create_index("ix_rd_event_run", "rd_event", ["run_id", "ts"])

    op.create_table(
        "rd_retention_policy",
        sa.Column("flow_pattern", sa.String(250), primary_key=True),
        sa.Column("keep_days", sa.Integer),
        sa.Column("keep_last", sa.Integer),
        sa.Column("blob_days", sa.Integer),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rd_retention_policy")
    op.drop_index("ix_rd_event_run", table_name="rd_event")
    op.drop_table("rd_event")
    op.drop_index("ix_rd_step_fingerprint", table_name="rd_step")
    op.drop_table("rd_step")
    for name in ("ix_rd_run_orchestrator", "ix_rd_run_fingerprint", "ix_rd_run_status", "ix_rd_run_flow"):
        op.drop_index(name, table_name="rd_run")
    op.drop_table("rd_run")
