"""Failure groups count failed runs (see `failuregroups`): a partial index of the failed and
crashed runs with a fingerprint, holding what the count reads, so listing groups over a million
runs is one ordered pass over that index.

Revision ID: 0010_failed_runs_index
Revises: 0009_run_trace_id
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_failed_runs_index"
down_revision = "0009_run_trace_id"
branch_labels = None
depends_on = None

# as in models.py (a migration keeps its own copy: the models may change later)
COLUMNS = ["flow_id", "fingerprint", "orchestrator", "run_id", "finished_at", "updated_at"]
WHERE = "fingerprint IS NOT NULL AND status IN ('crashed', 'failed')"


def upgrade() -> None:
    op.create_index(
        "ix_rd_run_failed",
        "rd_run",
        COLUMNS,
        postgresql_where=sa.text(WHERE),
        sqlite_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_rd_run_failed", table_name="rd_run")
