"""The run history store: idempotent writes and paged reads of runs, steps, events and policies.

Every statement is SQLAlchemy Core on the `models.py` tables, built once per shape and reused. A
batch is one short SQLAlchemy transaction (BEGIN IMMEDIATE on SQLite, from the engine's "begin"
hook); a lone step or run upsert, the hot path, runs through `fastwrite` (see there why). Reads
return SQLModel objects or light named tuples. Every database error surfaces as `StoreError`
with what to check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col

from rundossier.core.artifacts import CHECKSUM_MAX, KIND_MAX, NOTE_MAX, uri_key
from rundossier.core.ids import is_run_id, new_run_id, new_uid, run_id_floor
from rundossier.errors import RunNotFound, StoreError, StoreUnavailable
from rundossier.storage.db import leases
from rundossier.storage.db.engine import make_engine, normalize_url
from rundossier.storage.db.failuregroups import (
    GroupCounts,
    GroupQuery,
    day_upsert,
    group_upsert,
    group_values,
    known_fingerprint,
    query_groups,
    reopen,
    resolve,
)
from rundossier.storage.db.fastwrite import CompiledWrite, RawWriter, StatementCache
from rundossier.storage.db.lightrows import LightSelect
from rundossier.storage.db.models import (
    ARTIFACT_TABLE,
    ERROR_MESSAGE_MAX,
    EVENT_TABLE,
    POLICY_TABLE,
    SUMMARY_MAX,
    Artifact,
    Event,
    EventRecord,
    RetentionPolicy,
    Run,
    Step,
    StepRecord,
)
from rundossier.storage.db.schema import ensure_schema
from rundossier.storage.db.types import UTCDateTime, utcnow
from rundossier.storage.db.upserts import (
    RUN_INSERT_DEFAULTS,
    RUN_TABLE,
    STEP_INSERT_DEFAULTS,
    STEP_TABLE,
    artifact_insert,
    event_insert,
    provided,
    run_upsert,
    step_upsert,
)

#: the run columns a later failed try of the root step replaces (all of them: what it lacks is NULL)
LATER_TRY_COLUMNS = (
    "error_type",
    "error_message",
    "failure_class",
    "fingerprint",
    "trace_uri",
    "trace_bytes",
    "root_try_number",
    "spooled",
    "updated_at",
)

#: the run columns a recovered run forgets
_OUTCOME_CLEARED = (
    "error_type",
    "error_message",
    "failure_class",
    "fingerprint",
    "root_step_id",
    "root_try_number",
    "trace_uri",
    "trace_bytes",
)
MAX_PAGE = 500


@dataclass(frozen=True)
class RunQuery:
    """Filters for listing runs; time bounds apply to when a run was first recorded."""

    flow_id: str | None = None
    status: tuple[str, ...] = ()
    orchestrator: str | None = None
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    fingerprint: str | None = None
    #: only these flows (an access filter); None means every flow
    flows: tuple[str, ...] | None = None


@dataclass
class RunPage:
    items: list[Run]
    next_cursor: str | None


class Producer(NamedTuple):
    """The step try that wrote a URI (see `RunStore.producer_of`)."""

    run_id: str
    step_id: str | None
    try_number: int | None
    recorded_at: datetime


@dataclass
class BatchResult:
    """What a batch wrote: each run's id and its start time as stored (after the merge), in order."""

    run_ids: list[str] = field(default_factory=list)
    started_at: list[datetime | None] = field(default_factory=list)


@dataclass
class WriteBatch:
    """Rows to write in one transaction (the failure path writes run, step and events at once).

    Replaying a batch changes nothing the first write did not: runs and steps are merging upserts,
    each event carries a unique `uid` (given here when the caller has none), a root cause applies
    once. That is what lets the spool deliver a batch again after a crash in mid-delivery.
    """

    #: (values, attempt_known, fill): `fill` names columns whose value is a guess (a start time
    #: taken as "now"): they are written only where the row has none
    runs: list[tuple[dict[str, Any], bool, frozenset[str]]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: run columns set only while the run has no root cause yet (the first failing step wins)
    root_causes: list[dict[str, Any]] = field(default_factory=list)
    #: runs that recovered, as (run_id, step_id or None): their error is forgotten (their failed
    #: tries stay on their steps); with a step id, only if that step is the root cause
    cleared: list[tuple[str, str | None]] = field(default_factory=list)
    #: artifact manifest rows (each with a unique `uid`, like events)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    def run(self, values: Mapping[str, Any], *, attempt_known: bool = True, fill: Iterable[str] = ()) -> WriteBatch:
        self.runs.append((dict(values), attempt_known, frozenset(fill)))
        return self

    def step(self, values: Mapping[str, Any]) -> WriteBatch:
        self.steps.append(dict(values))
        return self

    def event(self, values: Mapping[str, Any]) -> WriteBatch:
        row = dict(values)
        if not row.get("uid"):
            row["uid"] = new_uid()
        self.events.append(row)
        return self

    def artifact(self, values: Mapping[str, Any]) -> WriteBatch:
        """One artifact of a step try (`uri_key` and `uid` are filled in when missing)."""
        row = dict(values)
        if not row.get("uid"):
            row["uid"] = new_uid()
        if not row.get("uri_key"):
            row["uri_key"] = uri_key(row["uri"])
        self.artifacts.append(row)
        return self

    def root_cause(self, values: Mapping[str, Any]) -> WriteBatch:
        """Set the run's error columns unless an earlier failure already did (needs run_id).

        When it does and a fingerprint is given, the failure also counts in its failure group, at
        `failed_at` (an optional extra key, not a run column; default: now). A later try of the
        root step (a higher `root_try_number`) replaces the run's error, whatever order the tries
        are recorded in; it is not counted again.
        """
        self.root_causes.append(dict(values))
        return self

    def clear_outcome(self, run_id: str, *, step_id: str | None = None) -> WriteBatch:
        """Forget the run's error after the root causes of this batch: a run that ended well, or
        (`step_id`) a root step that a later try recovered, so what fails next is the cause."""
        self.cleared.append((run_id, step_id))
        return self

    def __bool__(self) -> bool:
        return bool(self.runs or self.steps or self.events or self.root_causes or self.cleared or self.artifacts)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [[v, k, sorted(f)] for v, k, f in self.runs],
            "steps": self.steps,
            "events": self.events,
            "root_causes": self.root_causes,
            "cleared": [list(c) for c in self.cleared],
            "artifacts": self.artifacts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WriteBatch:
        return cls(
            # spool items written before `fill` existed hold [values, attempt_known]
            runs=[(dict(r[0]), bool(r[1]), frozenset(r[2] if len(r) > 2 else ())) for r in data.get("runs", [])],
            steps=[dict(s) for s in data.get("steps", [])],
            events=[dict(e) for e in data.get("events", [])],
            root_causes=[dict(r) for r in data.get("root_causes", [])],
            cleared=[(str(c[0]), c[1]) for c in data.get("cleared", [])],
            artifacts=[dict(a) for a in data.get("artifacts", [])],
        )


class RunStore:
    """Run history in SQLite or PostgreSQL. Safe to share across threads; fork-safe."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, migrate: bool = True, pool: tuple[int, int] | None = None
    ) -> None:
        """`pool`: PostgreSQL connections kept and extra ones at busy moments (default (2, 4); a
        recorder passes its own, smaller one)."""
        self.url = url
        self.timeout = timeout
        self._parsed = normalize_url(url)
        self.dialect = self._parsed.get_backend_name()
        self._write: Engine = (
            make_engine(url, timeout=timeout, write=True, pool=pool)
            if pool is not None
            else make_engine(url, timeout=timeout, write=True)
        )
        self._read: Engine = make_engine(url, timeout=timeout, write=False) if self.dialect == "sqlite" else self._write
        self._raw = RawWriter(self._write)
        self._stmts = StatementCache(self._write)
        self._event_insert = event_insert(self.dialect)
        self._artifact_insert = artifact_insert(self.dialect)
        dbapi = self._write.dialect.loaded_dbapi
        self._dbapi_error: type[BaseException] = dbapi.Error
        self._unavailable: tuple[type[BaseException], ...] = (
            OperationalError,
            InterfaceError,
            DisconnectionError,
            PoolTimeout,
            dbapi.OperationalError,
            dbapi.InterfaceError,
        )
        if migrate:
            self.upgrade_if_needed()

    # -- schema ------------------------------------------------------------------------------
    def upgrade_if_needed(self) -> None:
        """Create the schema in an empty database; SchemaOutdated for one at another revision
        (`rundossier db upgrade` migrates it: see `upgrade`)."""
        with self._errors("check the database schema"):
            ensure_schema(self._write, self.describe())

    def upgrade(self) -> str:
        """Apply every pending migration (what `rundossier db upgrade` runs); returns the revision."""
        from rundossier.storage.db.schema import upgrade

        with self._errors("apply database migrations"):
            return upgrade(self._write)

    def describe(self) -> str:
        """The URL with any password hidden, for messages."""
        return self._parsed.render_as_string(hide_password=True)

    def close(self) -> None:
        self._raw.close()
        self._write.dispose()
        if self._read is not self._write:
            self._read.dispose()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise self._failure(what, exc) from exc

    def _failure(self, what: str, exc: BaseException) -> StoreError:
        """A database error as users read it: what could not be done, where, and what to check.

        Errors of reaching the database (refused, locked, read-only, timed out, connection lost)
        come out as StoreUnavailable: the same write works later, so the recorder spools it.
        """
        hint = (
            f"the database is locked by another writer; it was waited on for {self.timeout:g}s (RUNDOSSIER_DB_TIMEOUT)"
            if "locked" in str(exc).lower()
            else "check RUNDOSSIER_DB_URL and that the database is reachable"
        )
        cls = StoreUnavailable if isinstance(exc, self._unavailable) else StoreError
        return cls(f"could not {what} in {self.describe()}: {_first_line(exc)} ({hint})")

    @contextmanager
    def _tx(self, what: str) -> Iterator[Connection]:
        with self._errors(what), self._write.begin() as conn:
            yield conn

    def transaction(self, what: str) -> AbstractContextManager[Connection]:
        """A short write transaction (BEGIN IMMEDIATE on SQLite); errors come out as StoreError
        saying it could not `what`. Retention's batched deletes use it."""
        return self._tx(what)

    @contextmanager
    def _waiting(self, what: str, wait_s: float | None) -> Iterator[Connection]:
        """A write transaction on this thread's own connection (see `RawWriter`), waiting at most
        `wait_s` for a locked SQLite database (its busy timeout, for this transaction only)."""
        with self._errors(what):
            conn = self._raw.connection()
            if conn.in_transaction():  # a batch written from inside another (not expected): its own
                with self._write.begin() as other:
                    yield other
                return
            if wait_s is None or self.dialect != "sqlite" or wait_s >= self.timeout:
                with conn.begin():
                    yield conn
                return
            with self._raw.busy_timeout(wait_s), conn.begin():
                yield conn

    # -- writes ------------------------------------------------------------------------------
    def upsert_run(self, values: Mapping[str, Any], *, attempt_known: bool = True) -> str:
        """Create or merge the run keyed (orchestrator, flow_id, run_key); returns its run_id."""
        stmt, row = self._run_statement(values, attempt_known, frozenset())
        try:
            result = self._raw.execute_one(stmt.sql, stmt.params(row))
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise self._failure("record a run", exc) from exc
        if result is None:
            raise StoreError("the database returned no run id for an upsert")
        return str(result[0])

    def upsert_step(self, values: Mapping[str, Any]) -> None:
        """Create or merge one try of one step keyed (run_id, step_id, try_number)."""
        stmt, row = self._step_statement(values)
        try:  # the hot path: no context manager
            self._raw.execute_one(stmt.sql, stmt.params(row))
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise self._failure("record a step", exc) from exc

    def add_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        if not events:
            return
        with self._tx("record events") as conn:
            self._exec_events(conn, events)

    def write(self, batch: WriteBatch, *, wait_s: float | None = None) -> BatchResult:
        """Apply a batch in one transaction; returns its runs' ids and stored start times, in order.

        `wait_s`: wait at most this long for a locked SQLite database (less than the store's
        timeout; 0: only if it is free now). PostgreSQL callers bound the time themselves."""
        result = BatchResult()
        if len(batch.steps) == 1 and not (
            batch.runs or batch.events or batch.root_causes or batch.cleared or batch.artifacts
        ):
            # the hot path (a step's start and end): one statement, no explicit transaction
            if wait_s is not None and self.dialect == "sqlite" and wait_s < self.timeout:
                with self._raw.busy_timeout(wait_s):
                    self.upsert_step(batch.steps[0])
            else:
                self.upsert_step(batch.steps[0])
            return result
        with self._waiting("record a batch", wait_s) as conn:
            for values, known, fill in batch.runs:
                run_id, started_at = self._exec_run(conn, values, known, fill)
                result.run_ids.append(run_id)
                result.started_at.append(started_at)
            # a run that already existed keeps its id: rows of this batch follow it
            remap = {
                r[0]["run_id"]: i for r, i in zip(batch.runs, result.run_ids, strict=True) if r[0].get("run_id", i) != i
            }
            for s in batch.steps:
                self._exec_step(conn, _follow(s, remap))
            self._exec_events(conn, [_follow(e, remap) for e in batch.events] if remap else batch.events)
            for values in batch.root_causes:
                self._exec_root_cause(conn, _follow(values, remap))
            for run_id, step_id in batch.cleared:
                self._exec_clear(conn, remap.get(run_id, run_id), step_id)
            self._exec_artifacts(conn, [_follow(a, remap) for a in batch.artifacts] if remap else batch.artifacts)
        return result

    def check_writable(self) -> None:
        """An empty write transaction (BEGIN IMMEDIATE on SQLite): StoreUnavailable while the
        database is out of reach, locked or read-only."""
        with self._tx("check that the database takes writes"):
            pass

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set columns of an existing run (no merge rules): retention and spool flush use it."""
        values.setdefault("updated_at", utcnow())
        with self._tx("update a run") as conn:
            conn.execute(update(RUN_TABLE).where(RUN_TABLE.c.run_id == run_id).values(**values))

    def clear_run_outcome(self, run_id: str) -> None:
        """Forget a run's error (it recovered: its failed tries stay on their steps)."""
        self.write(WriteBatch().clear_outcome(run_id))

    def _exec_clear(self, conn: Connection, run_id: str, step_id: str | None) -> None:
        of_step = step_id is not None
        params = {"b_run_id": run_id, "updated_at": utcnow(), **({"b_step_id": step_id} if of_step else {})}
        conn.execute(_clear_outcome(of_step), params)

    def renew_leases(
        self, runs: Sequence[str], steps: Sequence[tuple[str, str, int]], *, now: datetime, until: datetime
    ) -> None:
        """The heartbeat: running rows this process holds stay alive until `until` (see `leases`)."""
        with self._tx("renew leases") as conn:
            leases.renew(conn, runs, steps, now, until)

    def reap_expired(self, *, now: datetime | None = None) -> leases.Reaped:
        """Mark runs and steps still running past their lease as crashed (see `leases`)."""
        with self._tx("mark runs whose process died as crashed") as conn:
            return leases.reap(conn, now or utcnow())

    def update_step(self, run_id: str, step_id: str, try_number: int, **values: Any) -> None:
        values.setdefault("updated_at", utcnow())
        t = STEP_TABLE
        with self._tx("update a step") as conn:
            conn.execute(
                update(t)
                .where(t.c.run_id == run_id, t.c.step_id == step_id, t.c.try_number == try_number)
                .values(**values)
            )

    def _run_statement(
        self, values: Mapping[str, Any], attempt_known: bool, fill: frozenset[str]
    ) -> tuple[CompiledWrite, dict[str, Any]]:
        cols, row = _run_row(values)
        known = attempt_known and "attempt" in cols
        fill = fill & cols
        stmt = self._stmts.get(
            ("run", known, cols, fill),
            lambda: (_run_upsert(self.dialect, cols, attempt_known=known, fill=fill), RUN_TABLE, list(row)),
        )
        return stmt, row

    def _step_statement(self, values: Mapping[str, Any]) -> tuple[CompiledWrite, dict[str, Any]]:
        cols, row = _step_row(values)
        stmt = self._stmts.get(("step", cols), lambda: (_step_upsert(self.dialect, cols), STEP_TABLE, list(row)))
        return stmt, row

    def _exec_run(
        self, conn: Connection, values: Mapping[str, Any], attempt_known: bool, fill: frozenset[str]
    ) -> tuple[str, datetime | None]:
        cols, row = _run_row(values)
        known = attempt_known and "attempt" in cols
        result = conn.execute(_run_upsert(self.dialect, cols, attempt_known=known, fill=fill & cols), row).first()
        if result is None:
            raise StoreError("the database returned no run id for an upsert")
        return str(result[0]), result[1]

    def _compiled(self, conn: Connection, stmt: CompiledWrite, params: Any, *, many: bool = False) -> int:
        """One of a batch's statements in its compiled form (see `fastwrite`) on the DBAPI cursor of
        the batch's own connection, inside its Core transaction; the rows it changed. Why: a failure's
        batch is three of these, and Core's handling of each measured more than its SQL."""
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        try:
            if many:
                cur.executemany(stmt.sql, params)
            else:
                cur.execute(stmt.sql, params)
            return int(cur.rowcount)
        finally:
            cur.close()

    def _exec_step(self, conn: Connection, values: Mapping[str, Any]) -> None:
        stmt, row = self._step_statement(values)
        self._compiled(conn, stmt, stmt.params(row))

    def _exec_root_cause(self, conn: Connection, values: Mapping[str, Any]) -> None:
        row = {k: v for k, v in values.items() if v is not None}
        failed_at = row.pop("failed_at", None)
        replace = bool(row.pop("replace", False))
        if "run_id" not in row or "root_step_id" not in row:
            raise ValueError("a root cause needs run_id and root_step_id")
        if row.get("error_message"):
            row["error_message"] = _bounded(row["error_message"], ERROR_MESSAGE_MAX)
        row["updated_at"] = utcnow()
        cols = frozenset(row)
        row["b_run_id"] = row.pop("run_id")
        stmt = self._stmts.get(("root", cols, replace), lambda: (_root_cause(cols, replace), RUN_TABLE, list(row)))
        changed = self._compiled(conn, stmt, stmt.params(row))
        if replace:  # a run whose handled step failures did not end it: counted once already, as they were
            return
        if changed == 1:
            if row.get("fingerprint"):  # this attempt's first failure: count it in its group
                group, day = group_values(row["b_run_id"], row, failed_at or utcnow())
                conn.execute(_group_upsert(self.dialect), group)
                conn.execute(_day_upsert(self.dialect), day)
            return
        if row.get("root_try_number") is not None:  # a later try of the root step: it is the run's error now
            later = {n: row.get(n) for n in LATER_TRY_COLUMNS}  # absent columns: NULL
            later["spooled"] = later["spooled"] or False
            params = {**later, "b_run_id": row["b_run_id"], "b_root_step_id": row["root_step_id"]}
            stmt = self._stmts.get(("later try",), lambda: (_later_try(), RUN_TABLE, list(params)))
            self._compiled(conn, stmt, stmt.params(params))

    def _exec_events(self, conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
        if events:
            stmt = self._stmts.get(("event",), lambda: (self._event_insert, EVENT_TABLE, _EVENT_COLUMNS))
            self._compiled(conn, stmt, [stmt.params(_event_row(e)) for e in events], many=True)

    def _exec_artifacts(self, conn: Connection, artifacts: Sequence[Mapping[str, Any]]) -> None:
        if artifacts:
            conn.execute(self._artifact_insert, [_artifact_row(a) for a in artifacts])

    # -- reads -------------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._errors("read run history"), Session(self._read) as session:
            yield session

    @contextmanager
    def reading(self, what: str) -> Iterator[Connection]:
        """A read connection for Core statements; errors come out as StoreError saying it could not `what`."""
        with self._errors(what), self._read.connect() as conn:
            yield conn

    def get_run(self, run_id: str) -> Run:
        """The run, or RunNotFound (also for ids that are not run ids at all)."""
        if not isinstance(run_id, str) or not is_run_id(run_id):
            raise RunNotFound(f"no run with id {run_id!r}")
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise RunNotFound(f"no run with id {run_id!r}")
            s.expunge(run)
            return run

    def find_run(self, orchestrator: str, flow_id: str, run_key: str) -> Run | None:
        if _has_nul(orchestrator, flow_id, run_key):  # no stored id has one (PostgreSQL refuses them)
            return None
        with self.session() as s:
            run = s.execute(
                select(Run).where(
                    col(Run.orchestrator) == orchestrator, col(Run.flow_id) == flow_id, col(Run.run_key) == run_key
                )
            ).first()
            return run[0] if run is not None else None

    def list_runs(self, query: RunQuery = RunQuery(), *, limit: int = 50, cursor: str | None = None) -> RunPage:
        """Newest first; `cursor` is the `next_cursor` of the previous page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        if cursor is not None and not is_run_id(cursor):
            raise ValueError("cursor is not one this API returned")
        if _has_nul(query.flow_id, query.orchestrator, query.q, query.fingerprint, *query.status, *(query.flows or ())):
            raise ValueError("filters cannot contain NUL characters")
        stmt = select(Run)
        c = RUN_TABLE.c
        if query.flow_id:
            stmt = stmt.where(c.flow_id == query.flow_id)
        if query.status:
            stmt = stmt.where(c.status.in_(query.status))
        if query.orchestrator:
            stmt = stmt.where(c.orchestrator == query.orchestrator)
        if query.fingerprint:
            stmt = stmt.where(c.fingerprint == query.fingerprint)
        if query.flows is not None:
            stmt = stmt.where(c.flow_id.in_(query.flows))
        if query.q and search_words(query.q):
            stmt = stmt.where(self._search(query.q))
        if query.since:
            stmt = stmt.where(c.run_id >= run_id_floor(query.since))
        if query.until:
            stmt = stmt.where(c.run_id < run_id_floor(query.until))
        if cursor:
            stmt = stmt.where(c.run_id < cursor)
        stmt = stmt.order_by(c.run_id.desc()).limit(limit + 1)
        with self.session() as s:
            rows = [r[0] for r in s.execute(stmt).all()]
            for r in rows:
                s.expunge(r)
        more = len(rows) > limit
        items = rows[:limit]
        return RunPage(items=items, next_cursor=items[-1].run_id if more and items else None)

    def _search(self, q: str) -> ColumnElement[bool]:
        """Runs where every word of `q` is in the flow id, run key, error type or error message,
        in any case ("peer reset" finds "Connection reset by peer").

        A scan in run-id order that stops at the page's end (no index serves "contains"): SQLite's
        LIKE ignores ASCII case, PostgreSQL's ILIKE any case."""
        c = RUN_TABLE.c
        columns = (c.flow_id, c.run_key, c.error_type, c.error_message)
        terms = []
        for word in search_words(q):
            pattern = "%" + _escape_like(word) + "%"
            if self.dialect == "sqlite":
                terms.append(or_(*(column.like(pattern, escape="\\") for column in columns)))
            else:
                terms.append(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
        return and_(*terms)

    def list_flows(self, *, limit: int = 1000) -> list[str]:
        """Distinct flow ids, sorted (a skip scan over the flow index: cheap with millions of runs)."""
        sql = text(
            "WITH RECURSIVE f(flow_id) AS ("
            " SELECT MIN(flow_id) FROM rd_run"
            " UNION ALL"
            " SELECT (SELECT MIN(r.flow_id) FROM rd_run r WHERE r.flow_id > f.flow_id) FROM f"
            " WHERE f.flow_id IS NOT NULL"
            ") SELECT flow_id FROM f WHERE flow_id IS NOT NULL LIMIT :limit"
        )
        with self.session() as s:
            return [str(r[0]) for r in s.execute(sql, {"limit": limit}).all()]

    def runs_updated_since(self, since: datetime, *, limit: int = 200) -> list[Run]:
        """Runs written after `since`, oldest change first (what live updates poll)."""
        stmt = select(Run).where(RUN_TABLE.c.updated_at > since).order_by(RUN_TABLE.c.updated_at).limit(limit)
        with self.session() as s:
            rows = [r[0] for r in s.execute(stmt).all()]
            for r in rows:
                s.expunge(r)
            return rows

    def list_steps(self, run_id: str) -> list[Step]:
        with self.session() as s:
            rows = [
                r[0]
                for r in s.execute(
                    select(Step)
                    .where(col(Step.run_id) == run_id)
                    .order_by(col(Step.started_at), col(Step.step_id), col(Step.try_number))
                ).all()
            ]
            for r in rows:
                s.expunge(r)
            return rows

    def get_step(self, run_id: str, step_id: str, try_number: int | None = None) -> Step | None:
        """One try of a step; the latest try when `try_number` is None."""
        if _has_nul(run_id, step_id):
            return None
        stmt = select(Step).where(col(Step.run_id) == run_id, col(Step.step_id) == step_id)
        if try_number is not None:
            stmt = stmt.where(col(Step.try_number) == try_number)
        stmt = stmt.order_by(col(Step.try_number).desc()).limit(1)
        with self.session() as s:
            row = s.execute(stmt).first()
            if row is None:
                return None
            s.expunge(row[0])
            return row[0]

    def list_events(self, run_id: str) -> list[Event]:
        with self.session() as s:
            rows = [
                r[0]
                for r in s.execute(
                    select(Event).where(col(Event.run_id) == run_id).order_by(col(Event.ts), col(Event.id))
                ).all()
            ]
            for r in rows:
                s.expunge(r)
            return rows

    def list_artifacts(
        self,
        run_id: str,
        *,
        limit: int = 100,
        after: int | None = None,
        step_id: str | None = None,
        role: str | None = None,
    ) -> tuple[list[Artifact], int | None]:
        """A run's artifacts in the order they were recorded, one page (`after`: the last id of
        the previous page); returns the page and the cursor of the next one (None: no more)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        c = ARTIFACT_TABLE.c
        stmt = select(Artifact).where(c.run_id == run_id)
        if step_id is not None:
            stmt = stmt.where(c.step_id == step_id)
        if role is not None:
            stmt = stmt.where(c.role == role)
        if after is not None:
            stmt = stmt.where(c.id > after)
        rows = self._artifact_rows(stmt.order_by(c.id).limit(limit + 1))
        more = len(rows) > limit
        return rows[:limit], (rows[limit - 1].id if more else None)

    def artifacts_of_uri(
        self, uri: str, *, limit: int = 100, before: tuple[datetime, int] | None = None
    ) -> tuple[list[Artifact], tuple[datetime, int] | None]:
        """Every recorded read and write of one URI, newest first, one page (`before`: the
        (recorded_at, id) of the last row of the previous page)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        c = ARTIFACT_TABLE.c
        stmt = select(Artifact).where(c.uri_key == uri_key(uri), c.uri == uri)
        if before is not None:
            ts, last = before
            stmt = stmt.where(or_(c.recorded_at < ts, (c.recorded_at == ts) & (c.id < last)))
        rows = self._artifact_rows(stmt.order_by(c.recorded_at.desc(), c.id.desc()).limit(limit + 1))
        more = len(rows) > limit
        last_row = rows[limit - 1] if more else None
        return rows[:limit], ((last_row.recorded_at, int(last_row.id or 0)) if last_row is not None else None)

    def producer_of(self, uri: str, *, before: datetime, not_run_step: tuple[str, str | None]) -> Producer | None:
        """The newest write of `uri` recorded at or before `before`, by another step than
        `not_run_step` (run_id, step_id): the producer an input links to."""
        return self.producers_of([(uri, before, not_run_step[0], not_run_step[1])])[0]

    def producers_of(self, reads: Sequence[tuple[str, datetime, str, str | None]]) -> list[Producer | None]:
        """`producer_of` for many reads (uri, read at, run_id, step_id), in one connection."""
        if not reads:
            return []
        c = ARTIFACT_TABLE.c
        stmt = (
            select(c.run_id, c.step_id, c.try_number, c.recorded_at)
            .where(
                c.uri_key == bindparam("k"),
                c.uri == bindparam("u"),
                c.role == "output",
                c.recorded_at <= bindparam("t", type_=UTCDateTime()),
                or_(c.run_id != bindparam("r"), c.step_id.is_(None), c.step_id != bindparam("s")),
            )
            .order_by(c.recorded_at.desc(), c.id.desc())
            .limit(1)
        )
        out: list[Producer | None] = []
        with self._errors("read artifact producers"), self._read.connect() as conn:
            for uri, before, run_id, step_id in reads:
                row = conn.execute(stmt, {"k": uri_key(uri), "u": uri, "t": before, "r": run_id, "s": step_id}).first()
                out.append(Producer(*row) if row is not None else None)
        return out

    def flows_of_runs(self, run_ids: Iterable[str]) -> dict[str, str]:
        """run_id -> flow_id of the runs that exist among `run_ids`."""
        ids = sorted(set(run_ids))
        out: dict[str, str] = {}
        c = RUN_TABLE.c
        with self.session() as s:
            for i in range(0, len(ids), 500):
                out.update(
                    {r[0]: r[1] for r in s.execute(select(c.run_id, c.flow_id).where(c.run_id.in_(ids[i : i + 500])))}
                )
        return out

    def count_artifacts(self, run_id: str) -> int:
        stmt = select(func.count()).select_from(ARTIFACT_TABLE).where(ARTIFACT_TABLE.c.run_id == run_id)
        with self.session() as s:
            return int(s.execute(stmt).scalar() or 0)

    def _artifact_rows(self, stmt: Any) -> list[Artifact]:
        with self.session() as s:
            rows = [r[0] for r in s.execute(stmt).all()]
            for r in rows:
                s.expunge(r)
        return rows

    def list_step_records(self, run_id: str) -> list[StepRecord]:
        """Every try of every step of a run as light named tuples (what the dossier reads)."""
        s = STEP_TABLE.c
        stmt = _STEP_RECORDS.select.where(s.run_id == run_id).order_by(s.started_at, s.step_id, s.try_number)
        with self.reading("read run history") as conn:
            return _STEP_RECORDS.rows(conn.execute(stmt).all(), self.dialect)

    def list_event_records(self, run_id: str, kinds: Iterable[str] | None = None) -> list[EventRecord]:
        """A run's events as light named tuples, in time order; only `kinds` when given (filtered in SQL)."""
        stmt = _EVENT_RECORDS.select.where(EVENT_TABLE.c.run_id == run_id)
        if kinds is not None:
            wanted = sorted(kinds)
            if not wanted:
                return []
            stmt = stmt.where(EVENT_TABLE.c.kind.in_(wanted))
        # sorted here: with ORDER BY in SQL, SQLite prefers the (run_id, ts) index and reads every event
        with self.reading("read run history") as conn:
            records: list[EventRecord] = _EVENT_RECORDS.rows(conn.execute(stmt).all(), self.dialect)
        records.sort(key=_EVENT_ORDER)
        return records

    def failure_groups(self, query: GroupQuery) -> GroupCounts:
        """Failure groups by fingerprint (see `failuregroups`): counts, order and per-flow rows."""
        with self._errors("read failure groups"), self._read.connect() as conn:
            return query_groups(conn, query)

    def resolve_failure(self, fingerprint: str, *, at: datetime | None = None) -> datetime | None:
        """Mark a failure group resolved (now, or `at`); its time, or None when no failure has it."""
        when = at or utcnow()
        with self._tx("mark a failure group resolved") as conn:
            if not known_fingerprint(conn, fingerprint):
                return None
            resolve(conn, fingerprint, when)
        return when

    def reopen_failure(self, fingerprint: str) -> bool | None:
        """Forget a group's resolution: True if it had one, False if not, None when no failure has it."""
        with self._tx("reopen a failure group") as conn:
            if not known_fingerprint(conn, fingerprint):
                return None
            return reopen(conn, fingerprint)

    # -- retention policies --------------------------------------------------------------------
    def set_policy(
        self,
        flow_pattern: str,
        *,
        keep_days: int | None,
        keep_last: int | None,
        blob_days: int | None,
        source: str | None = None,
    ) -> None:
        t = POLICY_TABLE
        values = {
            "keep_days": keep_days,
            "keep_last": keep_last,
            "blob_days": blob_days,
            "source": source,
            "updated_at": utcnow(),
        }
        with self._tx("save a retention policy") as conn:
            done = conn.execute(update(t).where(t.c.flow_pattern == flow_pattern).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(t).values(flow_pattern=flow_pattern, **values))

    def list_policies(self) -> list[RetentionPolicy]:
        with self.session() as s:
            rows = [r[0] for r in s.execute(select(RetentionPolicy).order_by(RetentionPolicy.flow_pattern)).all()]
            for r in rows:
                s.expunge(r)
            return rows

    def delete_policy(self, flow_pattern: str) -> bool:
        t = POLICY_TABLE
        with self._tx("delete a retention policy") as conn:
            return conn.execute(delete(t).where(t.c.flow_pattern == flow_pattern)).rowcount > 0

    def count_runs(self) -> int:
        from sqlalchemy import func

        with self.session() as s:
            return int(s.execute(select(func.count()).select_from(RUN_TABLE)).scalar() or 0)


_EVENT_ORDER = attrgetter("ts", "id")


# Statements are built once per shape (the columns a write provides) and reused: building one
# costs more than executing it, and a process sees only a few shapes (lru_cache bounds them).
_run_upsert = lru_cache(maxsize=256)(run_upsert)
_step_upsert = lru_cache(maxsize=256)(step_upsert)
_group_upsert = lru_cache(maxsize=2)(group_upsert)
_day_upsert = lru_cache(maxsize=2)(day_upsert)


@lru_cache(maxsize=2)
def _clear_outcome(of_step: bool) -> Update:
    """Forget a run's error: any root cause, or (`of_step`) only that step's."""
    t = RUN_TABLE
    root = t.c.root_step_id == bindparam("b_step_id") if of_step else t.c.root_step_id.is_not(None)
    cleared = {c: null() for c in _OUTCOME_CLEARED}
    return (
        update(t)
        .where(t.c.run_id == bindparam("b_run_id"), root)
        .values(spooled=false(), updated_at=bindparam("updated_at"), **cleared)
    )


@lru_cache(maxsize=256)
def _root_cause(columns: frozenset[str], replace: bool) -> Update:
    """Set the run's error columns (`columns`), unless it has a root cause already (or `replace`)."""
    t = RUN_TABLE
    where = [t.c.run_id == bindparam("b_run_id")]
    if not replace:
        where.append(t.c.root_step_id.is_(None))
    return update(t).where(*where).values({k: bindparam(k) for k in sorted(columns) if k != "run_id"})


@lru_cache(maxsize=1)
def _later_try() -> Update:
    """A later failed try of the root step replaces the run's error (an earlier one never does)."""
    t = RUN_TABLE
    return (
        update(t)
        .where(
            t.c.run_id == bindparam("b_run_id"),
            t.c.root_step_id == bindparam("b_root_step_id"),
            func.coalesce(t.c.root_try_number, literal_column("0")) < bindparam("root_try_number"),
        )
        .values({k: bindparam(k) for k in LATER_TRY_COLUMNS})
    )


# light rows for the dossier: thousands a read, so converted in one place (see lightrows)
_STEP_RECORDS = LightSelect(STEP_TABLE, StepRecord._fields, StepRecord._make)
_EVENT_RECORDS = LightSelect(EVENT_TABLE, EventRecord._fields, EventRecord._make)


def _follow(row: Mapping[str, Any], remap: Mapping[str, str]) -> Mapping[str, Any]:
    if remap and row.get("run_id") in remap:
        return {**row, "run_id": remap[row["run_id"]]}
    return row


def _run_row(values: Mapping[str, Any]) -> tuple[frozenset[str], dict[str, Any]]:
    now = utcnow()
    v = dict(values)
    if not v.get("run_id"):
        v["run_id"] = new_run_id()
    v["created_at"] = now
    v["updated_at"] = now
    if v.get("error_message"):
        v["error_message"] = _bounded(v["error_message"], ERROR_MESSAGE_MAX)
    return provided(v, RUN_INSERT_DEFAULTS)


def _step_row(values: Mapping[str, Any]) -> tuple[frozenset[str], dict[str, Any]]:
    v = {**values, "updated_at": utcnow()}
    if v.get("error_message"):
        v["error_message"] = _bounded(v["error_message"], ERROR_MESSAGE_MAX)
    return provided(v, STEP_INSERT_DEFAULTS)


_EVENT_COLUMNS = [name for name in EVENT_TABLE.columns.keys() if name != "id"]


def _event_row(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(_EVENT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown event columns: {sorted(unknown)}")
    v = dict.fromkeys(_EVENT_COLUMNS)
    v.update(values)
    v["summary"] = _bounded(v.get("summary") or "", SUMMARY_MAX)
    v["ts"] = v.get("ts") or utcnow()
    return v


_ARTIFACT_COLUMNS = [name for name in ARTIFACT_TABLE.columns.keys() if name != "id"]
_ARTIFACT_BOUNDS = {"kind": KIND_MAX, "note": NOTE_MAX, "checksum": CHECKSUM_MAX}


def _artifact_row(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(_ARTIFACT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown artifact columns: {sorted(unknown)}")
    v = dict.fromkeys(_ARTIFACT_COLUMNS)
    v.update(values)
    v["uri"] = str(v["uri"]).replace("\x00", "\\x00")  # PostgreSQL refuses NUL in text
    for name, limit in _ARTIFACT_BOUNDS.items():
        if v.get(name) is not None:
            v[name] = _bounded(str(v[name]), limit)
    v["recorded_at"] = v.get("recorded_at") or utcnow()
    return v


def _bounded(text: str, limit: int) -> str:
    text = str(text)
    if len(text) <= limit:
        return text
    keep = limit - 30  # the marker below is at most 28 characters
    return text[:keep] + f"... [{len(text) - keep} chars cut]"


def _has_nul(*values: str | None) -> bool:
    return any(v is not None and "\x00" in v for v in values)


#: a search uses at most this many words (the rest are ignored)
MAX_SEARCH_WORDS = 8


def search_words(q: str) -> list[str]:
    """The words of a search, as the runs list matches them (each must be found; blanks split)."""
    return q.split()[:MAX_SEARCH_WORDS]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


__all__ = ["RunStore", "RunQuery", "RunPage", "WriteBatch", "BatchResult", "MAX_PAGE"]
