"""Failure groups, read by `GET /api/failures`: the failed runs of each fingerprint.

The rule a user can check: a group's count is the number of runs the runs list shows for its
fingerprint with status failed or crashed, created in the window. A run counts once, however many
of its tries failed (its fingerprint is its root cause's, the latest try of the root step's); a
run whose retry recovered is not a failed run (its error is forgotten); a run retention removed is
no longer counted. Crashes (a lost heartbeat, a kill) and failures reported as a message only have
fingerprints too, so they count like exceptions. `since` and `until` apply per UTC day, as run
creation times (the run id's time, as the runs list filters): the day that contains `since` is
counted whole (`counted_since` says which day), and so is the day that contains `until`.

Counts are read from the run rows through the (fingerprint, run_id) and (status, run_id) indexes.
`rd_failure_group` and `rd_failure_day` are still written with each root cause (a fingerprint
someone can resolve stays known after retention removed its runs), but no count is read from them.

Each group also gets its trend (its failed runs per UTC day over the window) and its resolution
(`rd_failure_resolution`: marked resolved at a time; a failure after it makes the group a regression).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from rundossier.core.dossier.groups import trend_window
from rundossier.core.ids import run_id_floor
from rundossier.core.status import FAILURES
from rundossier.storage.db.models import DAY_TABLE, GROUP_TABLE, RESOLUTION_TABLE, RUN_TABLE

#: characters of the latest error message kept on a group row
GROUP_MESSAGE_MAX = 1000
MAX_GROUPS = 500


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect}")


def group_upsert(dialect: str) -> Insert:
    """INSERT INTO rd_failure_group ... SELECT (flow, orchestrator of the run) ... ON CONFLICT add one."""
    t, r = GROUP_TABLE, RUN_TABLE
    src = select(
        bindparam("fingerprint", type_=String),
        r.c.flow_id,
        r.c.orchestrator,
        literal_column("1"),
        bindparam("first_seen", type_=t.c.first_seen.type),
        bindparam("last_seen", type_=t.c.last_seen.type),
        r.c.run_id,
        bindparam("error_type", type_=String),
        bindparam("error_message", type_=String),
        bindparam("failure_class", type_=String),
    ).where(r.c.run_id == bindparam("b_run_id", type_=String))
    cols = [
        "fingerprint",
        "flow_id",
        "orchestrator",
        "count",
        "first_seen",
        "last_seen",
        "latest_run_id",
        "error_type",
        "error_message",
        "failure_class",
    ]
    stmt = _insert(dialect, t).from_select(cols, src)
    ex = stmt.excluded
    newer = ex.last_seen >= t.c.last_seen
    sets: dict[str, Any] = {
        "count": t.c.count + ex.count,
        "first_seen": case((ex.first_seen < t.c.first_seen, ex.first_seen), else_=t.c.first_seen),
        "last_seen": case((newer, ex.last_seen), else_=t.c.last_seen),
    }
    for name in ("latest_run_id", "error_type", "error_message", "failure_class"):
        sets[name] = case((newer, ex[name]), else_=t.c[name])
    return stmt.on_conflict_do_update(index_elements=["fingerprint", "flow_id", "orchestrator"], set_=sets)


def day_upsert(dialect: str) -> Insert:
    t, r = DAY_TABLE, RUN_TABLE
    src = select(
        bindparam("day", type_=String),
        bindparam("fingerprint", type_=String),
        r.c.flow_id,
        r.c.orchestrator,
        literal_column("1"),
        bindparam("last_seen", type_=t.c.last_seen.type),
    ).where(r.c.run_id == bindparam("b_run_id", type_=String))
    stmt = _insert(dialect, t).from_select(["day", "fingerprint", "flow_id", "orchestrator", "count", "last_seen"], src)
    ex = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["day", "fingerprint", "flow_id", "orchestrator"],
        set_={
            "count": t.c.count + ex.count,
            "last_seen": case((ex.last_seen >= t.c.last_seen, ex.last_seen), else_=t.c.last_seen),
        },
    )


def group_values(run_id: str, cause: dict[str, Any], failed_at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters of the two upserts for one root cause."""
    message = cause.get("error_message")
    if message is not None:
        message = str(message)[:GROUP_MESSAGE_MAX]
    group = {
        "fingerprint": cause["fingerprint"],
        "first_seen": failed_at,
        "last_seen": failed_at,
        "error_type": cause.get("error_type"),
        "error_message": message,
        "failure_class": cause.get("failure_class"),
        "b_run_id": run_id,
    }
    day = {
        "day": failed_at.astimezone(UTC).date().isoformat(),
        "fingerprint": cause["fingerprint"],
        "last_seen": failed_at,
        "b_run_id": run_id,
    }
    return group, day


@dataclass(frozen=True)
class GroupQuery:
    flow_id: str | None = None
    orchestrator: str | None = None
    since: datetime | None = None
    #: only these flows (an access filter); None means every flow
    flows: tuple[str, ...] | None = None
    fingerprint: str | None = None
    sort: str = "last_seen"
    limit: int = 50
    #: only groups whose latest failure has this class
    failure_class: str | None = None
    #: counts up to the UTC day that contains it
    until: datetime | None = None


@dataclass(frozen=True)
class GroupRow:
    """One (fingerprint, flow, orchestrator) summary row."""

    fingerprint: str
    flow_id: str
    orchestrator: str
    count: int
    first_seen: datetime
    last_seen: datetime
    latest_run_id: str
    error_type: str | None
    error_message: str | None
    failure_class: str | None


@dataclass(frozen=True)
class GroupCounts:
    """The page of fingerprints a query selects, with their counts in the window, their trends
    (failures per UTC day from `trend_from`, `trend_days` days) and resolutions."""

    counts: dict[str, int]
    order: list[str]
    counted_since: str | None
    rows: list[GroupRow]
    trend_from: str = ""
    trend_days: int = 0
    trends: dict[str, list[int]] = field(default_factory=dict)
    #: fingerprint: (resolved at, the last failure anywhere) for the groups marked resolved
    resolutions: dict[str, tuple[datetime, datetime | None]] = field(default_factory=dict)


def since_day(since: datetime) -> str:
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since.astimezone(UTC).date().isoformat()


def _day_floor(day: date) -> str:
    """The smallest run id created on or after the start of the UTC `day`."""
    return run_id_floor(datetime(day.year, day.month, day.day, tzinfo=UTC))


#: as literals, not parameters: so the planners match the partial index `ix_rd_run_failed` (a
#: generic PostgreSQL plan or an SQLite statement cannot prove a parameter's value)
_FAILED_STATUSES: list[Any] = [literal_column(f"'{s}'") for s in sorted(str(s) for s in FAILURES)]
#: when a failed run failed: its end, or its last update when no end was recorded
_FAILED_AT = func.coalesce(RUN_TABLE.c.finished_at, RUN_TABLE.c.updated_at)


def _failed(q: GroupQuery, first: str | None, last: str | None) -> list[Any]:
    """The runs a group counts: failed or crashed with a fingerprint, created in the window's UTC
    days (`first`, `last`: ISO days or None), of the flows `q` filters on."""
    r = RUN_TABLE.c
    conds: list[Any] = [r.fingerprint.is_not(None), r.status.in_(_FAILED_STATUSES)]
    if first is not None:
        conds.append(r.run_id >= _day_floor(date.fromisoformat(first)))
    if last is not None:
        conds.append(r.run_id < _day_floor(date.fromisoformat(last) + timedelta(days=1)))
    if q.flow_id is not None:
        conds.append(r.flow_id == q.flow_id)
    if q.flows is not None:
        conds.append(r.flow_id.in_(q.flows))
    if q.orchestrator is not None:
        conds.append(r.orchestrator == q.orchestrator)
    if q.fingerprint is not None:
        conds.append(r.fingerprint == q.fingerprint)
    return conds


def query_groups(conn: Connection, q: GroupQuery) -> GroupCounts:
    """The groups `q` selects: counts (in the window), order, and their per-flow summary rows.

    A group's count is the number of runs the runs list shows for its fingerprint with status
    failed or crashed, created in the window (whole UTC days): a run counts once, whatever its
    tries; a run that recovered has no fingerprint; a run retention removed is gone.
    """
    if q.sort not in ("last_seen", "count"):
        raise ValueError("sort must be last_seen or count")
    if not 1 <= q.limit <= MAX_GROUPS:
        raise ValueError(f"limit must be between 1 and {MAX_GROUPS}")
    if q.flows is not None and not q.flows:
        return GroupCounts({}, [], since_day(q.since) if q.since else None, [])
    day = since_day(q.since) if q.since is not None else None
    last_day = since_day(q.until) if q.until is not None else None
    r = RUN_TABLE.c
    conds = _failed(q, day, last_day)
    if q.failure_class is not None:  # the groups with a run of that class in the window
        conds.append(r.fingerprint.in_(select(r.fingerprint).where(and_(*conds, r.failure_class == q.failure_class))))
    per_flow = conn.execute(_per_flow(conds)).all()  # one pass over the window's failed runs
    counts: dict[str, int] = {}
    last: dict[str, datetime] = {}
    for g in per_flow:
        counts[g.fingerprint] = counts.get(g.fingerprint, 0) + int(g.n)
        seen = _aware(g.last)
        last[g.fingerprint] = max(last.get(g.fingerprint, seen), seen)
    if q.sort == "count":
        order = sorted(counts, key=lambda fp: (-counts[fp], -last[fp].timestamp(), fp))[: q.limit]
    else:
        order = sorted(counts, key=lambda fp: (-last[fp].timestamp(), fp))[: q.limit]
    on_page = set(order)
    counts = {fp: counts[fp] for fp in order}
    rows = _rows(conn, [g for g in per_flow if g.fingerprint in on_page])
    start, days = trend_window(day, last_day, datetime.now(UTC).date())
    trends = _trends(conn, order, q, start, days) if order else {}
    return GroupCounts(counts, order, day, rows, start.isoformat(), days, trends, _resolutions(conn, order, q))


def _trends(conn: Connection, order: Sequence[str], q: GroupQuery, start: date, days: int) -> dict[str, list[int]]:
    """Failed runs per UTC day of their creation, `days` days from `start`."""
    out = {fp: [0] * days for fp in order}
    if days == 0:
        return out
    r = RUN_TABLE.c
    end = start + timedelta(days=days - 1)
    conds = _failed(q, start.isoformat(), end.isoformat())
    conds.append(r.fingerprint.in_(list(order)))
    # the day's index: the last day whose first run id is not after the run's
    whens = [(r.run_id >= _day_floor(start + timedelta(days=i)), i) for i in range(days - 1, 0, -1)]
    bucket = (case(*whens, else_=0) if whens else literal(0)).label("bucket")
    stmt = select(r.fingerprint, bucket, func.count()).where(and_(*conds)).group_by(r.fingerprint, bucket)
    for fp, i, n in conn.execute(stmt):
        out[fp][int(i)] = int(n)
    return out


def _resolutions(conn: Connection, order: Sequence[str], q: GroupQuery) -> dict[str, tuple[datetime, datetime | None]]:
    if not order:
        return {}
    res, r = RESOLUTION_TABLE, RUN_TABLE.c
    last = select(func.max(_FAILED_AT)).where(and_(r.fingerprint == res.c.fingerprint, r.status.in_(_FAILED_STATUSES)))
    if q.flows is not None:
        last = last.where(r.flow_id.in_(q.flows))
    stmt = select(res.c.fingerprint, res.c.resolved_at, last.scalar_subquery()).where(
        res.c.fingerprint.in_(list(order))
    )
    return {fp: (at, seen) for fp, at, seen in conn.execute(stmt)}


def known_fingerprint(conn: Connection, fingerprint: str) -> bool:
    """A failure of some run (kept or not) had this fingerprint."""
    g = GROUP_TABLE
    return conn.execute(select(g.c.fingerprint).where(g.c.fingerprint == fingerprint).limit(1)).first() is not None


def resolve(conn: Connection, fingerprint: str, at: datetime) -> None:
    """Mark the group resolved at `at` (again: the new time replaces the old)."""
    res = RESOLUTION_TABLE
    conn.execute(delete(res).where(res.c.fingerprint == fingerprint))
    conn.execute(res.insert().values(fingerprint=fingerprint, resolved_at=at))


def reopen(conn: Connection, fingerprint: str) -> bool:
    """Forget the group's resolution; False when it had none."""
    res = RESOLUTION_TABLE
    return conn.execute(delete(res).where(res.c.fingerprint == fingerprint)).rowcount > 0


def _per_flow(conds: Sequence[Any]) -> Select[Any]:
    """Per (fingerprint, flow, orchestrator): the count of the runs, their first and last failure,
    the newest run."""
    r = RUN_TABLE.c
    return (
        select(
            r.fingerprint,
            r.flow_id,
            r.orchestrator,
            func.count().label("n"),
            func.min(_FAILED_AT).label("first"),
            func.max(_FAILED_AT).label("last"),
            func.max(r.run_id).label("latest"),
        )
        .where(and_(*conds))
        # in the order of ix_rd_run_failed: one ordered pass over it, no sort; a flow filter is a range of it
        .group_by(r.flow_id, r.fingerprint, r.orchestrator)
    )


def _rows(conn: Connection, groups: Sequence[Any]) -> list[GroupRow]:
    """The page's per-flow rows, each with its newest run's error."""
    r = RUN_TABLE.c
    latest_ids = sorted({g.latest for g in groups})
    errors = {
        e.run_id: e
        for e in conn.execute(
            select(r.run_id, r.error_type, r.error_message, r.failure_class).where(r.run_id.in_(latest_ids))
        )
    }
    out = []
    for g in groups:
        e = errors.get(g.latest)
        message = e.error_message if e is not None else None
        out.append(
            GroupRow(
                fingerprint=g.fingerprint,
                flow_id=g.flow_id,
                orchestrator=g.orchestrator,
                count=int(g.n),
                first_seen=_aware(g.first),
                last_seen=_aware(g.last),
                latest_run_id=g.latest,
                error_type=e.error_type if e is not None else None,
                error_message=message[:GROUP_MESSAGE_MAX] if message is not None else None,
                failure_class=e.failure_class if e is not None else None,
            )
        )
    return out


def _aware(value: Any) -> datetime:
    """An aggregate of UTC datetime columns (SQLite returns text, PostgreSQL a naive datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


__all__ = [
    "group_upsert",
    "day_upsert",
    "group_values",
    "query_groups",
    "GroupQuery",
    "GroupRow",
    "GroupCounts",
    "since_day",
    "resolve",
    "reopen",
    "known_fingerprint",
    "MAX_GROUPS",
    "GROUP_TABLE",
    "DAY_TABLE",
]
