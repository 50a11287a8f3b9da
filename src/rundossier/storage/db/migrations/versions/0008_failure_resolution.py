"""Failure groups can be marked resolved: `rd_failure_resolution` holds the fingerprint and when;
a failure of that fingerprint after it shows the group reopened as a regression.

Revision ID: 0008_failure_resolution
Revises: 0007_artifacts
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rundossier.storage.db.types import UTCDateTime

revision = "0008_failure_resolution"
down_revision = "0007_artifacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rd_failure_resolution",
        sa.Column("fingerprint", sa.String(32), primary_key=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rd_failure_resolution")
