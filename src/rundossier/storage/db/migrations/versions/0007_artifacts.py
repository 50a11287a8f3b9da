"""The artifact manifest: what each step try read and wrote (`rd_artifact`), found by run and by URI.

Revision ID: 0007_artifacts
Revises: 0006_leases
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rundossier.storage.db.types import UTCDateTime

revision = "0007_artifacts"
down_revision = "0006_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rd_artifact",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(30), nullable=False),
        sa.Column("step_id", sa.String(250)),
        sa.Column("try_number", sa.Integer),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("uri_key", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(80)),
        sa.Column("size", sa.BigInteger),
        sa.Column("checksum", sa.String(200)),
        sa.Column("present", sa.Boolean),
        sa.Column("note", sa.String(500)),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("uid", sa.String(32)),
    )
    op.create_index("ix_rd_artifact_run", "rd_artifact", ["run_id", "id"])
    op.create_index("ix_rd_artifact_uri", "rd_artifact", ["uri_key", "recorded_at"])
    op.create_index("uq_rd_artifact_uid", "rd_artifact", ["uid"], unique=True)


def downgrade() -> None:
    op.drop_table("rd_artifact")
