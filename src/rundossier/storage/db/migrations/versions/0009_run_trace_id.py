"""The OpenTelemetry trace a run belongs to: `trace_id` (32 hex digits), set when RUNDOSSIER_OTEL is on
(the trace of the W3C traceparent in effect, or a new one); the run page links it to a trace viewer.
The run's existing `traceparent` column then holds the context of the run's own span.

Revision ID: 0009_run_trace_id
Revises: 0008_failure_resolution
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_run_trace_id"
down_revision = "0008_failure_resolution"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rd_run") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("rd_run") as batch:
        batch.drop_column("trace_id")
