"""Steps record when their first and last output line was written (timing windows);
runs get an index on updated_at (live updates poll it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rundossier.storage.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rd_step") as batch:
        batch.add_column(sa.Column("first_output_at", UTCDateTime()))
        batch.add_column(sa.Column("last_output_at", UTCDateTime()))
    op.create_index("ix_rd_run_updated", "rd_run", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_rd_run_updated", table_name="rd_run")
    with op.batch_alter_table("rd_step") as batch:
        batch.drop_column("last_output_at")
        batch.drop_column("first_output_at")
