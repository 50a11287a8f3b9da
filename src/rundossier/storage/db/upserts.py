"""Idempotent upsert statements for runs and steps, built per set of columns and reused.

Merge rules (the same on SQLite and PostgreSQL):
  - only the columns a write provides (not None) are set; the others keep what the row has, so
    events from different processes fill in different columns of the same row;
  - a newer attempt of a run (Airflow clear, Prefect retry of the flow) resets the outcome
    columns (finish time, error, trace) instead of merging them with the old attempt's;
  - a terminal status is not overwritten by an active one of the same attempt or try (a late
    "running" event must not resurrect a finished run); an older attempt never wins;
  - log line counts only grow.
A statement holds just the columns written, so the common small writes (a step's start and
finish) stay as cheap as a plain INSERT or UPDATE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Table, and_, case, func, literal_column, null, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from rundossier.core.status import ACTIVE, TERMINAL
from rundossier.storage.db.models import ARTIFACT_TABLE, EVENT_TABLE, RUN_TABLE, STEP_TABLE

RUN_KEY = ("orchestrator", "flow_id", "run_key")
STEP_KEY = ("run_id", "step_id", "try_number")
#: columns a new attempt of a run starts over
RUN_OUTCOME = (
    "finished_at",
    "duration_ms",
    "error_type",
    "error_message",
    "failure_class",
    "fingerprint",
    "root_step_id",
    "root_try_number",
    "trace_uri",
    "trace_bytes",
)
#: values a new row gets for NOT NULL columns a write does not provide
RUN_INSERT_DEFAULTS: dict[str, Any] = {"attempt": 1, "spooled": False, "blobs_expired": False}
STEP_INSERT_DEFAULTS: dict[str, Any] = {"spooled": False, "log_lines_stdout": 0, "log_lines_stderr": 0}
_NEVER_UPDATED = frozenset({"run_id", "created_at"})
_GROWING = frozenset({"log_lines_stdout", "log_lines_stderr"})


def _insert(dialect_name: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ON CONFLICT (both dialects spell it the same)."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect_name}")


def _one_of(col: Any, values: Any) -> ColumnElement[bool]:
    # literal SQL, not bound lists: the statement then compiles to one fixed string
    return or_(*[col == literal_column(f"'{v.value}'") for v in sorted(values)])


def _status_guard(cur: Column[Any], new: Any, same_round: ColumnElement[bool] | None) -> Any:
    keep = and_(_one_of(cur, TERMINAL), _one_of(new, ACTIVE))
    if same_round is not None:
        keep = and_(same_round, keep)
    return case((keep, cur), else_=new)


def run_upsert(
    dialect_name: str, columns: frozenset[str], *, attempt_known: bool = True, fill: frozenset[str] = frozenset()
) -> Insert:
    """INSERT ... ON CONFLICT (orchestrator, flow_id, run_key) DO UPDATE ... RETURNING run_id, started_at.

    `columns` are the columns this write provides (the key, run_id and created_at included).
    With `attempt_known=False` (a caller that cannot tell which attempt it sees, such as a task
    hook making sure its run exists) the row's attempt is kept and the write merges into it.
    `fill` names provided columns whose value is a guess (a start time taken as "now" by a hook
    that was not told it): the row keeps the value it has, unless this is a newer attempt.
    """
    t = RUN_TABLE
    _check(t, columns, (*RUN_KEY, "run_id", "status", "created_at", "updated_at"))
    stmt = _insert(dialect_name, t)
    ex = stmt.excluded
    newer: ColumnElement[bool] | None = None
    older: ColumnElement[bool] | None = None
    if attempt_known:
        newer = ex.attempt > t.c.attempt
        older = ex.attempt < t.c.attempt
    set_: dict[str, Any] = {}
    for name in sorted(columns | (set(RUN_OUTCOME) if attempt_known else set())):
        col = t.c[name]
        if name in RUN_KEY or name in _NEVER_UPDATED:
            continue
        if name == "attempt":
            set_[name] = case((newer, ex.attempt), else_=col) if newer is not None else col
        elif name == "status":
            guard = _status_guard(col, ex.status, None if newer is None else ~newer)
            set_[name] = guard if older is None else case((older, col), else_=guard)
        elif name == "updated_at":
            set_[name] = ex[name]
        elif name in fill:
            kept = func.coalesce(col, ex[name])
            set_[name] = case((newer, ex[name]), else_=kept) if newer is not None else kept
        elif newer is not None and older is not None:
            if name in columns:
                set_[name] = case((older, col), else_=ex[name])
            else:  # an outcome column this write does not provide
                set_[name] = case((newer, null()), else_=col)
        else:
            set_[name] = ex[name]
    return stmt.on_conflict_do_update(index_elements=list(RUN_KEY), set_=set_).returning(t.c.run_id, t.c.started_at)


def step_upsert(dialect_name: str, columns: frozenset[str]) -> Insert:
    """INSERT ... ON CONFLICT (run_id, step_id, try_number) DO UPDATE (merge rules above)."""
    t = STEP_TABLE
    _check(t, columns, (*STEP_KEY, "status", "updated_at"))
    stmt = _insert(dialect_name, t)
    ex = stmt.excluded
    set_: dict[str, Any] = {}
    for name in sorted(columns):
        col = t.c[name]
        if name in STEP_KEY:
            continue
        if name == "status":
            set_[name] = _status_guard(col, ex.status, None)
        elif name in _GROWING:
            set_[name] = case((ex[name] > col, ex[name]), else_=col)
        else:
            set_[name] = ex[name]
    return stmt.on_conflict_do_update(index_elements=list(STEP_KEY), set_=set_)


def event_insert(dialect_name: str) -> Insert:
    """INSERT of one event; one whose `uid` is already stored (a replayed batch) is skipped."""
    return _insert(dialect_name, EVENT_TABLE).on_conflict_do_nothing(index_elements=["uid"])


def artifact_insert(dialect_name: str) -> Insert:
    """INSERT of one artifact row; one whose `uid` is already stored (a replayed batch) is skipped."""
    return _insert(dialect_name, ARTIFACT_TABLE).on_conflict_do_nothing(index_elements=["uid"])


def provided(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[frozenset[str], dict[str, Any]]:
    """The columns a write provides, and the row to insert (NOT NULL defaults filled in)."""
    row = {k: v for k, v in values.items() if v is not None}
    return frozenset(row), {**defaults, **row}


def _check(table: Table, columns: frozenset[str], required: tuple[str, ...]) -> None:
    unknown = columns - set(table.columns.keys())
    if unknown:
        raise ValueError(f"unknown {table.name} columns: {sorted(unknown)}")
    missing = set(required) - columns
    if missing:
        raise ValueError(f"a {table.name} write needs {sorted(missing)}")


__all__ = [
    "run_upsert",
    "step_upsert",
    "event_insert",
    "artifact_insert",
    "provided",
    "RUN_TABLE",
    "STEP_TABLE",
    "RUN_OUTCOME",
    "RUN_INSERT_DEFAULTS",
    "STEP_INSERT_DEFAULTS",
]
