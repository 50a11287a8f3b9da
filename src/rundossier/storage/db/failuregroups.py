"""Failure group summaries: written with each root cause, read by `GET /api/failures`.

A run attempt's first failure (its root cause, written once per attempt) adds one to the
fingerprint's row for its flow in `rd_failure_group` (all time: count, first/last seen, the latest
run and its error) and in `rd_failure_day` (per UTC day, for `since`). Listing groups then
aggregates a few thousand summary rows, whatever the number of runs. `since` is applied per UTC
day: the count includes the whole day that contains `since` (`counted_since` says which day);
it sums the days in the window, or subtracts the days before it from the all-time counts when
that reads fewer rows. `until` is applied per UTC day too (the day that contains it is counted).

Each group also gets its trend (failures per UTC day over the window, from `rd_failure_day`) and
its resolution (`rd_failure_resolution`: marked resolved at a time; a failure after it makes the
group a regression).
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
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from rundossier.core.dossier.groups import trend_window
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


def query_groups(conn: Connection, q: GroupQuery) -> GroupCounts:
    """The groups `q` selects: counts (in the window), order, and their per-flow summary rows."""
    if q.sort not in ("last_seen", "count"):
        raise ValueError("sort must be last_seen or count")
    if not 1 <= q.limit <= MAX_GROUPS:
        raise ValueError(f"limit must be between 1 and {MAX_GROUPS}")
    if q.flows is not None and not q.flows:
        return GroupCounts({}, [], since_day(q.since) if q.since else None, [])
    day = since_day(q.since) if q.since is not None else None
    last_day = since_day(q.until) if q.until is not None else None
    if last_day is not None:
        stmt = _day_counts(q, day, last_day)
    else:
        stmt = _window_counts(conn, q, day) if day is not None else _all_time_counts(q)
    total, last = stmt.selected_columns.n, stmt.selected_columns.last
    if q.sort == "count":
        stmt = stmt.order_by(total.desc(), last.desc(), stmt.selected_columns.fingerprint)
    else:
        stmt = stmt.order_by(last.desc(), stmt.selected_columns.fingerprint)
    page = conn.execute(stmt.limit(q.limit)).all()
    counts = {r.fingerprint: int(r.n) for r in page}
    order = [r.fingerprint for r in page]
    rows = _rows(conn, order, q, day, last_day) if order else []
    start, days = trend_window(day, last_day, datetime.now(UTC).date())
    trends = _trends(conn, order, q, start, days) if order else {}
    return GroupCounts(counts, order, day, rows, start.isoformat(), days, trends, _resolutions(conn, order, q))


def _trends(conn: Connection, order: Sequence[str], q: GroupQuery, start: date, days: int) -> dict[str, list[int]]:
    d = DAY_TABLE
    out = {fp: [0] * days for fp in order}
    if days == 0:
        return out
    end = start + timedelta(days=days - 1)
    stmt = (
        select(d.c.fingerprint, d.c.day, func.sum(d.c.count))
        .where(
            and_(
                d.c.fingerprint.in_(list(order)),
                d.c.day >= start.isoformat(),
                d.c.day <= end.isoformat(),
                *_filters(d, q),
            )
        )
        .group_by(d.c.fingerprint, d.c.day)
    )
    for fp, day, n in conn.execute(stmt):
        out[fp][(date.fromisoformat(day) - start).days] = int(n)
    return out


def _resolutions(conn: Connection, order: Sequence[str], q: GroupQuery) -> dict[str, tuple[datetime, datetime | None]]:
    if not order:
        return {}
    r, g = RESOLUTION_TABLE, GROUP_TABLE
    last = select(func.max(g.c.last_seen)).where(g.c.fingerprint == r.c.fingerprint)
    if q.flows is not None:
        last = last.where(g.c.flow_id.in_(q.flows))
    stmt = select(r.c.fingerprint, r.c.resolved_at, last.scalar_subquery()).where(r.c.fingerprint.in_(list(order)))
    return {fp: (at, seen) for fp, at, seen in conn.execute(stmt)}


def known_fingerprint(conn: Connection, fingerprint: str) -> bool:
    g = GROUP_TABLE
    return conn.execute(select(g.c.fingerprint).where(g.c.fingerprint == fingerprint).limit(1)).first() is not None


def resolve(conn: Connection, fingerprint: str, at: datetime) -> None:
    """Mark the group resolved at `at` (again: the new time replaces the old)."""
    r = RESOLUTION_TABLE
    conn.execute(delete(r).where(r.c.fingerprint == fingerprint))
    conn.execute(r.insert().values(fingerprint=fingerprint, resolved_at=at))


def reopen(conn: Connection, fingerprint: str) -> bool:
    """Forget the group's resolution; False when it had none."""
    r = RESOLUTION_TABLE
    return conn.execute(delete(r).where(r.c.fingerprint == fingerprint)).rowcount > 0


def _day_counts(q: GroupQuery, first: str | None, last: str) -> Select[Any]:
    """Counts summed over the days from `first` (or the first) to `last`, both included."""
    d = DAY_TABLE
    conds = [d.c.day <= last, *_filters(d, q)]
    if first is not None:
        conds.append(d.c.day >= first)
    stmt = select(d.c.fingerprint, func.sum(d.c.count).label("n"), func.max(d.c.last_seen).label("last"))
    return stmt.where(and_(*conds)).group_by(d.c.fingerprint)


def _all_time_counts(q: GroupQuery) -> Select[Any]:
    t = GROUP_TABLE
    stmt = select(t.c.fingerprint, func.sum(t.c.count).label("n"), func.max(t.c.last_seen).label("last"))
    conds = _filters(t, q)
    if conds:
        stmt = stmt.where(and_(*conds))
    return stmt.group_by(t.c.fingerprint)


def _window_counts(conn: Connection, q: GroupQuery, day: str) -> Select[Any]:
    """Counts from `day` on: summed over the days in the window, or, when the window covers most of
    the recorded days, the all-time counts minus the days before it (whichever reads fewer rows)."""
    d = DAY_TABLE
    first = conn.execute(select(func.min(d.c.day))).scalar()
    today = datetime.now(UTC).date()
    if first is not None and (date.fromisoformat(day) - date.fromisoformat(first)) < (today - date.fromisoformat(day)):
        g = GROUP_TABLE
        since_start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        in_window = case((g.c.last_seen >= since_start, g.c.last_seen), else_=null())
        everything = select(g.c.fingerprint, g.c.count.label("n"), in_window.label("last"))
        conds = _filters(g, q)
        if conds:
            everything = everything.where(and_(*conds))
        before = select(d.c.fingerprint, (-d.c.count).label("n"), null().label("last")).where(
            and_(d.c.day < day, *_filters(d, q))
        )
        u = union_all(everything, before).subquery()
        n = func.sum(u.c.n).label("n")
        return (
            select(u.c.fingerprint, n, func.max(u.c.last).label("last"))
            .group_by(u.c.fingerprint)
            .having(and_(func.sum(u.c.n) > 0, func.max(u.c.last).is_not(None)))
        )
    stmt = select(d.c.fingerprint, func.sum(d.c.count).label("n"), func.max(d.c.last_seen).label("last"))
    return stmt.where(and_(d.c.day >= day, *_filters(d, q))).group_by(d.c.fingerprint)


def _filters(t: Table, q: GroupQuery) -> list[Any]:
    conds: list[Any] = []
    if q.flow_id is not None:
        conds.append(t.c.flow_id == q.flow_id)
    if q.flows is not None:
        conds.append(t.c.flow_id.in_(q.flows))
    if q.orchestrator is not None:
        conds.append(t.c.orchestrator == q.orchestrator)
    if q.fingerprint is not None:
        conds.append(t.c.fingerprint == q.fingerprint)
    if q.failure_class is not None:
        g = GROUP_TABLE
        if t is g:
            conds.append(g.c.failure_class == q.failure_class)
        else:  # a fingerprint's class is its group rows' (the latest failure's)
            conds.append(t.c.fingerprint.in_(select(g.c.fingerprint).where(g.c.failure_class == q.failure_class)))
    return conds


def _rows(
    conn: Connection, fingerprints: Sequence[str], q: GroupQuery, day: str | None, last_day: str | None = None
) -> list[GroupRow]:
    t = GROUP_TABLE
    conds = _filters(t, q)
    conds.append(t.c.fingerprint.in_(list(fingerprints)))
    if day is not None:
        # the flows that failed with this fingerprint in the window (day precision, as the counts)
        conds.append(t.c.last_seen >= datetime.fromisoformat(day).replace(tzinfo=UTC))
    if last_day is not None:
        after = datetime.fromisoformat(last_day).replace(tzinfo=UTC) + timedelta(days=1)
        conds.append(t.c.first_seen < after)
    stmt = select(t).where(and_(*conds))
    return [GroupRow(**dict(r._mapping)) for r in conn.execute(stmt)]


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
