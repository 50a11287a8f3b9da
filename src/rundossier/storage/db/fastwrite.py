"""The one hot path kept off SQLAlchemy's execution machinery: a step's and a run's upserts, and a failure's rows.

Why: a successful step is two writes (its start and its finish) and must cost at most twice two
bare SQL writes, and a failure's rows (step, root cause, event) at most half again a bare failure
write; through SQLAlchemy's execution path and pool checkout a one-row upsert measured several
times the SQL itself. So each statement is still built with Core on the `models.py` tables
(`upserts.py`) and compiled once per engine into a fixed SQL string, its parameters converted with
the column types' own bind processors (a direct formatter for UTC datetimes on SQLite), and each
thread keeps one connection (re-opened after a fork or an error). A lone upsert runs alone in its
own implicit transaction on that connection's DBAPI side; a batch (`RunStore.write`) is one Core
transaction on the same connection, whose frequent statements run compiled on its DBAPI cursor.
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Engine, Table
from sqlalchemy.sql.dml import UpdateBase

from rundossier.storage.db.types import UTCDateTime


class CompiledWrite:
    """One statement compiled for one engine, with its parameter converters."""

    def __init__(self, stmt: UpdateBase, table: Table, engine: Engine, columns: Sequence[str]) -> None:
        dialect = engine.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
        if compiled.post_compile_params:
            raise ValueError("fast writes need statements without expanding parameters")
        self.sql = str(compiled)
        self.positional = compiled.positiontup is not None
        self.names: list[str] = list(compiled.positiontup or compiled.params.keys())
        if set(self.names) != set(columns):
            raise ValueError(f"statement parameters {self.names} do not match columns {list(columns)}")
        self._procs: list[tuple[str, Callable[[Any], Any] | None]] = []
        for name in self.names:
            col = table.columns.get(name)
            proc: Callable[[Any], Any] | None = col.type.bind_processor(dialect) if col is not None else None
            if col is not None and isinstance(col.type, UTCDateTime) and dialect.name == "sqlite":
                proc = sqlite_utc
            if col is not None and isinstance(col.type, Boolean) and dialect.name == "sqlite":
                proc = int  # what Boolean's processor stores (0/1), without its Python-level checks
            if col is not None and isinstance(col.type, JSON) and dialect.name == "postgresql":
                proc = _pg_json(proc)
            self._procs.append((name, proc))
        #: (position, converter) of the parameters that need one; the others pass as they are
        self._convert = [(i, p) for i, (_, p) in enumerate(self._procs) if p is not None]
        getter = operator.itemgetter(*self.names)
        self._take: Callable[[Mapping[str, Any]], Any] = getter if len(self.names) > 1 else (lambda row: (getter(row),))

    def params(self, row: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The statement's parameters from `row` (a missing column is NULL), converted."""
        try:
            values = list(self._take(row))
        except KeyError:
            values = [row.get(n) for n in self.names]
        for i, proc in self._convert:
            v = values[i]
            if v is not None:
                values[i] = proc(v)
        if self.positional:
            return values
        return dict(zip(self.names, values, strict=True))


class StatementCache:
    """Compiled statements keyed by what they write; bounded (the key space is small anyway)."""

    def __init__(self, engine: Engine, limit: int = 512) -> None:
        self.engine = engine
        self.limit = limit
        self._items: dict[Hashable, CompiledWrite] = {}

    def get(self, key: Hashable, build: Callable[[], tuple[UpdateBase, Table, Sequence[str]]]) -> CompiledWrite:
        item = self._items.get(key)
        if item is None:
            if len(self._items) >= self.limit:
                self._items.clear()
            stmt, table, columns = build()
            item = self._items[key] = CompiledWrite(stmt, table, self.engine, columns)
        return item


def _pg_json(proc: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """psycopg adapts JSON through a wrapper; SQLAlchemy adds it in its own execution path."""
    from psycopg.types.json import Json

    return lambda value: Json(proc(value) if proc is not None else value)


def sqlite_utc(value: datetime) -> str:
    """What SQLAlchemy's SQLite DATETIME stores, for an aware or naive-UTC datetime, in one step.

    Formatted from its fields: five of these per successful step, and `isoformat` with an offset
    measured twice this (a datetime subclass, such as pendulum's from Prefect, is read the same way)."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _SQLITE_DATETIME % (
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
    )  # fmt: skip


_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class RawWriter:
    """One-statement writes, and short batches, on one connection per thread (no ORM, no pool).

    Each thread keeps one SQLAlchemy connection detached from the pool: single statements run on
    its DBAPI connection directly, batches (`connection`) through Core on the same connection, so
    neither pays a pool checkout and reset per write (a failure's batch measured that as much as
    its SQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._open: list[Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> Connection:
        """This thread's connection (opened on first use, and again after a fork or a lost one)."""
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid() or conn.invalidated:
            if conn is not None and local.pid == os.getpid():
                self._discard()
            conn = self.engine.connect()  # runs the engine's connect hooks (pragmas)
            conn.detach()  # ours now: never returned to (or reset by) the pool
            local.conn, local.dbapi, local.pid = conn, conn.connection.dbapi_connection, os.getpid()
            with self._lock:
                self._open.append(conn)
        return conn

    def _connection(self) -> Any:
        """This thread's DBAPI connection (the single statements' hot path: no more than a pid check)."""
        local = self._local
        if getattr(local, "dbapi", None) is not None and local.pid == os.getpid():
            return local.dbapi
        self.connection()
        return local.dbapi

    def _discard(self) -> None:
        conn, self._local.conn, self._local.dbapi = getattr(self._local, "conn", None), None, None
        if conn is not None:
            with self._lock:
                if conn in self._open:
                    self._open.remove(conn)
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def execute_one(self, sql: str, params: Any) -> Any:
        """One statement in its own transaction; returns the first row it returns, if any."""
        conn = self._connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(sql, params)
                row = cur.fetchone() if cur.description else None
            finally:
                cur.close()
            if not self._sqlite:
                conn.commit()
            return row
        except BaseException:
            self._reset(conn)
            raise

    @contextmanager
    def busy_timeout(self, seconds: float) -> Iterator[None]:
        """SQLite: this thread's writes wait at most `seconds` for a lock, inside the block."""
        conn = self._connection()
        before = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(before)}")

    def _reset(self, conn: Any) -> None:
        try:
            if not self._sqlite or conn.in_transaction:
                conn.rollback()
        except Exception:  # noqa: BLE001 - a connection we cannot reset is not reused
            self._discard()

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self._local = threading.local()


__all__ = ["CompiledWrite", "RawWriter", "StatementCache", "sqlite_utc"]
