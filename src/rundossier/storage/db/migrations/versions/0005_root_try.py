"""A run remembers which try of its root step it shows, so a later failed try replaces the run's
error and trace (Airflow task retries, Prefect task retries) whatever order they are recorded in.

Revision ID: 0005_root_try
Revises: 0004_retention
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_root_try"
down_revision = "0004_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rd_run") as batch:
        batch.add_column(sa.Column("root_try_number", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("rd_run") as batch:
        batch.drop_column("root_try_number")
