"""Leases: how a run or step whose process died stops being `running`.

A process that records a running run or step renews its lease every heartbeat: `heartbeat_at` is
when it last said it was alive (until the first renewal, its start time stands for it),
`lease_until` how long that holds (the writer picks it from its own heartbeat interval, so
readers need no setting to judge it), `lease_holder` which process (host, pid and a token drawn
at its start: a reused pid is another holder). A row still `running` past its
lease belongs to a process that was killed, ran out of memory or lost its host: `reap` marks it
`crashed`, with the reason ("no heartbeat since ..."), a `heartbeat_lost` event, and, for a run,
the step that was running as its root cause; a run whose crash is its root cause counts in the
lost-heartbeat failure group, as other failures count in theirs. Rows without a lease (a run only an orchestrator's
scheduler reports, such as an Airflow DAG run) are left to the orchestrator's own end events.

Reaping is idempotent and safe from many processes at once: each update repeats the condition
it was chosen on (still running, same lease), so a row renewed or finished meanwhile is left alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from rundossier.core.ids import RUN_STEP
from rundossier.core.status import ACTIVE
from rundossier.core.trace import message_fingerprint
from rundossier.storage.db.failuregroups import day_upsert, group_upsert, group_values
from rundossier.storage.db.models import EVENT_TABLE as EVENT
from rundossier.storage.db.models import RUN_TABLE as RUN
from rundossier.storage.db.models import STEP_TABLE as STEP
from rundossier.storage.db.types import utcnow

#: a lease lasts this many heartbeat intervals: a few missed beats are forgiven, a dead process is not
LEASE_BEATS = 4
#: the error type of a row reaped for a lost heartbeat
LOST_HEARTBEAT_TYPE = "Crashed (no heartbeat)"
#: its failure class: what `dossier.classify` calls a process that died (a test pins the two together)
LOST_HEARTBEAT_CLASS = "killed"
#: its failure group: every lost heartbeat is one group (the message's time does not split it)
LOST_HEARTBEAT_FINGERPRINT = message_fingerprint(LOST_HEARTBEAT_TYPE, None)
RUNNING = "running"
CRASHED = "crashed"
#: runs whose steps may still be running (a step of a finished run is left as it is)
UNFINISHED = tuple(sorted(ACTIVE))


def lost_heartbeat_message(heartbeat_at: datetime | None) -> str:
    since = heartbeat_at.isoformat(timespec="seconds") if heartbeat_at is not None else "it started"
    return (
        f"no heartbeat since {since}: the process recording it stopped without reporting an end "
        "(killed, out of memory, or its host went away)"
    )


@dataclass
class Reaped:
    """What one `reap` marked crashed."""

    runs: list[str] = field(default_factory=list)
    steps: list[tuple[str, str, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runs or self.steps)


def renew(
    conn: Connection,
    runs: Sequence[str],
    steps: Sequence[tuple[str, str, int]],
    now: datetime,
    until: datetime,
) -> None:
    """Renew the leases of running rows this process holds (finished rows are left alone)."""
    if runs:
        stmt = (
            update(RUN)
            .where(RUN.c.run_id == bindparam("b_run_id"), RUN.c.status == RUNNING)
            .values(heartbeat_at=now, lease_until=until)
        )
        conn.execute(stmt, [{"b_run_id": r} for r in runs])
    if steps:
        c = STEP.c
        stmt = (
            update(STEP)
            .where(
                c.run_id == bindparam("b_run_id"),
                c.step_id == bindparam("b_step_id"),
                c.try_number == bindparam("b_try"),
                c.status == RUNNING,
            )
            .values(heartbeat_at=now, lease_until=until)
        )
        conn.execute(stmt, [{"b_run_id": r, "b_step_id": s, "b_try": t} for r, s, t in steps])


def reap(conn: Connection, now: datetime, *, limit: int = 500) -> Reaped:
    """Mark rows running past their lease as crashed; at most `limit` runs and `limit` steps."""
    out = Reaped()
    c = STEP.c
    r = RUN.c
    # steps are found through the runs that are not finished (few, on the status index), each
    # read on the step table's key: no index on the step table to keep up on every step's write
    expired_steps = conn.execute(
        select(c.run_id, c.step_id, c.try_number, c.heartbeat_at, c.lease_until, c.started_at)
        .join(RUN, r.run_id == c.run_id)
        .where(r.status.in_(UNFINISHED), c.status == RUNNING, c.lease_until < now)
        .limit(limit)
    ).all()
    for run_id, step_id, try_number, beat, lease, started in expired_steps:
        _crash_step(conn, out, run_id, step_id, try_number, beat or started, lease, started)
    expired_runs = conn.execute(
        select(r.run_id, r.heartbeat_at, r.lease_until, r.lease_holder, r.started_at)
        .where(r.status == RUNNING, r.lease_until < now)
        .limit(limit)
    ).all()
    for run_id, beat, lease, holder, started in expired_runs:
        beat = beat or started  # not renewed yet: it was last known alive when it started
        message = lost_heartbeat_message(beat)
        done = conn.execute(
            update(RUN)
            .where(r.run_id == run_id, r.status == RUNNING, r.lease_until == lease)
            .values(status=CRASHED, finished_at=beat, duration_ms=_ms(started, beat), updated_at=utcnow())
        )
        if not done.rowcount:
            continue
        out.runs.append(run_id)
        # the steps the same process held died with it (their own leases may last a little
        # longer: they started later); a step held by another process has its own lease
        orphans = (
            conn.execute(
                select(c.step_id, c.try_number, c.heartbeat_at, c.lease_until, c.started_at).where(
                    c.run_id == run_id, c.status == RUNNING, c.lease_holder == holder
                )
            ).all()
            if holder is not None
            else []
        )
        for step_id, try_number, step_beat, step_lease, step_started in orphans:
            _crash_step(conn, out, run_id, step_id, try_number, step_beat or step_started, step_lease, step_started)
        root_step, root_try = _last_crashed_step(conn, run_id)
        cause = {
            "root_step_id": root_step,
            "root_try_number": root_try,
            "error_type": LOST_HEARTBEAT_TYPE,
            "error_message": message,
            "failure_class": LOST_HEARTBEAT_CLASS,
            "fingerprint": LOST_HEARTBEAT_FINGERPRINT,
        }
        caused = conn.execute(update(RUN).where(r.run_id == run_id, r.root_step_id.is_(None)).values(**cause))
        if caused.rowcount == 1:  # the crash is the run's root cause: it counts in its failure group
            group, day = group_values(run_id, cause, beat or now)
            dialect = conn.dialect.name
            conn.execute(group_upsert(dialect), group)
            conn.execute(day_upsert(dialect), day)
        _lost_event(conn, run_id, None, None, beat, message)
    return out


def _crash_step(
    conn: Connection,
    out: Reaped,
    run_id: str,
    step_id: str,
    try_number: int,
    beat: datetime | None,
    lease: datetime | None,
    started: datetime | None,
) -> None:
    c = STEP.c
    message = lost_heartbeat_message(beat)
    done = conn.execute(
        update(STEP)
        .where(
            c.run_id == run_id,
            c.step_id == step_id,
            c.try_number == try_number,
            c.status == RUNNING,
            c.lease_until == lease,
        )
        .values(
            status=CRASHED,
            finished_at=beat,
            duration_ms=_ms(started, beat),
            error_type=LOST_HEARTBEAT_TYPE,
            error_message=message,
            updated_at=utcnow(),
        )
    )
    if done.rowcount:
        out.steps.append((run_id, step_id, try_number))
        _lost_event(conn, run_id, step_id, try_number, beat, message)


def _last_crashed_step(conn: Connection, run_id: str) -> tuple[str, int]:
    """The step try that was running when the run's process died (the latest started), else the run."""
    c = STEP.c
    row = conn.execute(
        select(c.step_id, c.try_number)
        .where(c.run_id == run_id, c.status == CRASHED)
        .order_by(c.started_at.desc(), c.try_number.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else (RUN_STEP, 1)


def _lost_event(
    conn: Connection,
    run_id: str,
    step_id: str | None,
    try_number: int | None,
    beat: datetime | None,
    message: str,
) -> None:
    # one per expired lease, whoever reaps it: the uid is derived from what was reaped
    uid = hashlib.sha256(f"lease:{run_id}:{step_id}:{try_number}:{beat}".encode()).hexdigest()[:32]
    exists = conn.execute(select(EVENT.c.id).where(EVENT.c.uid == uid)).first()
    if exists is not None:
        return
    conn.execute(
        insert(EVENT).values(
            run_id=run_id,
            step_id=step_id,
            try_number=try_number,
            kind="heartbeat_lost",
            ts=beat or utcnow(),
            summary=message,
            data={"last_heartbeat": beat.isoformat() if beat is not None else None, "detected_by": "lease"},
            uid=uid,
        )
    )


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


__all__ = ["renew", "reap", "Reaped", "LOST_HEARTBEAT_TYPE", "LOST_HEARTBEAT_CLASS", "lost_heartbeat_message"]
