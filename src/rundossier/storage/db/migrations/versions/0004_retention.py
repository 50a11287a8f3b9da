"""Retention policies record where they came from (cli, api, airflow.cfg, a Prefect Block), so
configuration files can update the rules they own without overwriting rules a person set.

Revision ID: 0004_retention
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_retention"
down_revision = "0003_dossier"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rd_retention_policy") as batch:
        batch.add_column(sa.Column("source", sa.String(80)))


def downgrade() -> None:
    with op.batch_alter_table("rd_retention_policy") as batch:
        batch.drop_column("source")
