"""The write-time cap: as a run finishes, trim its flow to the newest K finished runs (I/O, opt-in).

Off by default; `RUNDOSSIER_RETENTION_CAP=on` (or `retention_cap = on` in airflow.cfg / the Block)
turns it on for a recorder. K is the flow's effective `keep_last`. Cheap on the write path: the
rules are read at most once a minute per process, a finish runs one indexed query, and at most
`MAX_TRIM` runs are removed per finish (a sweep clears any larger backlog). Deletion goes through
the sweep's batch (mark, blobs, rows), so a crash mid-trim is finished by the next sweep.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select

from rundossier.core.retention.plan import Action, Because
from rundossier.core.retention.policy import PolicySet
from rundossier.retention.sweep import RUN, FlowReport, Sweeper, Target, load_rules
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from rundossier.storage.db.retention import TERMINAL_STATUSES

RULES_TTL_S = 60.0
MAX_TRIM = 50


class RetentionCap:
    """Trims flows to their newest `keep_last` finished runs; one per recorder."""

    def __init__(self, store: RunStore, blobs: BlobStore, *, ttl_s: float = RULES_TTL_S) -> None:
        self.store = store
        self.blobs = blobs
        self.ttl_s = ttl_s
        self._policies: PolicySet | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def policies(self) -> PolicySet:
        with self._lock:
            if self._policies is None or time.monotonic() - self._loaded > self.ttl_s:
                self._policies = PolicySet(load_rules(self.store))
                self._loaded = time.monotonic()
            return self._policies

    def after_finish(self, flow_id: str) -> FlowReport | None:
        """Trim `flow_id`; returns what was removed (None when nothing was over the cap)."""
        resolution = self.policies().resolve(flow_id)
        keep_last = resolution.policy.keep_last
        if not keep_last:
            return None
        c = RUN.c
        stmt = (
            select(c.run_id, c.orchestrator, c.blobs_expired, c.blobs_expired_at, c.trace_uri, c.trace_bytes)
            .where(c.flow_id == flow_id, c.status.in_(TERMINAL_STATUSES))
            .order_by(c.run_id.desc())
            .offset(keep_last)
            .limit(MAX_TRIM)
        )
        with self.store.session() as s:
            rows = s.execute(stmt).all()
        if not rows:
            return None
        targets = [
            Target(rid, orch, flow_id, Action.DELETE, Because.KEEP_LAST, bool(exp) and at is not None, uri, size)
            for rid, orch, exp, at, uri, size in rows
        ]
        report = FlowReport(flow_id, resolution)
        with Sweeper(self.store, self.blobs, now=datetime.now(UTC)) as sweeper:
            sweeper.run_batch(targets, report)
        return report


__all__ = ["RetentionCap", "MAX_TRIM", "RULES_TTL_S"]
