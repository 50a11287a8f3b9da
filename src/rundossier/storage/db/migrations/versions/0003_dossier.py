"""Failure groups: per-fingerprint, per-flow summaries (all time and per UTC day), backfilled from runs;
an index for reading a run's events of a few kinds (what the dossier reads).

Revision ID: 0003_dossier
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from rundossier.storage.db.types import UTCDateTime

revision = "0003_dossier"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    group = op.create_table(
        "rd_failure_group",
        sa.Column("fingerprint", sa.String(32), primary_key=True),
        sa.Column("flow_id", sa.String(250), primary_key=True),
        sa.Column("orchestrator", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("latest_run_id", sa.String(30), nullable=False),
        sa.Column("error_type", sa.String(200)),
        sa.Column("error_message", sa.Text),
        sa.Column("failure_class", sa.String(40)),
    )
    op.create_index("ix_rd_failure_group_last_seen", "rd_failure_group", ["last_seen"])
    day = op.create_table(
        "rd_failure_day",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("fingerprint", sa.String(32), primary_key=True),
        sa.Column("flow_id", sa.String(250), primary_key=True),
        sa.Column("orchestrator", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
    )
    _backfill(group, day)
    op.create_index("ix_rd_event_run_kind", "rd_event", ["run_id", "kind", "ts"])


def _backfill(group: Any, day: Any) -> None:
    """Every run with a fingerprint counts once, at its finish time (or last update)."""
    run = sa.table(
        "rd_run",
        sa.column("run_id", sa.String),
        sa.column("flow_id", sa.String),
        sa.column("orchestrator", sa.String),
        sa.column("fingerprint", sa.String),
        sa.column("error_type", sa.String),
        sa.column("error_message", sa.Text),
        sa.column("failure_class", sa.String),
        sa.column("finished_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            run.c.run_id,
            run.c.flow_id,
            run.c.orchestrator,
            run.c.fingerprint,
            run.c.error_type,
            run.c.error_message,
            run.c.failure_class,
            run.c.finished_at,
            run.c.updated_at,
        )
        .where(run.c.fingerprint.is_not(None))
        .order_by(run.c.run_id)
    )
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    days: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows:
        ts: datetime = r.finished_at or r.updated_at or datetime.now(UTC)
        key = (r.fingerprint, r.flow_id, r.orchestrator)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "fingerprint": r.fingerprint,
                "flow_id": r.flow_id,
                "orchestrator": r.orchestrator,
                "count": 0,
                "first_seen": ts,
                "last_seen": ts,
            }
        g["count"] += 1
        g["first_seen"] = min(g["first_seen"], ts)
        if ts >= g["last_seen"] or g["count"] == 1:
            g.update(
                last_seen=ts,
                latest_run_id=r.run_id,
                error_type=r.error_type,
                error_message=(r.error_message or "")[:1000] or None,
                failure_class=r.failure_class,
            )
        dkey = (ts.astimezone(UTC).date().isoformat(), *key)
        d = days.get(dkey)
        if d is None:
            days[dkey] = {
                "day": dkey[0],
                "fingerprint": key[0],
                "flow_id": key[1],
                "orchestrator": key[2],
                "count": 1,
                "last_seen": ts,
            }
        else:
            d["count"] += 1
            d["last_seen"] = max(d["last_seen"], ts)
    for table, values in ((group, list(groups.values())), (day, list(days.values()))):
        for i in range(0, len(values), _BATCH):
            op.bulk_insert(table, values[i : i + _BATCH])


def downgrade() -> None:
    op.drop_index("ix_rd_event_run_kind", table_name="rd_event")
    op.drop_table("rd_failure_day")
    op.drop_index("ix_rd_failure_group_last_seen", table_name="rd_failure_group")
    op.drop_table("rd_failure_group")
