"""Leases and idempotent events: a running run or step carries the time its process last said it
was alive (`heartbeat_at`), until when that holds (`lease_until`, chosen by the writer, which
knows its heartbeat interval) and which process holds it (`lease_holder`), so a killed process's
rows can be shown as crashed; an event carries
a unique id (`uid`) chosen by its writer, so replaying a spooled batch twice adds it once.

Revision ID: 0006_leases
Revises: 0005_root_try
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rundossier.storage.db.types import UTCDateTime

revision = "0006_leases"
down_revision = "0005_root_try"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("rd_run", "rd_step"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("heartbeat_at", UTCDateTime()))
            batch.add_column(sa.Column("lease_until", UTCDateTime()))
            batch.add_column(sa.Column("lease_holder", sa.String(100)))
    with op.batch_alter_table("rd_event") as batch:
        batch.add_column(sa.Column("uid", sa.String(32)))
    op.create_index("uq_rd_event_uid", "rd_event", ["uid"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_rd_event_uid", table_name="rd_event")
    with op.batch_alter_table("rd_event") as batch:
        batch.drop_column("uid")
    for table in ("rd_step", "rd_run"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_holder")
            batch.drop_column("lease_until")
            batch.drop_column("heartbeat_at")
